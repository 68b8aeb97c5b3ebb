"""Partial-volume correction on constructed phantoms whose sharp truth is known."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from taupet_bids import atlases
from taupet_bids.core import pvc
from taupet_bids.core.pvc_segmentation import (
    head_mask,
    mark_missing_data,
    pvc_segmentation,
    reference_tissue,
    segmentation_table,
    subject_labels,
    uncovered_voxels,
)
from taupet_bids.core.suvr import subject_reference
from taupet_bids.interfaces.pvc import PartialVolumeCorrection, PVCSegmentation

ZOOMS = (2.0, 2.0, 2.0)
AFFINE = np.diag([*ZOOMS, 1.0])
FWHM = 7.0
# label -> sharp value; 0 is the air around the "head"
VALUES = {0: 0.0, 1: 0.5, 2: 1.2, 3: 2.5, 4: 1.0, 5: 3.0}
GREY = (3, 4, 5)


def phantom(shape=(40, 44, 36)) -> np.ndarray:
    """Nested shapes: head (1), white matter (2), a cortical shell (3), two small blobs (4, 5)."""
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1) / 2
    r = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)))
    seg = np.zeros(shape, np.int32)
    seg[r < 16] = 1
    seg[r < 12] = 3
    seg[r < 9] = 2
    seg[(grid[0] > 16) & (grid[0] < 20) & (np.abs(grid[1] - centre[1]) < 2) & (r < 9)] = 4
    blob = np.sqrt((grid[0] - 28) ** 2 + (grid[1] - 20) ** 2 + (grid[2] - 18) ** 2) < 2.5
    seg[blob & (r < 12)] = 5
    return seg


@pytest.fixture
def scene():
    seg = phantom()
    sharp = pvc.paint(seg, VALUES)
    sigma = pvc.fwhm_to_sigma(FWHM, ZOOMS)
    return seg, sharp, pvc.blur(sharp, sigma), sigma


def region_mean(image, seg, label):
    return float(np.nanmean(image[seg == label]))


def test_fwhm_and_sidecar_psf():
    sigma = pvc.fwhm_to_sigma(2.0 * np.sqrt(2.0 * np.log(2.0)), (1.0, 2.0, 0.5))
    np.testing.assert_allclose(sigma, (1.0, 0.5, 2.0))
    assert pvc.combine_fwhm(3.0, 4.0) == pytest.approx(5.0)
    sidecar = {"ReconFilterType": "Gaussian", "ReconFilterSize": 4.0}
    assert pvc.psf_fwhm_from_sidecar(sidecar, scanner_fwhm_mm=3.0) == pytest.approx(5.0)
    assert pvc.psf_fwhm_from_sidecar({"ReconFilterType": "none"}, 4.5) == pytest.approx(4.5)
    with pytest.raises(ValueError, match="not Gaussian"):
        pvc.psf_fwhm_from_sidecar({"ReconFilterType": "Hann", "ReconFilterSize": 0.5}, 4.0)
    with pytest.raises(ValueError, match="no PSF"):
        pvc.psf_fwhm_from_sidecar({"ReconFilterType": "none"})
    with pytest.raises(ValueError, match="needs ReconFilterSize"):
        pvc.psf_fwhm_from_sidecar({"ReconFilterType": "Gaussian"}, 4.0)


def test_transfer_matrix_matches_full_volume_blur(scene):
    seg, _, _, sigma = scene
    labels, counts, matrix = pvc.transfer_matrix(seg, sigma)
    for j, label in enumerate(labels):
        spread = pvc.blur((seg == label).astype(float), sigma)
        for i, other in enumerate(labels):
            assert matrix[i, j] == pytest.approx(spread[seg == other].mean(), abs=1e-12)
    assert counts.sum() == seg.size


def test_gtm_recovers_piecewise_constant_truth_exactly(scene):
    seg, _, blurred, sigma = scene
    result = pvc.gtm(blurred, seg, sigma)
    truth = np.array([VALUES[int(label)] for label in result.labels])
    np.testing.assert_allclose(result.corrected, truth, atol=1e-9)
    # the small blob reads well below its truth before correction
    assert result.observed[result.labels == 5][0] < 0.85 * VALUES[5]


def test_gtm_with_wrong_psf_is_biased_in_the_expected_direction(scene):
    seg, _, blurred, _ = scene
    too_small = pvc.gtm(blurred, seg, pvc.fwhm_to_sigma(FWHM - 2, ZOOMS)).values()
    too_large = pvc.gtm(blurred, seg, pvc.fwhm_to_sigma(FWHM + 2, ZOOMS)).values()
    assert too_small[5] < VALUES[5] < too_large[5]


def test_rbv_is_exact_on_piecewise_constant_and_keeps_texture(scene):
    seg, sharp, blurred, sigma = scene
    corrected = pvc.rbv(blurred, seg, sigma)
    inside = seg > 0
    np.testing.assert_allclose(corrected[inside], sharp[inside], atol=1e-8)
    texture = 1.0 + 0.05 * np.sin(np.arange(seg.shape[0]) / 3.0)[:, None, None]
    textured = pvc.blur(sharp * texture, sigma)
    corrected = pvc.rbv(textured, seg, sigma)
    for label in GREY:
        truth = region_mean(sharp * texture, seg, label)
        assert region_mean(corrected, seg, label) == pytest.approx(truth, rel=0.05)


def test_mg_exact_for_uniform_grey_and_close_otherwise(scene):
    seg, sharp, blurred, sigma = scene
    uniform = pvc.paint(seg, {**VALUES, 4: VALUES[3], 5: VALUES[3]})
    corrected = pvc.mueller_gaertner(pvc.blur(uniform, sigma), seg, sigma, GREY)
    kept = np.isfinite(corrected)
    np.testing.assert_allclose(corrected[kept], VALUES[3], atol=1e-8)
    assert np.all(np.isnan(corrected[~np.isin(seg, GREY)]))
    # grey regions of different values: MG assumes a voxel's grey neighbours share its value
    corrected = pvc.mueller_gaertner(blurred, seg, sigma, GREY)
    assert region_mean(corrected, seg, 3) == pytest.approx(VALUES[3], rel=0.05)
    before = region_mean(blurred, seg, 3)
    assert abs(region_mean(corrected, seg, 3) - VALUES[3]) < abs(before - VALUES[3]) / 3


def test_pvc_raises_grey_and_lowers_white_matter_spill_in(scene):
    """The published direction: hot cortex goes up, white matter next to it goes down."""
    seg, _, blurred, sigma = scene
    values = pvc.gtm(blurred, seg, sigma).values()
    assert values[3] > region_mean(blurred, seg, 3)
    assert values[2] < region_mean(blurred, seg, 2)


def test_gtm_rejects_bad_inputs(scene):
    seg, _, blurred, sigma = scene
    with pytest.raises(ValueError, match="outside the region list"):
        pvc.gtm(blurred, seg, sigma, labels=[0, 1, 2])
    bad = blurred.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        pvc.gtm(bad, seg, sigma)


def test_pvc_segmentation_covers_everything():
    dk = np.zeros((6, 6, 6), np.int32)
    dk[2:4, 2:4, 2:4] = 17
    dk[0, 0, 0] = 2  # a DK voxel outside the brain mask keeps its label
    brain = np.zeros_like(dk)
    brain[1:5, 1:5, 1:5] = 1
    t1w = np.zeros(dk.shape)
    t1w[1:6, 0:6, 1:5] = 500.0
    head = head_mask(t1w, brain)
    seg = pvc_segmentation(dk, brain, head)
    assert seg[0, 0, 0] == 2 and seg[2, 2, 2] == 17
    assert seg[1, 1, 1] == pvc.BRAIN_REST_LABEL
    assert seg[5, 0, 2] == pvc.HEAD_REST_LABEL and seg[0, 5, 5] == 0
    assert uncovered_voxels(seg, brain) == 0


def test_head_shells_follow_the_distance_from_the_brain():
    shape = (40, 40, 40)
    r = np.sqrt(sum((g - 19.5) ** 2 for g in np.indices(shape).astype(float)))
    brain = r < 6
    dk = np.where(brain, 17, 0).astype(np.int32)
    head = r < 19
    seg = pvc_segmentation(dk, brain, head, zooms=(1.0, 1.0, 1.0))
    distance = r - 6  # mm from the brain's surface, roughly
    assert set(np.unique(seg[head & (distance > 0.9) & (distance < 3.5)])) == {
        pvc.EXTRACEREBRAL_INNER_LABEL
    }
    assert set(np.unique(seg[head & (distance > 4.6) & (distance < 9.5)])) == {
        pvc.EXTRACEREBRAL_MIDDLE_LABEL
    }
    assert set(np.unique(seg[head & (distance > 10.6)])) == {pvc.HEAD_REST_LABEL}
    assert np.array_equal(pvc_segmentation(dk, brain, head) > 0, seg > 0)
    table = segmentation_table().set_index("index")
    assert table.loc[pvc.EXTRACEREBRAL_INNER_LABEL, "tissue"] == "extracerebral"


def test_gtm_models_hot_meninges_only_with_the_shells():
    """A hot layer just outside the brain spills into cortex; one head region cannot hold it."""
    shape = (48, 48, 48)
    r = np.sqrt(sum((g - 23.5) ** 2 for g in np.indices(shape).astype(float)))
    brain = r < 14
    dk = np.zeros(shape, np.int32)
    dk[r < 14] = 1002  # cortex
    dk[r < 10] = 2  # white matter
    head = r < 21
    truth = np.select([r < 10, r < 14, r < 16, r < 21], [1.2, 1.6, 2.0, 0.4], 0.0)
    sigma = pvc.fwhm_to_sigma(FWHM, ZOOMS)
    blurred = pvc.blur(truth, sigma)
    plain = pvc.gtm(blurred, pvc_segmentation(dk, brain, head), sigma).values()[1002]
    shelled = pvc.gtm(blurred, pvc_segmentation(dk, brain, head, zooms=ZOOMS), sigma).values()
    assert abs(shelled[1002] - 1.6) < abs(plain - 1.6)
    assert shelled[1002] == pytest.approx(1.6, rel=0.03)


def test_regions_cut_by_the_field_of_view_are_judged_by_their_measured_part(scene):
    seg, sharp, _, sigma = scene
    cut = seg.shape[2] // 2 - 2
    sharp = sharp.copy()
    sharp[:, :, :cut] = 0.0  # no activity is detected below the field of view
    observed = pvc.blur(sharp, sigma)
    observed[:, :, :cut] = 0.0
    marked = mark_missing_data(seg, observed)
    assert set(np.unique(marked[:, :, :cut])) <= {0, pvc.NO_DATA_LABEL}
    assert np.array_equal(marked[:, :, cut:], seg[:, :, cut:])
    naive = pvc.gtm(observed, seg, sigma).values()
    fixed = pvc.gtm(observed, marked, sigma).values()
    assert fixed[3] == pytest.approx(VALUES[3], rel=0.02)
    assert abs(naive[3] - VALUES[3]) > 0.2 * VALUES[3]


def test_subject_labels_follow_the_subject_grey_matter():
    shape = (24, 24, 24)
    r = np.sqrt(sum((g - 11.5) ** 2 for g in np.indices(shape).astype(float)))
    brain = r < 10
    dk = np.where(r < 10, 1002, 0).astype(np.int32)  # template cortex: 7 to 10 voxels out
    dk[r < 7] = 2
    gm = ((r >= 5) & (r < 8)).astype(float)  # the subject's cortex sits deeper
    wm = (r < 5).astype(float)
    labels = subject_labels(dk, brain, gm, wm, brain)
    assert set(np.unique(labels[(r >= 5.2) & (r < 7.8)])) == {1002}
    assert set(np.unique(labels[r < 4.8])) == {2}
    assert set(np.unique(labels[(r > 8.2) & (r < 9.8)])) == {0}  # CSF: rest of brain
    seg = pvc_segmentation(labels, brain, r < 12)
    assert set(np.unique(seg[(r > 8.2) & (r < 9.8)])) == {pvc.BRAIN_REST_LABEL}


def write(path, data):
    nib.save(nib.Nifti1Image(np.asarray(data), AFFINE), path)
    return str(path)


@pytest.mark.parametrize("method", pvc.PVC_METHODS)
def test_interface_writes_image_and_table(tmp_path, scene, monkeypatch, method):
    seg, _, blurred, _ = scene
    monkeypatch.chdir(tmp_path)
    labels = pd.DataFrame(
        {
            "index": [0, 1, 2, 3, 4, 5, 99],
            "name": ["air", "head", "wm", "cortex", "blob4", "blob5", "absent"],
            "tissue": ["bg", "other", "white_matter", "cortex", "cortex", "cortex", "cortex"],
        }
    )
    labels.to_csv(tmp_path / "labels.tsv", sep="\t", index=False)
    node = PartialVolumeCorrection(
        in_file=write(tmp_path / "suvr.nii.gz", blurred.astype(np.float32)),
        seg_file=write(tmp_path / "seg.nii.gz", seg.astype(np.int16)),
        labels_file=str(tmp_path / "labels.tsv"),
        method=method,
        fwhm_mm=FWHM,
    )
    result = node.run().outputs
    assert result.fwhm_mm == [FWHM] * 3 and result.condition_number > 1
    assert f"_pvc-{method}" in result.out_file
    table = pd.read_csv(result.out_table, sep="\t").set_index("region")
    assert "absent" not in table.index
    assert list(table.columns) == ["suvr_mean", "suvr_median", "suvr_sd", "volume_ml", "n_voxels"]
    assert table.loc["cortex", "suvr_mean"] == pytest.approx(VALUES[3], rel=0.01)
    assert table.loc["blob5", "n_voxels"] == int((seg == 5).sum())


def test_interface_needs_a_psf(tmp_path, scene, monkeypatch):
    seg, _, blurred, _ = scene
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"index": range(6), "name": list("abcdef")}).to_csv(
        tmp_path / "labels.tsv", sep="\t", index=False
    )
    node = PartialVolumeCorrection(
        in_file=write(tmp_path / "suvr.nii.gz", blurred.astype(np.float32)),
        seg_file=write(tmp_path / "seg.nii.gz", seg.astype(np.int16)),
        labels_file=str(tmp_path / "labels.tsv"),
        method="gtm",
    )
    # The plan resolves the PSF (sidecar, --pvc-fwhm, scanner FWHM); the node never guesses one.
    with pytest.raises(ValueError, match="requires a value for input 'fwhm_mm'"):
        node.run()


def test_segmentation_interface_on_template(tmp_path, monkeypatch, templateflow_home):
    from taupet_bids import templates

    monkeypatch.chdir(tmp_path)
    out = (
        PVCSegmentation(
            dk_file=str(templates.atlas_path("DK", 2)),
            brain_mask=str(templates.brain_mask_path(2)),
            t1w_file=str(templates.t1w_path(2)),
        )
        .run()
        .outputs
    )
    seg = np.asarray(nib.load(out.out_file).dataobj)
    brain = np.asarray(nib.load(templates.brain_mask_path(2)).dataobj)
    assert uncovered_voxels(seg, brain) == 0
    table = pd.read_csv(out.labels_file, sep="\t")
    assert set(np.unique(seg)) <= set(table["index"])
    assert {pvc.BRAIN_REST_LABEL, pvc.HEAD_REST_LABEL, 0} <= set(np.unique(seg))


# ----------------------------------------------------------- reference region renormalisation


def with_reference(seg: np.ndarray) -> np.ndarray:
    """A small grey reference region in the white matter, away from the cortex and blobs."""
    grid = np.indices(seg.shape)
    ball = np.sqrt((grid[0] - 14) ** 2 + (grid[1] - 21.5) ** 2 + (grid[2] - 17.5) ** 2) < 2.5
    out = seg.copy()
    out[ball & (seg == 2)] = pvc.REFERENCE_LABEL
    return out


def test_renormalise_divides_by_the_corrected_reference(scene):
    """With the reference as a GTM region, corrected ratios equal the sharp truth's ratios."""
    seg, _, _, sigma = scene
    seg = with_reference(seg)
    truth = {**VALUES, pvc.REFERENCE_LABEL: 1.6}
    sharp = pvc.paint(seg, truth)
    blurred = pvc.blur(sharp, sigma)
    # the app's input: SUVR against the *uncorrected* reference mean
    suvr = blurred / region_mean(blurred, seg, pvc.REFERENCE_LABEL)
    result = pvc.gtm(suvr, seg, sigma)
    painted = pvc.paint(seg, result.values())
    corrected, value = pvc.renormalise(painted, seg, result, pvc.REFERENCE_LABEL)
    assert value > 1.05  # the blurred reference under-reads its truth, so this is not 1
    assert region_mean(corrected, seg, pvc.REFERENCE_LABEL) == pytest.approx(1.0)
    for label in (2, 3, 5):
        assert region_mean(corrected, seg, label) == pytest.approx(truth[label] / 1.6, rel=1e-6)
    with pytest.raises(ValueError, match="no reference label"):
        pvc.renormalise(corrected, scene[0], pvc.gtm(suvr, scene[0], sigma), pvc.REFERENCE_LABEL)


