"""The tau PET template: a voxelwise mean of template-space SUVR images, with provenance."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from taupet_bids import __version__, templates
from taupet_bids.errors import InputError
from taupet_bids.normalisation import pet_template

NAME = "sub-{sub}_trc-18FAV1451_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz"


@pytest.fixture
def grid(templateflow_home) -> tuple[tuple[int, ...], np.ndarray]:
    reference = nib.load(templates.t1w_path(2))
    return reference.shape[:3], reference.affine


def _suvr(path: Path, data: np.ndarray, affine: np.ndarray, region: str = "InfCerebGrey") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), path)
    pet_template.sidecar_path(path).write_text(json.dumps({"ReferenceRegion": region}))
    return path


def test_mean_affine_and_sidecar(tmp_path: Path, grid) -> None:
    shape, affine = grid
    rng = np.random.default_rng(0)
    images = [rng.uniform(0.5, 3.0, shape) for _ in range(3)]
    # A field of view that stops short: 0 there means "not covered", not "SUVR 0".
    images[2][:, :, :10] = 0
    images[1][0, 0, 20] = np.nan
    files = [_suvr(tmp_path / NAME.format(sub=i), d, affine) for i, d in enumerate(images)]
    out = pet_template.build_pet_template(
        files, tmp_path / "tpl" / "t.nii.gz", cohort_seed=9100, command="cmd --x", decimals=None
    )

    image = nib.load(out)
    assert image.get_data_dtype() == np.float32
    assert image.shape == shape
    np.testing.assert_allclose(image.affine, affine)
    assert int(image.header["sform_code"]) == 4
    data = image.get_fdata()
    expected = np.mean([d.astype(np.float32) for d in images], axis=0)
    np.testing.assert_allclose(data[:, :, 10:][1:], expected[:, :, 10:][1:], rtol=1e-5)
    covered = (images[0][:, :, :10] + images[1][:, :, :10]) / 2
    np.testing.assert_allclose(data[1:, :, :10], covered[1:], rtol=1e-5)
    assert data[0, 0, 20] == pytest.approx((images[0][0, 0, 20] + images[2][0, 0, 20]) / 2, 1e-5)

    meta = json.loads((tmp_path / "tpl" / "t.json").read_text())
    assert meta["NumberOfScans"] == 3 and meta["RoundedToDecimals"] is None
    assert meta["CohortSeed"] == 9100
    assert meta["Command"] == "cmd --x"
    assert meta["GeneratedBy"][0]["Version"] == __version__
    assert meta["Space"] == "MNI152NLin6Asym" and meta["Units"] == "SUVR"
    assert meta["ReferenceRegion"] == ["InfCerebGrey"]
    assert meta["Date"][:2] == "20"
    assert meta["MinimumScansPerBrainVoxel"] >= 2


def test_off_grid_image_is_refused(tmp_path: Path, grid) -> None:
    shape, affine = grid
    good = _suvr(tmp_path / "a" / NAME.format(sub=1), np.ones(shape), affine)
    shifted = affine.copy()
    shifted[0, 3] += 2
    bad = _suvr(tmp_path / "b" / NAME.format(sub=2), np.ones(shape), shifted)
    with pytest.raises(InputError, match="not on the MNI152NLin6Asym"):
        pet_template.build_pet_template([good, bad], tmp_path / "t.nii.gz")


def test_main_finds_suvr_images_and_skips_pvc(tmp_path: Path, grid, capsys) -> None:
    shape, affine = grid
    deriv = tmp_path / "derivatives"
    for sub, value in (("001", 1.0), ("002", 2.0)):
        _suvr(deriv / f"sub-{sub}" / "pet" / NAME.format(sub=sub), np.full(shape, value), affine)
    pvc = NAME.format(sub="001").replace("_desc-suvr", "_desc-suvr_pvc-RBV")
    _suvr(deriv / "sub-001" / "pet" / pvc, np.full(shape, 100.0), affine)
    out = tmp_path / "tpl.nii.gz"
    assert pet_template.main([str(deriv), "-o", str(out), "--cohort-seed", "5"]) == 0
    assert np.allclose(nib.load(out).get_fdata(), 1.5)
    rounded = pet_template.build_pet_template(
        [deriv / "sub-001" / "pet" / NAME.format(sub="001"), deriv / "sub-001" / "pet" / pvc],
        tmp_path / "rounded.nii.gz",
    )
    assert np.allclose(nib.load(rounded).get_fdata(), 50.5)
    meta = json.loads(pet_template.sidecar_path(out).read_text())
    assert meta["NumberOfScans"] == 2 and meta["CohortSeed"] == 5
    assert (
        meta["Command"].startswith("taupet-bids-train pet-template ")
        and "--cohort-seed 5" in meta["Command"]
    )
    assert "mean of 2" in capsys.readouterr().out


def test_shipped_template_is_a_plausible_tau_pet_template(templateflow_home) -> None:
    path = pet_template.pet_template_path()
    assert path.stat().st_size < 3 * 2**20
    image = nib.load(path)
    reference = nib.load(templates.t1w_path(2))
    assert image.shape == reference.shape
    np.testing.assert_allclose(image.affine, reference.affine)
    data = image.get_fdata()
    region = nib.load(templates.reference_mask_path("InfCerebGrey")).get_fdata() > 0
    assert data[region].mean() == pytest.approx(1.0, abs=0.02)
    meta = json.loads(pet_template.sidecar_path(path).read_text())
    assert meta["CohortSeed"] == 9100 and meta["NumberOfScans"] >= 10


def test_only_files_in_bids_subject_folders_are_found(tmp_path):
    name = "sub-01_trc-18FAV1451_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz"
    wanted = [tmp_path / "sub-01" / "pet" / name, tmp_path / "sub-01" / "ses-a" / "pet" / name]
    ignored = [
        tmp_path / ".staging" / "sub-01" / "pet" / name,
        tmp_path / "work" / "wf" / "sub-01_node" / "pet" / name,
        tmp_path / "sub-01" / "pet" / name.replace("_desc-suvr", "_pvc-gtm_desc-suvr"),
    ]
    for path in wanted + ignored:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    assert pet_template.find_suvr_images([tmp_path]) == sorted(wanted)
