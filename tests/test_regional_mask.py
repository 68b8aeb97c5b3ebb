"""``--regional-mask subject-gm``: Atropos tissue classes, regional means over the subject's grey
matter, a reference cut to that grey matter away from the brain's edge, and the template kept
wherever the subject-GM masks cannot be made (MR-less scans, empty regions)."""

from __future__ import annotations

import tempfile

import ants
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from taupet_bids import greymatter
from taupet_bids.atlases.regions import grey_matter_labels
from taupet_bids.config import DEFAULT_REGIONAL_MASK, REGIONAL_MASKS
from taupet_bids.core.regions import grey_matter_statistics, regional_statistics
from taupet_bids.core.segmentation import segment_tissues
from taupet_bids.core.suvr import subject_reference
from tests.test_plan import _checked, _config


@pytest.fixture(autouse=True)
def _templateflow(templateflow_home):
    """Workflows import TemplateFlow: its home must be set before the first import."""


def _sphere_t1w(spacing: float = 2.0, n: int = 40, noise: float = 5.0):
    """WM core (100), GM shell (60), CSF (20) with noise; radius in voxels from the centre."""
    z, y, x = np.mgrid[:n, :n, :n]
    radius = np.sqrt((x - n / 2) ** 2 + (y - n / 2) ** 2 + (z - n / 2) ** 2)
    image = np.where(radius < 8, 100.0, np.where(radius < 13, 60.0, 20.0))
    image += np.random.default_rng(0).normal(0, noise, image.shape)
    mask = (radius < 16).astype(np.float32)
    as_ants = ants.from_numpy(image.astype(np.float32), spacing=(spacing,) * 3)
    return as_ants, ants.from_numpy(mask, spacing=(spacing,) * 3), radius


def test_atropos_finds_the_grey_matter_shell():
    t1w, mask, radius = _sphere_t1w()
    gm, wm, brain = segment_tissues(t1w, mask)
    gm, wm = gm.numpy(), wm.numpy()
    shell, core, csf = (radius > 9) & (radius < 12), radius < 7, (radius > 14) & (radius < 16)
    assert gm[shell].mean() > 0.9 and gm[core].mean() < 0.1 and gm[csf].mean() < 0.1
    assert wm[core].mean() > 0.9 and wm[shell].mean() < 0.1
    assert gm[radius >= 16].max() == 0  # nothing outside the brain mask
    assert brain.numpy().sum() == mask.numpy().sum()


def test_atropos_gives_the_same_probabilities_every_time():
    """With Atropos's default asynchronous label updates, repeated runs on this noisy phantom
    differed by up to 0.025 in GM probability (and on a simulated T1w by up to 0.07)."""
    t1w, mask, _ = _sphere_t1w(noise=15.0)
    runs = [segment_tissues(t1w, mask) for _ in range(4)]
    for gm, wm, _ in runs[1:]:
        assert np.array_equal(gm.numpy(), runs[0][0].numpy())
        assert np.array_equal(wm.numpy(), runs[0][1].numpy())