@pytest.mark.parametrize("method", pvc.PVC_METHODS)
def test_correct_is_the_method_then_the_reference_division(scene, method):
    """correct() (the app's and the benchmark's one entry point) composes the GTM solve, the
    method and the renormalisation exactly as the separate functions do."""
    seg, _, _, sigma = scene
    seg = with_reference(seg)
    blurred = pvc.blur(pvc.paint(seg, {**VALUES, pvc.REFERENCE_LABEL: 1.6}), sigma)
    result = pvc.gtm(blurred, seg, sigma)
    by_hand = {
        "gtm": lambda: pvc.paint(seg, result.values()),
        "rbv": lambda: pvc.rbv(blurred, seg, sigma, result.values()),
        "mg": lambda: pvc.mueller_gaertner(blurred, seg, sigma, GREY, result.values()),
    }[method]()
    expected, value = pvc.renormalise(by_hand, seg, result, pvc.REFERENCE_LABEL)
    done = pvc.correct(
        method, blurred, seg, sigma, gm_labels=GREY, reference_label=pvc.REFERENCE_LABEL
    )
    np.testing.assert_array_equal(done.image, expected)
    assert done.reference_value == value > 1.05
    np.testing.assert_array_equal(done.gtm.corrected, result.corrected)
    plain = pvc.correct(method, blurred, seg, sigma, gm_labels=GREY)
    np.testing.assert_array_equal(plain.image, by_hand)
    assert plain.reference_value == 1.0


