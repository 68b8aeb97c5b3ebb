"""Tissue fractions from the T1w's intensity histogram (the mixel model): the pure intensities
are found where a segmentation's class means are not, and a mixed voxel gets its fraction."""

from __future__ import annotations

import ants
import numpy as np
import pytest

from taupet_bids.core.segmentation import segment_tissue_maps, segment_tissues
from taupet_bids.core.tissue_fractions import (
    expected_fractions,
    fit_mixel_model,
    tissue_fractions,
)

PURE = {"csf": 30.0, "gm": 60.0, "wm": 90.0}


@pytest.fixture(autouse=True)
def _templateflow(templateflow_home):
    """Workflows import TemplateFlow: its home must be set before the first import."""


def _mixed_voxels(n: int = 40000, noise: float = 2.0, seed: int = 0):
    """Intensities and true grey fractions: a third of the voxels mixtures, as at a 2 mm cortex."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(5, size=n, p=[0.15, 0.25, 0.25, 0.15, 0.20])
    share = rng.uniform(0, 1, n)
    grey = np.select([kind == 1, kind == 3, kind == 4], [1.0, share, share], 0.0)
    white = np.select([kind == 2, kind == 4], [1.0, 1.0 - share], 0.0)
    csf = 1.0 - grey - white
    values = csf * PURE["csf"] + grey * PURE["gm"] + white * PURE["wm"]
    return values + rng.normal(0, noise, n), grey, white


def test_the_fit_finds_the_pure_intensities_from_biased_class_means():
    values, _, _ = _mixed_voxels()
    # class means as a segmentation of mixed voxels gives them: pulled towards the mixtures
    model = fit_mixel_model(values, (40.0, 63.0, 84.0))
    assert model.csf == pytest.approx(PURE["csf"], abs=1.5)
    assert model.gm == pytest.approx(PURE["gm"], abs=1.5)
    assert model.wm == pytest.approx(PURE["wm"], abs=1.5)
    assert model.sigma == pytest.approx(2.0, rel=0.5)
    assert sum(model.weights) == pytest.approx(1.0)
    assert model.weights[3] + model.weights[4] == pytest.approx(0.35, abs=0.07)


def test_expected_fractions_follow_the_true_ones_where_a_hard_class_does_not():
    values, grey, white = _mixed_voxels()
    model = fit_mixel_model(values, (40.0, 63.0, 84.0))
    est_grey, est_white = expected_fractions(values, model)
    hard_grey = (np.abs(values - model.gm) < np.abs(values - model.csf)) & (
        np.abs(values - model.gm) < np.abs(values - model.wm)
    )
    error = np.abs(est_grey - grey).mean()
    assert error < 0.06
    assert error < 0.4 * np.abs(hard_grey - grey).mean()
    assert np.abs(est_white - white).mean() < 0.06
    assert abs(est_grey.sum() / grey.sum() - 1) < 0.03
    assert np.all(est_grey + est_white <= 1 + 1e-9) and est_grey.min() >= 0


def test_fractions_are_zero_outside_the_mask_and_keep_the_image_shape():
    values, _, _ = _mixed_voxels(n=20 * 20 * 20)
    image = values.reshape(20, 20, 20)
    mask = np.zeros(image.shape)
    mask[2:18, 2:18, 2:18] = 1
    probabilities = [np.abs(image - m) < 15 for m in PURE.values()]
    grey, white, model = tissue_fractions(image, mask, [p.astype(float) for p in probabilities])
    assert grey.shape == image.shape and grey.dtype == np.float32
    assert grey[mask == 0].max() == 0 and white[mask == 0].max() == 0
    assert model.csf < model.gm < model.wm


@pytest.mark.parametrize(
    ("values", "message"),
    [(np.ones(5000), "do not vary"), (np.arange(100.0), "too few")],
)
def test_a_brain_without_contrast_or_voxels_is_refused(values, message):
    with pytest.raises(ValueError, match=message):
        fit_mixel_model(values, (1.0, 2.0, 3.0))


def test_segmenting_a_phantom_with_a_partial_grey_shell_gives_its_grey_matter():
    """A WM core, a GM shell and CSF, each boundary voxel a mixture (the image at 0.5 mm
    averaged to 2 mm): the fractions' grey volume is the shell's, the posteriors' is not."""
    n, fine = 40, 4
    z, y, x = (np.mgrid[: n * fine, : n * fine, : n * fine] + 0.5) / fine
    radius = np.sqrt((x - n / 2) ** 2 + (y - n / 2) ** 2 + (z - n / 2) ** 2)
    tissue = np.where(radius < 8.3, 2, np.where(radius < 11.6, 1, 0))
    grey_fine = (tissue == 1).astype(np.float32)
    image_fine = np.choose(tissue, [20.0, 60.0, 100.0]).astype(np.float32)
    shape = (n, fine, n, fine, n, fine)
    image = image_fine.reshape(shape).mean(axis=(1, 3, 5))
    grey = grey_fine.reshape(shape).mean(axis=(1, 3, 5))
    image += np.random.default_rng(1).normal(0, 2.0, image.shape)
    centre = np.sqrt(sum((g - n / 2 + 0.5) ** 2 for g in np.mgrid[:n, :n, :n]))
    mask = (centre < 16).astype(np.float32)
    t1w = ants.from_numpy(image.astype(np.float32), spacing=(2.0,) * 3)
    brain = ants.from_numpy(mask, spacing=(2.0,) * 3)
    maps = segment_tissue_maps(t1w, brain)
    gm_fraction, wm_fraction, gm_posterior = maps.gm_fraction, maps.wm_fraction, maps.gm
    assert np.array_equal(gm_posterior.numpy(), segment_tissues(t1w, brain)[0].numpy())
    truth = grey[mask > 0].sum()
    assert gm_fraction.numpy().sum() == pytest.approx(truth, rel=0.05)
    mixed = (grey > 0.1) & (grey < 0.9)
    fraction_error = np.abs(gm_fraction.numpy() - grey)[mixed].mean()
    posterior_error = np.abs(gm_posterior.numpy() - grey)[mixed].mean()
    assert fraction_error < 0.15 and fraction_error < 0.7 * posterior_error
    assert wm_fraction.numpy()[centre < 6].mean() > 0.9