def test_atropos_leaves_no_files_in_the_temporary_folder(tmp_path, monkeypatch):
    """antspyx's atropos writes probability images to mktemp names and keeps them; we do not."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    t1w, mask, _ = _sphere_t1w(n=24)
    gm, _, _ = segment_tissues(t1w, mask)
    assert gm.numpy().max() > 0.5  # read before the folder went
    assert list(tmp_path.iterdir()) == []
    assert tempfile.gettempdir() == str(tmp_path)


def test_atropos_runs_on_a_coarser_grid_than_a_1mm_t1w():
    t1w, mask, _ = _sphere_t1w(spacing=1.0)
    gm, _, _ = segment_tissues(t1w, mask)
    assert gm.spacing == (greymatter.SEGMENTATION_MM,) * 3 and gm.shape == (20, 20, 20)


def test_interface_stacks_the_volumes_it_writes(tmp_path, monkeypatch):
    from taupet_bids.interfaces.segmentation import TissueSegmentation, tissue_volumes

    t1w, mask, _ = _sphere_t1w()
    ants.image_write(t1w, str(tmp_path / "t1w.nii.gz"))
    ants.image_write(mask, str(tmp_path / "mask.nii.gz"))
    monkeypatch.chdir(tmp_path)
    result = TissueSegmentation(
        in_file=str(tmp_path / "t1w.nii.gz"), mask_file=str(tmp_path / "mask.nii.gz")
    ).run()
    volumes = tissue_volumes(result.outputs.out_tissues)
    gm = np.asarray(nib.load(result.outputs.out_gm).dataobj)
    np.testing.assert_allclose(volumes["GM"], gm, atol=1e-6)
    assert set(np.unique(volumes["brain"])) == {0.0, 1.0}


def _slab_atlas():
    """A cortical label (precuneus, 1025) over x 4-7 beside white matter (label 2) over x 8-11."""
    atlas = np.zeros((16, 8, 8), np.int16)
    atlas[4:8] = 1025
    atlas[8:12] = 2
    suvr = np.where(atlas == 2, 2.0, 1.0)  # white matter reads high, cortex low
    return atlas, suvr, {1025: "ctx-lh-precuneus", 2: "Left-Cerebral-White-Matter"}


def test_subject_grey_matter_mean_drops_the_white_matter_the_template_label_covers():
    atlas, suvr, labels = _slab_atlas()
    # The subject's cortex sits 2 voxels further out than the template's: the template label's
    # inner half is the subject's white matter, which reads high.
    gm = np.zeros(atlas.shape)
    gm[2:6] = 0.9
    suvr = suvr.copy()
    suvr[6:8] = 2.0
    template = regional_statistics(suvr, atlas, 0.008, labels).set_index("region")
    subject, fallbacks = grey_matter_statistics(
        suvr, atlas, gm, 0.008, labels, grey_matter_labels("DK")
    )
    subject = subject.set_index("region")
    assert template.loc["ctx-lh-precuneus", "suvr_mean"] == pytest.approx(1.5)
    assert subject.loc["ctx-lh-precuneus", "suvr_mean"] == pytest.approx(1.0)
    assert subject.loc["ctx-lh-precuneus", "n_voxels"] == 2 * 8 * 8
    # White matter is not a grey-matter label: its voxels are the template's, GM or not.
    assert subject.loc["Left-Cerebral-White-Matter", "n_voxels"] == 4 * 8 * 8
    assert fallbacks == []


def test_a_region_without_subject_grey_matter_keeps_its_template_voxels():
    atlas, suvr, labels = _slab_atlas()
    gm = np.full(atlas.shape, 0.4)  # below the threshold everywhere
    table, fallbacks = grey_matter_statistics(
        suvr, atlas, gm, 0.008, labels, grey_matter_labels("DK")
    )
    assert fallbacks == ["ctx-lh-precuneus"]
    row = table.set_index("region").loc["ctx-lh-precuneus"]
    assert row.n_voxels == 4 * 8 * 8 and row.suvr_mean == pytest.approx(1.0)


def test_grey_matter_labels_follow_the_dk_tissue_column():
    dk = set(grey_matter_labels("DK"))
    assert {1025, 2025, 17, 53, 18, 54, 8, 47} <= dk  # cortex, hippocampus, amygdala, cerebellum
    assert not {2, 41, 4, 10, 11, 12, 24, 31} & dk  # WM, ventricle, deep nuclei, CSF, plexus
    assert grey_matter_labels("Braak") == [1, 2, 3, 4, 5, 6]
    assert grey_matter_labels("MetaTemporal") == [1]


def _reference_scene():
    """Template reference box (z 8-21), all grey matter, a white matter slab just below it (z
    5-7), and a brain mask that ends at z 22, one voxel above the box (2 mm voxels)."""
    shape = (30, 30, 30)
    template = np.zeros(shape, np.uint8)
    template[8:22, 8:22, 8:22] = 1
    gm = template.astype(float)
    wm = np.zeros(shape)
    wm[8:22, 8:22, 5:8] = 1.0  # white matter just below the box
    brain = np.zeros(shape)
    brain[4:26, 4:26, 4:23] = 1  # brain ends 1 voxel above the box
    return template, gm, wm, brain


def test_reference_keeps_the_cortex_beside_white_matter_and_leaves_the_brain_edge():
    template, gm, wm, brain = _reference_scene()
    mask, kind = subject_reference(template, gm, brain, (2.0, 2.0, 2.0))
    assert kind == "subject-gm" and mask.sum() >= greymatter.MIN_REFERENCE_VOXELS
    assert mask.sum() < template.sum()
    z = np.nonzero(mask)[2]
    assert z.min() == 8  # beside the white matter at z=7: kept, as the truth's reference has it
    # z=23 is outside the brain: z=21 is 4 mm from it (gone), z=20 6 mm (kept).
    assert z.max() == 20
    assert not mask[~(template > 0)].any()


def test_reference_is_cut_to_the_subject_grey_matter():
    template, gm, wm, brain = _reference_scene()
    gm[:, :, 14:] = 0.3
    mask, kind = subject_reference(template, gm, brain, (2.0, 2.0, 2.0))
    assert kind == "subject-gm" and not mask[:, :, 14:].any() and mask.any()


def test_reference_falls_back_to_the_template_when_too_little_is_left():
    template, gm, wm, brain = _reference_scene()
    mask, kind = subject_reference(template, np.zeros_like(gm), brain, (2.0, 2.0, 2.0))
    assert kind == "template-fallback"
    np.testing.assert_array_equal(mask, template)


def test_suvr_uses_the_restricted_reference(tmp_path, monkeypatch):
    from taupet_bids.interfaces.quantification import ComputeSUVR

    template, gm, wm, brain = _reference_scene()
    pet = np.full(template.shape, 10.0)
    pet[:, :, 21:] = 20.0  # venous-sinus spill-over at the brain's edge
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for name, data in (("pet", pet), ("ref", template)):
        nib.save(nib.Nifti1Image(data.astype(np.float32), affine), tmp_path / f"{name}.nii.gz")
    tissues = np.stack([gm, wm, brain], axis=-1).astype(np.float32)
    nib.save(nib.Nifti1Image(tissues, affine), tmp_path / "tissues.nii.gz")
    monkeypatch.chdir(tmp_path)
    inputs = {
        "in_file": str(tmp_path / "pet.nii.gz"),
        "reference_mask": str(tmp_path / "ref.nii.gz"),
    }
    template_run = ComputeSUVR(**inputs).run().outputs
    subject_run = ComputeSUVR(**inputs, tissues_file=str(tmp_path / "tissues.nii.gz")).run().outputs
    assert template_run.reference_mask == "template" and template_run.reference_value > 10.0
    assert subject_run.reference_mask == "subject-gm"
    assert subject_run.reference_value == pytest.approx(10.0)
    used = np.asarray(nib.load(subject_run.reference_mask_file).dataobj)
    assert used.sum() == subject_run.reference_nvoxels < template.sum()


def test_parser_accepts_the_two_masks_and_defaults_to_the_constant(tmp_path, capsys):
    from taupet_bids.cli.parser import parse_args

    base = [str(tmp_path), str(tmp_path / "out"), "participant"]
    assert REGIONAL_MASKS == ("template", "subject-gm")
    assert parse_args(base).regional_mask == DEFAULT_REGIONAL_MASK == "subject-gm"
    assert parse_args([*base, "--regional-mask", "template"]).regional_mask == "template"
    assert parse_args([*base, "--regional-mask", "subject-gm"]).regional_mask == "subject-gm"
    with pytest.raises(SystemExit):
        parse_args([*base, "--regional-mask", "subject-wm"])
    assert "invalid choice" in capsys.readouterr().err


def test_plan_keeps_the_template_without_a_t1w(tmp_path):
    from taupet_bids.plan import plan_scan

    config = _config(tmp_path, regional_mask="subject-gm")
    with_t1w = plan_scan(config, _checked(tmp_path / "a"))
    without = plan_scan(config, _checked(tmp_path / "b", t1w=False))
    assert with_t1w.subject_gm and with_t1w.regional_mask == "subject-gm"
    assert without.mr_less and without.regional_mask == "template" and not without.subject_gm
    assert "needs a T1w" in without.regional_mask_reason
    default = plan_scan(_config(tmp_path), _checked(tmp_path / "c"))
    assert default.regional_mask == DEFAULT_REGIONAL_MASK == "subject-gm"


def _node_names(plan, work):
    from taupet_bids.workflows.base import init_participant_wf

    return {name.split(".")[-1] for name in init_participant_wf([plan], work).list_node_names()}


def test_graph_segments_only_when_the_plan_asks(tmp_path):
    from taupet_bids.plan import plan_scan

    subject = plan_scan(_config(tmp_path, regional_mask="subject-gm"), _checked(tmp_path / "a"))
    names = _node_names(subject, tmp_path / "w1")
    assert {"tissue_segmentation", "tissues_to_template", "stats_DK_template"} <= names
    assert {"meta_DK", "meta_Braak", "meta_MetaTemporal"} <= names
    template = plan_scan(_config(tmp_path, regional_mask="template"), _checked(tmp_path / "b"))
    assert "tissue_segmentation" not in _node_names(template, tmp_path / "w2")
    mr_less = plan_scan(
        _config(tmp_path, regional_mask="subject-gm"), _checked(tmp_path / "c", t1w=False)
    )
    assert "tissue_segmentation" not in _node_names(mr_less, tmp_path / "w3")


def test_table_sidecars_name_the_mask(tmp_path):
    from taupet_bids.plan import plan_scan
    from taupet_bids.workflows.outputs import init_outputs_wf
    from taupet_bids.workflows.tables import subject_gm_meta

    config = _config(tmp_path, regional_mask="subject-gm")
    mr_less = plan_scan(config, _checked(tmp_path / "a", t1w=False))
    sidecar = init_outputs_wf(mr_less).get_node("ds_table_DK").interface._metadata
    assert sidecar["RegionalMask"] == "template" and "needs a T1w" in sidecar["RegionalMaskReason"]
    subject = init_outputs_wf(plan_scan(config, _checked(tmp_path / "b")))
    assert "RegionalMask" not in subject.get_node("ds_table_DK").interface._metadata
    meta = subject_gm_meta(["ctx-lh-precuneus"], "template-fallback")
    assert meta["RegionalMask"] == "subject-gm"
    assert meta["TemplateFallbackRegions"] == ["ctx-lh-precuneus"]
    assert meta["ReferenceMask"] == "template-fallback"
    assert meta["GreyMatterThreshold"] == greymatter.TISSUE_THRESHOLD
    for mask, subject in (("subject-gm", True), ("template", False)):
        pvc_config = _config(tmp_path, regional_mask=mask, pvc=("gtm",), pvc_fwhm=6.0)
        sinks = init_outputs_wf(plan_scan(pvc_config, _checked(tmp_path / mask)))
        pvc_meta = sinks.get_node("ds_table_DK_pvc_gtm").interface._metadata
        assert pvc_meta["RegionalMask"] == mask
        assert ("GreyMatterThreshold" in pvc_meta) is subject


def test_methods_text_cites_atropos_only_when_used(tmp_path):
    from taupet_bids.boilerplate import methods_text

    assert "Atropos" not in methods_text(_config(tmp_path, regional_mask="template"))
    text = methods_text(_config(tmp_path, regional_mask="subject-gm"))
    assert "Atropos [atropos]" in text and "Neuroinformatics 9:381-400" in text
    assert "without MRI kept" in text
    assert "correction's regions followed the same tissues" in text
    assert "reference was the subject's grey matter of the template reference mask" in text


def test_tables_stay_in_the_shared_schema():
    atlas, suvr, labels = _slab_atlas()
    table, _ = grey_matter_statistics(
        suvr, atlas, np.ones(atlas.shape), 0.008, labels, grey_matter_labels("DK")
    )
    assert list(table.columns) == list(regional_statistics(suvr, atlas, 0.008, labels).columns)
    assert isinstance(table, pd.DataFrame)


@pytest.mark.integration  # runs a Nipype graph over template-grid images: seconds
def test_tables_workflow_runs_with_subject_grey_matter(tmp_path):
    """The subject-gm wiring runs: GM-cut tables, the SUVR's own reference row, and per atlas the
    sidecar fields naming the one region (left precuneus) that had no grey matter left."""
    from taupet_bids import templates
    from taupet_bids.workflows.tables import init_tables_wf

    dk_file = templates.atlas_path("DK", templates.WORKING_RESOLUTION)
    dk = np.asarray(nib.load(dk_file).dataobj)
    affine = nib.load(dk_file).affine
    gm = np.isin(dk, grey_matter_labels("DK")).astype(np.float32)
    gm[dk == 1025] = 0.0  # left precuneus: no subject grey matter -> template fallback
    suvr = np.where(gm > 0, 1.5, 1.0).astype(np.float32)
    reference = np.zeros(dk.shape, np.uint8)
    reference[dk == 8] = 1
    tissues = np.stack([gm, 1 - gm, (dk > 0).astype(np.float32)], axis=-1)
    paths = {}
    for name, data in (("suvr", suvr), ("ref", reference), ("tissues", tissues)):
        paths[name] = str(tmp_path / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(data, affine), paths[name])
    tables = init_tables_wf("InfCerebGrey", ("DK", "MetaTemporal"), subject_gm=True)
    tables.base_dir = str(tmp_path / "work")
    tables.inputs.inputnode.suvr = paths["suvr"]
    tables.inputs.inputnode.tissues_std = paths["tissues"]
    tables.inputs.inputnode.reference_mask = paths["ref"]
    tables.inputs.inputnode.reference_kind = "subject-gm"
    outputs = {node.name: node for node in tables.run().nodes()}  # identity nodes are pruned
    meta = outputs["gather_meta"].result.outputs.out
    table_files = outputs["gather_tables"].result.outputs.out
    dk_meta, mt_meta = meta
    # Rows fall back one by one: the bilateral row still has the right precuneus.
    assert dk_meta["TemplateFallbackRegions"] == ["left-precuneus"]
    assert mt_meta["TemplateFallbackRegions"] == [] and mt_meta["ReferenceMask"] == "subject-gm"
    table = pd.read_csv(table_files[0], sep="\t").set_index("region")
    assert table.loc["entorhinal", "suvr_mean"] == pytest.approx(1.5)
    assert table.loc["left-precuneus", "suvr_mean"] == pytest.approx(1.0)  # template voxels
    assert table.loc["precuneus", "n_voxels"] == table.loc["right-precuneus", "n_voxels"]
    assert table.loc["reference-InfCerebGrey", "n_voxels"] == int(reference.sum())