def test_correct_rejects_unknown_methods_and_mg_without_grey_matter(scene):
    seg, _, blurred, sigma = scene
    with pytest.raises(ValueError, match="unknown PVC method"):
        pvc.correct("pvc-free", blurred, seg, sigma)
    with pytest.raises(ValueError, match="grey-matter labels"):
        pvc.correct("mg", blurred, seg, sigma)


def test_reference_tissue_classes():
    assert reference_tissue("InfCerebGrey") == "cerebellar_cortex"
    assert reference_tissue("WholeCereb") == "other"  # grey and white mixed
    assert reference_tissue("Pons") == "subcortical"
    table = segmentation_table("InfCerebGrey").set_index("index")
    assert table.loc[pvc.REFERENCE_LABEL, "name"] == "reference-InfCerebGrey"
    assert pvc.REFERENCE_LABEL not in segmentation_table()["index"].tolist()


@pytest.mark.parametrize("method", pvc.PVC_METHODS)
def test_interface_renormalises_to_the_reference(tmp_path, scene, monkeypatch, method):
    seg, _, _, sigma = scene
    seg = with_reference(seg)
    sharp = pvc.paint(seg, {**VALUES, pvc.REFERENCE_LABEL: 1.6})
    blurred = pvc.blur(sharp, sigma)
    suvr = blurred / region_mean(blurred, seg, pvc.REFERENCE_LABEL)
    monkeypatch.chdir(tmp_path)
    pd.DataFrame(
        {
            "index": [0, 1, 2, 3, 4, 5, pvc.REFERENCE_LABEL],
            "name": ["air", "head", "wm", "cortex", "blob4", "blob5", "reference-X"],
            "tissue": ["bg", "other", "white_matter", "cortex", "cortex", "cortex", "cortex"],
        }
    ).to_csv(tmp_path / "labels.tsv", sep="\t", index=False)
    node = PartialVolumeCorrection(
        in_file=write(tmp_path / "suvr.nii.gz", suvr.astype(np.float32)),
        seg_file=write(tmp_path / "seg.nii.gz", seg.astype(np.int16)),
        labels_file=str(tmp_path / "labels.tsv"),
        method=method,
        fwhm_mm=FWHM,
        reference_label=pvc.REFERENCE_LABEL,
    )
    result = node.run().outputs
    assert result.reference_value > 1.05
    table = pd.read_csv(result.out_table, sep="\t").set_index("region")
    assert table.loc["reference-X", "suvr_mean"] == pytest.approx(1.0)
    assert table.loc["cortex", "suvr_mean"] == pytest.approx(2.5 / 1.6, rel=0.03)