def test_the_segmentation_node_writes_fractions_in_the_tissue_layout(tmp_path, monkeypatch):
    from taupet_bids.interfaces.segmentation import TissueSegmentation, tissue_volumes

    values, _, _ = _mixed_voxels(n=24**3)
    image = ants.from_numpy(values.reshape(24, 24, 24).astype(np.float32), spacing=(2.0,) * 3)
    mask = ants.from_numpy(np.ones((24, 24, 24), np.float32), spacing=(2.0,) * 3)
    ants.image_write(image, str(tmp_path / "t1w.nii.gz"))
    ants.image_write(mask, str(tmp_path / "mask.nii.gz"))
    monkeypatch.chdir(tmp_path)
    inputs = {"in_file": str(tmp_path / "t1w.nii.gz"), "mask_file": str(tmp_path / "mask.nii.gz")}
    without = TissueSegmentation(**inputs).run().outputs
    assert not without.out_fractions
    outputs = TissueSegmentation(**inputs, fractions=True).run().outputs
    fractions, posteriors = (
        tissue_volumes(outputs.out_fractions),
        tissue_volumes(outputs.out_tissues),
    )
    assert np.array_equal(fractions["brain"], posteriors["brain"])
    assert not np.allclose(fractions["GM"], posteriors["GM"])
    assert np.all(fractions["GM"] + fractions["WM"] <= 1 + 1e-5)


def _plans(tmp_path, **options):
    from taupet_bids.plan import plan_scan
    from tests.test_plan import _checked, _config

    def plan(folder, t1w=True, **more):
        return plan_scan(_config(tmp_path, **{**options, **more}), _checked(folder, t1w=t1w))

    return plan


def test_soft_regions_only_where_the_correction_has_the_subjects_tissues(tmp_path):
    plan = _plans(tmp_path, pvc=("gtm",), pvc_fwhm=6.0, pvc_regions="soft")
    assert plan(tmp_path / "a", regional_mask="subject-gm").pvc_soft_regions
    assert not plan(tmp_path / "b", regional_mask="template").pvc_soft_regions
    assert not plan(tmp_path / "c", t1w=False, regional_mask="subject-gm").pvc_soft_regions
    assert not plan(tmp_path / "d", regional_mask="subject-gm", pvc=()).pvc_soft_regions
    hard = plan(tmp_path / "e", regional_mask="subject-gm", pvc_regions="hard")
    assert not hard.pvc_soft_regions


def test_the_graph_brings_the_fractions_onto_the_pet_grid_for_every_method(tmp_path):
    from taupet_bids.workflows.base import init_participant_wf
    from taupet_bids.workflows.outputs import init_outputs_wf

    plan = _plans(tmp_path, pvc=("gtm", "rbv"), pvc_fwhm=6.0, regional_mask="subject-gm")
    soft, hard = plan(tmp_path / "a", pvc_regions="soft"), plan(tmp_path / "b")
    graph = init_participant_wf([soft], tmp_path / "w1")
    flat = graph._create_flat_graph()
    edges = {(u.fullname.split(".")[-1], v.fullname.split(".")[-1]): d["connect"]
             for u, v, d in flat.edges(data=True)}  # fmt: skip
    for method in ("gtm", "rbv"):
        assert ("out_file", "tissues_file") in edges[("pvc_fractions_to_pet", f"pvc_{method}")]
    node = next(n for n in flat.nodes if n.fullname.endswith("tissue_segmentation"))
    assert node.inputs.fractions is True
    hard_names = {n.split(".")[-1] for n in init_participant_wf([hard], tmp_path / "w2")
                  .list_node_names()}  # fmt: skip
    assert "pvc_fractions_to_pet" not in hard_names and "tissue_segmentation" in hard_names
    meta = init_outputs_wf(soft).get_node("ds_table_DK_pvc_gtm").interface._metadata
    assert meta["PVCRegions"].startswith("soft")
    hard_meta = init_outputs_wf(hard).get_node("ds_table_DK_pvc_gtm").interface._metadata
    assert hard_meta["PVCRegions"].startswith("hard")


