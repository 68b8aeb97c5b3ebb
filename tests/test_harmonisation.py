"""The PET-MR harmoniser without the pipeline: which scans it picks, the bounded smooth field,
its inputs (never a CT), its bundle, and the interface's T1w fallback."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from taupet_bids.harmonisation import detection, inference, preprocessing
from taupet_bids.harmonisation.bundle import InvalidBundle, check_bundle, load_harmoniser
from taupet_bids.harmonisation.detection import AC_METHODS
from taupet_bids.harmonisation.networks import HarmoniserNet, method_index
from taupet_bids.models.bundle import WEIGHTS, ModelIntegrityError
from tests.harmonisation_bundle import TINY, tiny_network, write_tiny_bundle

# Real AttenuationCorrection / ManufacturersModelName pairs as public sidecars write them:
# bids-examples pet002 (HRRT), a Siemens PET-CT reconstruction, a Biograph mMR's Dixon text,
# BIDS-PET's own example (CT on an mMR), and the simulator's texts.
REAL = [
    ("10-min transmission scan", "High-Resolution Research Tomograph (HRRT, CTI/Siemens)", False,
     "ct"),
    ("measured,AC_CT_Brain", "Biograph 64", False, "ct"),
    ("DIXON Brain HiRes", "Biograph mMR", True, "dixon"),
    ("CT", "Biograph mMR", False, "ct"),
    ("NONE, 0.000000 cm-1,", "Biograph 64", False, "mr"),
    ("Unknown", "SIGNA PET/MR", True, "mr"),
    ("n/a", "uPMR 790", True, "mr"),
    ("CT-based", "Biograph Vision 600", False, "ct"),
    ("MR-based, Dixon (fat-water segmentation, no bone)", "Biograph mMR", True, "dixon"),
    ("MR-based, atlas (registered bone template)", "Biograph mMR", True, "atlas"),
    ("MR-based, UTE (ultrashort echo time bone segmentation)", "Biograph mMR", True, "ute"),
    ("ZTE-based attenuation correction", "SIGNA PET/MR", True, "mr"),
    ("MRAC", "other", True, "mr"),
    ("MR-based pseudo-CT (deep learning)", "other", True, "mr"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "model", "expected", "method"), REAL)
def test_auto_detection_from_real_sidecar_texts(text, model, expected, method):
    sidecar = {"AttenuationCorrection": text, "ManufacturersModelName": model}
    decision = detection.decide("auto", sidecar)
    assert decision.harmonize is expected
    assert (text in decision.reason) or (model in decision.reason)
    assert detection.ac_method(sidecar) == method
    assert decision.ac_method == (method if expected else None)


def test_modes_and_missing_fields():
    assert not detection.decide("none", {"AttenuationCorrection": "Dixon"}).harmonize
    forced = detection.decide("all", {"AttenuationCorrection": "CT-based"})
    assert forced.harmonize and forced.ac_method == "ct" and "zero correction" in forced.reason
    assert detection.decide("all", {}).ac_method == "mr"
    assert not detection.decide("auto", {}).harmonize
    with pytest.raises(ValueError, match="--harmonize"):
        detection.decide("sometimes", {})


def _input(seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.uniform(0, 2, (1, 2, *preprocessing.INPUT_SHAPE)).astype("f4"))


def _told(method: str) -> torch.Tensor:
    return torch.tensor([method_index(method)])


def test_untrained_network_leaves_a_scan_unchanged():
    """The field head starts at zero: exp(0) = 1 exactly, whatever the AC method."""
    torch.manual_seed(0)
    network = HarmoniserNet(**TINY).eval()
    with torch.no_grad():
        field = network.correction(_input(), _told("dixon"))[0, 0].numpy()
    assert not field.any()
    suvr = np.random.default_rng(1).uniform(0.5, 3, preprocessing.TEMPLATE_SHAPE).astype("f4")
    assert np.array_equal(inference.harmonise(suvr, preprocessing.field_to_template(field)), suvr)


def test_a_ct_based_scan_is_left_exactly_unchanged_and_each_mr_method_has_its_own_field():
    """Told CT-based AC, a network whose MR fields are far from zero returns a zero field;
    the MR-based methods get different fields; an unknown name is refused."""
    network = tiny_network(head_scale=5.0)
    image = _input(4)
    with torch.no_grad():
        fields = {m: network.correction(image, _told(m))[0, 0].numpy() for m in AC_METHODS}
    assert not fields["ct"].any()
    suvr = np.random.default_rng(1).uniform(0.5, 3, preprocessing.TEMPLATE_SHAPE).astype("f4")
    ct_map = preprocessing.field_to_template(fields["ct"])
    assert np.array_equal(inference.harmonise(suvr, ct_map), suvr)
    mr = [fields[m] for m in AC_METHODS if m != "ct"]
    assert all(np.abs(f).max() > 0.01 for f in mr)
    assert all(np.abs(a - b).max() > 1e-3 for i, a in enumerate(mr) for b in mr[i + 1 :])
    with torch.no_grad():  # one batch, a method per image
        both = network.correction(torch.cat([image, image]), torch.tensor([0, 1]))
    np.testing.assert_allclose(both[1, 0].numpy(), fields[AC_METHODS[1]], atol=1e-4)
    assert not both[0].any()
    with pytest.raises(ValueError, match="unknown AC method 'pet'"):
        method_index("pet")
    with pytest.raises(ValueError, match="pass one per image"):
        network.correction(image)


def test_told_only_ct_or_mr_every_mr_method_gets_the_one_field():
    torch.manual_seed(3)
    network = HarmoniserNet((2, 4, 4), conditioning="ct").eval()
    with torch.no_grad():
        network.field_head.weight.normal_(0.0, 5.0)
        fields = {m: network.correction(_input(5), _told(m))[0, 0] for m in AC_METHODS}
    assert not fields["ct"].any() and fields["mr"].abs().max() > 0.01
    assert all(torch.equal(fields[m], fields["mr"]) for m in ("dixon", "atlas", "ute"))
    untold = HarmoniserNet((2, 4, 4), conditioning="none").eval()
    with torch.no_grad():
        untold.field_head.weight.normal_(0.0, 5.0)
        assert untold.correction(_input(5)).abs().max() > 0.01  # a PET-CT scan is moved too
    with pytest.raises(ValueError, match="conditioning must be one of"):
        HarmoniserNet(conditioning="tracer")


def test_field_is_bounded_and_smooth():
    network = tiny_network(head_scale=50.0)  # saturates tanh: the bound must still hold
    with torch.no_grad():
        field = network.correction(_input(2), _told("atlas"))[0, 0].numpy()
    bound = TINY["bound"]
    assert np.abs(field).max() <= bound + 1e-6 and np.abs(field).max() > 0.5 * bound
    # Trilinear from the 16 mm grid: neighbours differ by at most 2 x bound x coarse / fine.
    coarse = preprocessing.INPUT_SHAPE[0] // 4 + 1
    for axis in range(3):
        step = np.abs(np.diff(field, axis=axis)).max()
        assert step <= 2 * bound * coarse / preprocessing.INPUT_SHAPE[0] + 1e-6
    fine = preprocessing.field_to_template(field)
    assert fine.shape == preprocessing.TEMPLATE_SHAPE
    assert np.abs(np.diff(fine, axis=0)).max() <= step  # 2 mm is smoother still
    ratio = np.exp(fine)
    assert ratio.min() >= np.exp(-bound) - 1e-6 and ratio.max() <= np.exp(bound) + 1e-6


def test_inference_never_needs_the_pseudo_ct_head():
    network = tiny_network()

    class Refuse(torch.nn.Module):
        def forward(self, _):
            raise AssertionError("the pseudo-CT head ran at inference")

    network.ct_project = network.ct_head = Refuse()
    field = inference.infer(network, lambda image, net: net(image), _input(), "ute")
    assert field.shape == preprocessing.INPUT_SHAPE and np.abs(field).max() > 0


def _template_image(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data.astype("f4"), preprocessing.template_affine()), path)
    return path


@pytest.fixture(scope="module")
def suvr_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    data = rng.uniform(0.8, 2.0, preprocessing.TEMPLATE_SHAPE)
    folder = tmp_path_factory.mktemp("suvr")
    return _template_image(folder / "sub-01_trc-FTP_rec-mrac_desc-suvr_pet.nii.gz", data)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def test_outputs_multiply_by_the_map_and_say_which_anatomy(suvr_file, bundle, tmp_path):
    harmoniser = load_harmoniser(bundle)
    field = inference.infer(
        harmoniser.network, harmoniser.inferer, inference.prepare_files(suvr_file), "dixon"
    )
    outputs = inference.save_outputs(
        field, suvr_file, inference.output_paths(suvr_file, tmp_path), harmoniser.metadata,
        ac_method="dixon",
    )  # fmt: skip
    suvr = np.asarray(nib.load(suvr_file).dataobj)
    harmonized = np.asarray(nib.load(outputs.suvr).dataobj)
    log_ratio = np.asarray(nib.load(outputs.field).dataobj)
    np.testing.assert_allclose(harmonized, suvr * np.exp(log_ratio), rtol=1e-5)
    assert np.abs(log_ratio).max() > 1e-3
    record = json.loads(outputs.record.read_text())
    assert record["HarmonizationAnatomy"] == "template"
    assert record["HarmonizationACMethod"] == "dixon"
    assert record["ModelSHA256"] == harmoniser.metadata["taupet_bids"]["model_sha256"]


def test_inputs_off_the_template_grid_are_refused_by_name(tmp_path):
    wrong = tmp_path / "sub-01_T1w.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((20, 20, 20), "f4"), np.eye(4)), wrong)
    with pytest.raises(Exception, match="sub-01_T1w.nii.gz: the template-space T1w is not on"):
        preprocessing.read_t1w(wrong)


def test_bundle_checks(bundle, tmp_path):
    assert check_bundle(bundle).version == "0.0.0-untrained"
    with pytest.raises(InvalidBundle, match="not a harmoniser bundle"):
        check_bundle(tmp_path)
    import shutil

    tampered = shutil.copytree(bundle, tmp_path / "tampered")
    with open(tampered / WEIGHTS, "ab") as handle:
        handle.write(b"0")
    with pytest.raises(InvalidBundle, match="sha256"):
        check_bundle(tampered)
    with pytest.raises(ModelIntegrityError):
        load_harmoniser(tampered)


def test_interface_falls_back_to_the_template_t1w(suvr_file, bundle, tmp_path):
    """A subject T1w that cannot be used does not stop the scan; the record says why."""
    from taupet_bids.interfaces.harmonisation import HarmoniseSUVR

    broken = tmp_path / "t1w_std.nii.gz"
    broken.write_bytes(b"not a NIfTI file")
    node = HarmoniseSUVR(in_file=str(suvr_file), t1w_file=str(broken), bundle=str(bundle),
                         reason="test")  # fmt: skip
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = node.run()
    finally:
        os.chdir(cwd)
    meta = result.outputs.meta
    assert meta["HarmonizationAnatomy"] == "template" and meta["HarmonizationReason"] == "test"
    assert "t1w_std.nii.gz" in meta["HarmonizationAnatomyFallback"]
    assert meta["HarmonizationACMethod"] == "mr"  # the interface's default
    assert Path(result.outputs.harmonized_suvr).exists()


def _args(**options) -> argparse.Namespace:
    return argparse.Namespace(**{"harmonize": "none", "harmonization_model": None, **options})


def test_cli_needs_a_bundle_for_harmonize(bundle, capsys):
    from taupet_bids.cli.parser import _check_harmonization

    with pytest.raises(SystemExit):
        _check_harmonization(_args(harmonize="auto"))
    assert "needs --harmonization-model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _check_harmonization(_args(harmonization_model=bundle))
    assert "needs --harmonize auto or all" in capsys.readouterr().err
    _check_harmonization(_args(harmonize="all", harmonization_model=bundle))