def test_segmentation_gives_the_reference_its_own_label(tmp_path, monkeypatch, templateflow_home):
    from taupet_bids import templates

    monkeypatch.chdir(tmp_path)
    mask = templates.reference_mask_path("InfCerebGrey", 2)
    out = (
        PVCSegmentation(
            dk_file=str(templates.atlas_path("DK", 2)),
            brain_mask=str(templates.brain_mask_path(2)),
            t1w_file=str(templates.t1w_path(2)),
            reference_mask=str(mask),
            reference_region="InfCerebGrey",
        )
        .run()
        .outputs
    )
    seg = np.asarray(nib.load(out.out_file).dataobj)
    reference = np.asarray(nib.load(mask).dataobj) > 0
    assert np.array_equal(seg == pvc.REFERENCE_LABEL, reference)
    table = pd.read_csv(out.labels_file, sep="\t").set_index("index")
    assert table.loc[pvc.REFERENCE_LABEL, "tissue"] == "cerebellar_cortex"
    assert out.reference_mask == "template"


def test_segmentation_follows_the_subject_tissues(tmp_path, monkeypatch, templateflow_home):
    """With the subject's tissues the cortex and the reference are cut to its grey matter."""
    from taupet_bids import templates

    monkeypatch.chdir(tmp_path)
    mask = templates.reference_mask_path("InfCerebGrey", 2)
    image = nib.load(templates.brain_mask_path(2))
    brain = np.asarray(image.dataobj) > 0
    dk = np.rint(np.asarray(nib.load(templates.atlas_path("DK", 2)).dataobj)).astype(int)
    grey_labels = [lab.index for lab in atlases.dk_labels() if lab.tissue != "white_matter"]
    gm = (np.isin(dk, grey_labels) & (np.indices(dk.shape)[0] % 4 != 0)).astype(np.float32)
    wm = (brain & (gm == 0)).astype(np.float32)
    tissues = tmp_path / "tissues.nii.gz"
    nib.save(nib.Nifti1Image(np.stack([gm, wm, brain.astype(np.float32)], -1), image.affine),
             tissues)  # fmt: skip
    out = (
        PVCSegmentation(
            dk_file=str(templates.atlas_path("DK", 2)),
            brain_mask=str(templates.brain_mask_path(2)),
            t1w_file=str(templates.t1w_path(2)),
            reference_mask=str(mask),
            reference_region="InfCerebGrey",
            tissues_file=str(tissues),
        )
        .run()
        .outputs
    )
    seg = np.asarray(nib.load(out.out_file).dataobj)
    cortex = [lab.index for lab in atlases.dk_labels() if lab.tissue == "cortex"]
    assert out.reference_mask == "subject-gm"
    assert np.all(gm[np.isin(seg, cortex)] > 0), "no cortical label off the subject's grey"
    assert np.all(gm[seg == pvc.REFERENCE_LABEL] > 0)
    assert np.isin(seg, cortex).sum() < np.isin(dk, cortex).sum()
    assert uncovered_voxels(seg, brain) == 0
    # The reference is all of the mask's grey matter: no margin from the brain's edge
    # (a shell of cerebellar cortex left beside it would trade values with it in the GTM).
    template_reference = np.asarray(nib.load(mask).dataobj) > 0
    assert np.array_equal(seg == pvc.REFERENCE_LABEL, template_reference & (gm >= 0.5) & brain)
    margin_cut, _ = subject_reference(template_reference, gm, brain, (2.0, 2.0, 2.0))
    assert (seg == pvc.REFERENCE_LABEL).sum() > margin_cut.sum()