def test_the_option_and_the_methods_text(tmp_path):
    from taupet_bids.boilerplate import methods_text
    from taupet_bids.cli.parser import parse_args
    from tests.test_plan import _config

    base = [str(tmp_path), str(tmp_path / "out"), "participant"]
    assert parse_args(base).pvc_regions == "hard"
    assert parse_args([*base, "--pvc-regions", "soft"]).pvc_regions == "soft"
    with pytest.raises(SystemExit):
        parse_args([*base, "--pvc-regions", "fuzzy"])
    soft = methods_text(
        _config(tmp_path, regional_mask="subject-gm", pvc=("gtm",), pvc_regions="soft")
    )
    assert "mixel model" in soft and "IEEE Trans Med Imaging 12:566-574" in soft
    hard = methods_text(_config(tmp_path, regional_mask="subject-gm", pvc=("gtm",)))
    assert "mixel" not in hard


def test_a_brain_too_small_to_fit_is_refused_by_name_for_soft_regions(tmp_path, monkeypatch):
    from taupet_bids.errors import InputError
    from taupet_bids.interfaces.segmentation import TissueSegmentation

    values, _, _ = _mixed_voxels(n=24**3)
    flat = ants.from_numpy(values.reshape(24, 24, 24).astype(np.float32), spacing=(2.0,) * 3)
    small = np.zeros((24, 24, 24), np.float32)
    small[:8, :8, :8] = 1  # 512 voxels: Atropos segments them, the mixel fit needs 1000
    mask = ants.from_numpy(small, spacing=(2.0,) * 3)
    ants.image_write(flat, str(tmp_path / "sub-01_T1w.nii.gz"))
    ants.image_write(mask, str(tmp_path / "mask.nii.gz"))
    monkeypatch.chdir(tmp_path)
    node = TissueSegmentation(
        in_file=str(tmp_path / "sub-01_T1w.nii.gz"), mask_file=str(tmp_path / "mask.nii.gz")
    )
    node.inputs.fractions = True
    with pytest.raises(InputError, match=r"sub-01_T1w.nii.gz: tissue fractions: 512 brain voxel"):
        node.run()


def test_a_t1w_atropos_cannot_segment_is_refused_by_name(tmp_path, monkeypatch):
    """A T1w without contrast: Atropos fails with antspyx's bare Exception; the node names the
    file instead."""
    from taupet_bids.errors import InputError
    from taupet_bids.interfaces.segmentation import TissueSegmentation

    flat = ants.from_numpy(np.full((24, 24, 24), 50.0, np.float32), spacing=(2.0,) * 3)
    mask = ants.from_numpy(np.ones((24, 24, 24), np.float32), spacing=(2.0,) * 3)
    ants.image_write(flat, str(tmp_path / "sub-02_T1w.nii.gz"))
    ants.image_write(mask, str(tmp_path / "mask.nii.gz"))
    monkeypatch.chdir(tmp_path)
    node = TissueSegmentation(
        in_file=str(tmp_path / "sub-02_T1w.nii.gz"), mask_file=str(tmp_path / "mask.nii.gz")
    )
    with pytest.raises(InputError, match=r"sub-02_T1w.nii.gz: tissue segmentation: .*Atropos"):
        node.run()


def test_a_tiny_brain_mask_on_the_default_path_is_named_a_segmentation_problem(
    tmp_path, monkeypatch
):
    """Without soft regions no fractions are fitted, so the message must not blame them."""
    from taupet_bids.errors import InputError
    from taupet_bids.interfaces.segmentation import TissueSegmentation

    mask = np.zeros((8, 8, 8), np.float32)
    mask[0, 0, :3] = 1
    ants.image_write(ants.from_numpy(np.random.default_rng(0).random((8, 8, 8), np.float32)),
                     str(tmp_path / "sub-03_T1w.nii.gz"))  # fmt: skip
    ants.image_write(ants.from_numpy(mask), str(tmp_path / "mask.nii.gz"))
    monkeypatch.chdir(tmp_path)
    node = TissueSegmentation(
        in_file=str(tmp_path / "sub-03_T1w.nii.gz"), mask_file=str(tmp_path / "mask.nii.gz")
    )
    with pytest.raises(InputError, match=r"sub-03_T1w.nii.gz: tissue segmentation: .*too few"):
        node.run()