# --------------------------------------------------------------------- PSF for a pipeline run


def _checked(tmp_path, **sidecar_fields):
    from taupet_bids.bids import check_pet_scan
    from tests.test_bids import sidecar, write_scan

    return check_pet_scan(write_scan(tmp_path / "pet", sidecar(**sidecar_fields)))


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--pvc-fwhm", "0"], "between 0 and 30"),
        (["--pvc-scanner-fwhm", "45"], "between 0 and 30"),
    ],
)
def test_cli_needs_a_sensible_psf(tmp_path, capsys, extra, problem):
    from taupet_bids.cli.parser import parse_args

    with pytest.raises(SystemExit):
        parse_args([str(tmp_path), str(tmp_path / "out"), "participant", "--pvc", "gtm", *extra])
    assert problem in capsys.readouterr().err


def test_cli_takes_the_scanner_resolution(tmp_path):
    from taupet_bids.cli.parser import parse_args

    config = parse_args(
        [str(tmp_path), str(tmp_path / "out"), "participant", "--pvc", "gtm", "rbv",
         "--pvc-scanner-fwhm", "4.5"]
    )  # fmt: skip
    assert config.pvc == ("gtm", "rbv") and config.pvc_scanner_fwhm == 4.5
    assert config.pvc_fwhm is None


def test_regional_values_and_painting_them_on_another_grid(tmp_path, scene, monkeypatch):
    """Label values move between grids without resampling; labels without values are NaN."""
    from taupet_bids.interfaces.pvc import PaintRegions

    seg, _, blurred, sigma = scene
    result = pvc.gtm(blurred, seg, sigma)
    mg = pvc.mueller_gaertner(blurred, seg, sigma, GREY, result.values())
    values = pvc.regional_values(mg, seg, result.labels).set_index("index")["value"]
    assert np.isnan(values[2])  # white matter: MG leaves it undefined
    assert values[3] == pytest.approx(np.nanmean(mg[seg == 3]))
    gtm_values = pvc.regional_values(pvc.paint(seg, result.values()), seg, result.labels)
    np.testing.assert_allclose(gtm_values.value, result.corrected)

    monkeypatch.chdir(tmp_path)
    other = np.zeros((10, 10, 10), np.int16)  # another grid with labels 3, 5 and 7
    other[:5], other[5:8], other[8:] = 3, 5, 7
    gtm_values.to_csv(tmp_path / "values.tsv", sep="\t", index=False, na_rep="n/a")
    out = (
        PaintRegions(
            seg_file=write(tmp_path / "other.nii.gz", other),
            values_file=str(tmp_path / "values.tsv"),
        )
        .run()
        .outputs.out_file
    )
    painted = np.asarray(nib.load(out).dataobj)
    assert painted[0, 0, 0] == pytest.approx(VALUES[3], rel=1e-4)
    assert painted[6, 0, 0] == pytest.approx(VALUES[5], rel=1e-4)
    assert np.isnan(painted[9]).all()  # label 7 has no value


def test_inverse_composition_order():
    """PET -> template: the rigid PET-to-T1w inverted first, then the template registration's
    inverse with its own flags (antspyx maps points through the list in order)."""
    from taupet_bids.workflows.quantification import _compose, _compose_inverse

    transforms, flags = _compose_inverse(["rigid.mat"], ["affine.mat", "inv_warp.nii.gz"],
                                         [True, False])  # fmt: skip
    assert transforms == ["rigid.mat", "affine.mat", "inv_warp.nii.gz"]
    assert flags == [True, True, False]
    assert _compose(["warp.nii.gz", "affine.mat"], ["rigid.mat"])[-1] == "rigid.mat"


def test_methods_text_says_how_pvc_and_staging_were_done(tmp_path):
    from taupet_bids.boilerplate import methods_text
    from taupet_bids.config import RunConfig

    base = dict(
        bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="participant",
        work_dir=tmp_path / "work", reference_region="InfCerebGrey",
    )  # fmt: skip
    plain = " ".join(methods_text(RunConfig(**base)).split())
    assert "No partial-volume correction was applied." in plain and "1.13" not in plain
    text = " ".join(
        methods_text(
            RunConfig(
                **base,
                pvc=("gtm",),
                pvc_scanner_fwhm=4.5,
                braak_thresholds=(1.2, 1.3, 1.4),
                braak_thresholds_source="Example 2020",
            )  # fmt: skip
        ).split()
    )
    assert "scanner resolution (4.5 mm) in quadrature" in text
    assert "on their own PET grid" in text and "reference region was corrected" in text
    assert "1.13, 1.30 and 1.87" in text and "1.2, 1.3, 1.4" in text and "Example 2020" in text


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return matrix


def test_labels_pulled_back_land_where_the_pet_came_from(tmp_path):
    """A PET blob pushed to the template (_compose) and its template label pulled back onto the
    PET grid (_compose_inverse) overlap; the other order does not. Rotations and shifts are
    chosen so that the order of the transforms matters."""
    import ants

    from taupet_bids.core.registration import apply_transforms
    from taupet_bids.workflows.quantification import _compose, _compose_inverse

    def affine_file(name, matrix, shift):
        transform = ants.create_ants_transform(
            transform_type="AffineTransform", dimension=3, matrix=matrix, translation=shift
        )
        ants.write_transform(transform, str(tmp_path / name))
        return str(tmp_path / name)

    template_to_t1w = affine_file("s.mat", _rotation(2, 25), (6.0, -8.0, 4.0))
    t1w_to_pet = affine_file("r.mat", _rotation(0, 20), (-7.0, 5.0, 9.0))
    grid = np.diag([2.0, 2.0, 2.0, 1.0])
    grid[:3, 3] = -40.0
    blob = np.zeros((40, 40, 40), np.float32)
    blob[24:30, 10:16, 14:20] = 100.0  # off-centre, so rotations move it
    nib.save(nib.Nifti1Image(blob, grid), tmp_path / "pet.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((40, 40, 40), np.float32), grid), tmp_path / "std.nii.gz")
    forward = _compose([template_to_t1w], [t1w_to_pet])
    pushed = apply_transforms(
        str(tmp_path / "pet.nii.gz"), str(tmp_path / "std.nii.gz"), forward,
        str(tmp_path / "pet_std.nii.gz"),
    )  # fmt: skip
    label = (np.asarray(nib.load(pushed).dataobj) > 50).astype(np.int16) * 7
    assert label.any()
    nib.save(nib.Nifti1Image(label, grid), tmp_path / "label_std.nii.gz")

    def pull(transforms, flags):
        out = apply_transforms(
            str(tmp_path / "label_std.nii.gz"), str(tmp_path / "pet.nii.gz"), transforms,
            str(tmp_path / "label_pet.nii.gz"), invert_flags=flags, interpolation="genericLabel",
        )  # fmt: skip
        pulled = np.asarray(nib.load(out).dataobj) == 7
        original = blob > 0
        return 2 * (pulled & original).sum() / (pulled.sum() + original.sum())

    assert pull(*_compose_inverse([t1w_to_pet], [template_to_t1w], [True])) > 0.8
    assert pull([template_to_t1w, t1w_to_pet], [True, True]) < 0.3  # the wrong order


# --- soft regions: voxels shared between grey matter, white matter and CSF ------------------


def _mixed_brain(shape=(30, 30, 30)):
    """A sphere: white matter inside, a cortical ribbon, CSF, then head; tissue edges are ramps,
    so many 2 mm voxels hold two tissues, as in a real brain."""
    r = np.sqrt(sum((g - (n - 1) / 2) ** 2 for g, n in zip(np.indices(shape), shape, strict=True)))
    wm = np.clip((6.5 - r) / 2.0, 0.0, 1.0)  # 1 inside r = 4.5, 0 beyond 6.5
    gm = np.clip(np.minimum(r - 4.5, 8.5 - r) / 2.0, 0.0, 1.0) * (1.0 - wm)  # thin ribbon
    brain = r < 10.5
    dk = np.zeros(shape, np.int32)
    dk[brain & (gm >= 0.5)] = 1002  # a cortical label
    dk[brain & (wm >= 0.5)] = 2  # cerebral white matter
    seg = pvc_segmentation(dk, brain, r < 13.5)
    return seg, gm * brain, wm * brain, brain, r


def test_tissue_mixing_shares_brain_voxels_by_their_fractions():
    from taupet_bids.core.pvc_segmentation import tissue_mixing

    seg, gm, wm, brain, r = _mixed_brain()
    mixing = tissue_mixing(seg, gm, wm)
    np.testing.assert_allclose(mixing.weights.sum(axis=0), 1.0, atol=1e-6)
    head = seg == pvc.HEAD_REST_LABEL
    assert np.all(mixing.labels[0][head] == pvc.HEAD_REST_LABEL)
    assert np.all(mixing.weights[0][head] == 1.0)
    edge = brain & (gm > 0.2) & (gm < 0.8) & (wm == 0)  # grey matter and CSF in one voxel
    assert edge.any()
    assert set(np.unique(mixing.labels[0][edge])) == {1002}
    assert set(np.unique(mixing.labels[2][edge])) == {pvc.BRAIN_REST_LABEL}
    np.testing.assert_allclose(mixing.weights[0][edge], gm[edge], atol=1e-6)
    np.testing.assert_allclose(mixing.weights[2][edge], 1.0 - gm[edge], atol=1e-6)


def test_soft_gtm_recovers_tissue_values_where_hard_labels_cannot():
    """An image that mixes tissues as the voxels do: soft GTM is exact, hard GTM is not."""
    from taupet_bids.core.pvc_segmentation import tissue_mixing

    seg, gm, wm, brain, r = _mixed_brain()
    cortex, white, csf, head = 2.0, 1.2, 0.4, 0.6
    sharp = np.where(brain, gm * cortex + wm * white + (1.0 - gm - wm) * csf, 0.0)
    sharp[seg == pvc.HEAD_REST_LABEL] = head
    sigma = pvc.fwhm_to_sigma(FWHM, ZOOMS)
    blurred = pvc.blur(sharp, sigma)
    soft = pvc.gtm(blurred, seg, sigma, mixing=tissue_mixing(seg, gm, wm)).values()
    assert soft[1002] == pytest.approx(cortex, rel=1e-6)
    assert soft[2] == pytest.approx(white, rel=1e-6)
    assert soft[pvc.BRAIN_REST_LABEL] == pytest.approx(csf, rel=1e-6)
    hard = pvc.gtm(blurred, seg, sigma).values()
    assert abs(hard[1002] / cortex - 1.0) > 0.03  # the ribbon's edges dilute a hard label
    # RBV's synthetic image mixes the same way, so it is exact voxel by voxel
    corrected = pvc.rbv(blurred, seg, sigma, mixing=tissue_mixing(seg, gm, wm))
    np.testing.assert_allclose(corrected[brain], sharp[brain], rtol=1e-6, atol=1e-8)
    # Müller-Gärtner divides by each voxel's grey share: the cortex's value wherever it is kept
    grey = pvc.mueller_gaertner(blurred, seg, sigma, [1002], mixing=tissue_mixing(seg, gm, wm))
    kept = np.isfinite(grey)
    assert kept.sum() > 100
    np.testing.assert_allclose(grey[kept], cortex, rtol=1e-6)


def test_the_interface_makes_regions_soft_with_the_tissues(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seg, gm, wm, brain, _ = _mixed_brain()
    sharp = np.where(brain, gm * 2.0 + wm * 1.2 + (1.0 - gm - wm) * 0.4, 0.0)
    sharp[seg == pvc.HEAD_REST_LABEL] = 0.6
    blurred = pvc.blur(sharp, pvc.fwhm_to_sigma(FWHM, ZOOMS)).astype(np.float32)
    pd.DataFrame(
        {
            "index": [0, 2, 1002, pvc.BRAIN_REST_LABEL, pvc.HEAD_REST_LABEL],
            "name": ["air", "wm", "cortex", "csf", "head"],
            "tissue": ["background", "white_matter", "cortex", "other", "extracerebral"],
        }
    ).to_csv(tmp_path / "labels.tsv", sep="\t", index=False)
    tissues = np.stack([gm, wm, brain.astype(float)], axis=-1).astype(np.float32)
    inputs = {
        "in_file": write(tmp_path / "pet.nii.gz", np.where(blurred > 0, blurred, 1e-6)),
        "seg_file": write(tmp_path / "seg.nii.gz", seg.astype(np.int16)),
        "labels_file": str(tmp_path / "labels.tsv"),
        "method": "gtm",
        "fwhm_mm": FWHM,
    }

    def cortex_value(**extra):  # each run writes the same file name: read it at once
        out = PartialVolumeCorrection(**inputs, **extra).run().outputs
        return pd.read_csv(out.out_values, sep="\t").set_index("index")["value"][1002]

    value = {"hard": cortex_value()}
    value["soft"] = cortex_value(tissues_file=write(tmp_path / "tissues.nii.gz", tissues))
    assert value["soft"] == pytest.approx(2.0, rel=1e-3)
    assert abs(value["hard"] / 2.0 - 1.0) > 0.03


def test_grey_matter_beside_the_cerebellum_is_cerebellar_cortex():
    """Unlabelled grey matter takes the nearest grey label, cerebral or cerebellar alike."""
    from taupet_bids.core.tissue_labels import redraw_labels

    (fusiform,) = atlases.dk_indices(["fusiform"])[:1]
    cerebellar = atlases.dk_indices(["cerebellum-cortex"])[0]
    dk = np.zeros((30, 10, 10), np.int32)
    dk[:10] = fusiform  # cerebral cortex above ...
    dk[20:] = cerebellar  # ... the cerebellum below, a gap between them
    is_gm = np.ones(dk.shape, bool)
    labels = redraw_labels(dk, is_gm, np.zeros(dk.shape, bool), np.ones(dk.shape, bool))
    assert set(np.unique(labels[10:14])) == {fusiform}
    assert set(np.unique(labels[16:20])) == {cerebellar}
