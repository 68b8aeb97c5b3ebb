"""Tests of the digital-phantom simulator: BIDS validity, truth consistency, determinism."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from taupet_bids import atlases, templates
from taupet_bids.bids import OTHER_REQUIRED_FIELDS, QUANTIFICATION_FIELDS
from taupet_bids.core.grids import Grid, apply_affine
from taupet_bids.simulate import CohortConfig, find_truth, load_truth, simulate_cohort, truth_value
from taupet_bids.simulate.anatomy import atrophy_field, atrophy_severity, random_anatomy
from taupet_bids.simulate.cli import main as cli_main
from taupet_bids.simulate.head_motion import restlessness
from taupet_bids.simulate.other_anatomy import SPACE, load_other_anatomy, template_to_source
from taupet_bids.simulate.population import draw_cohort
from taupet_bids.simulate.template import BONE, BRAIN, MENINGES, SOFT_TISSUE, load_template
from taupet_bids.simulate.truth import read_truth_table, regional_table
from taupet_bids.simulate.uptake import TauState, random_profile, suvr_map

VALIDATOR = Path(sys.executable).with_name("bids-validator-deno")
REQUIRED_PET_FIELDS = QUANTIFICATION_FIELDS + OTHER_REQUIRED_FIELDS


def _simulate(path: Path, **options) -> Path:
    simulate_cohort(path, CohortConfig(**options), log=lambda line: None)
    return path


@pytest.fixture(scope="module")
def longitudinal(templateflow_home, tmp_path_factory) -> Path:
    """2 subjects x 2 sessions, 4 frames, one subject without T1w; the template anatomy."""
    out = tmp_path_factory.mktemp("sim") / "longitudinal"
    return _simulate(
        out, n_subjects=2, seed=11, sessions=2, no_t1w_fraction=0.5, jobs=2, anatomy="template"
    )


@pytest.fixture(scope="module")
def averaged(templateflow_home, tmp_path_factory) -> Path:
    """2 subjects, one averaged frame, other trc-/rec- labels; the default (other) anatomy."""
    out = tmp_path_factory.mktemp("sim") / "averaged"
    return _simulate(
        out, n_subjects=2, seed=5, n_frames=1, tracer_label="AV1451", rec="acstat", jobs=2
    )


def _pet_images(root: Path) -> list[Path]:
    return sorted(root.glob("sub-*/**/pet/*_pet.nii.gz"))


def _truth_tables(root: Path) -> list[Path]:
    return sorted((root / "derivatives" / "truth").rglob("*_suvr.tsv"))


@pytest.mark.parametrize("name", ["longitudinal", "averaged"])
def test_bids_validator_reports_no_errors(name, request):
    root = request.getfixturevalue(name)
    run = subprocess.run(
        [str(VALIDATOR), str(root), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(run.stdout)
    errors = [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    assert errors == []
    assert "PET" in report["summary"]["modalities"]


def test_layout_has_options(longitudinal, averaged):
    pets = [p.name for p in _pet_images(longitudinal)]
    assert pets == [
        "sub-001_ses-M000_trc-18FAV1451_pet.nii.gz",
        "sub-001_ses-M024_trc-18FAV1451_pet.nii.gz",
        "sub-002_ses-M000_trc-18FAV1451_pet.nii.gz",
        "sub-002_ses-M024_trc-18FAV1451_pet.nii.gz",
    ]
    t1w = sorted(longitudinal.glob("sub-*/ses-*/anat/*_T1w.nii.gz"))
    assert len(t1w) == 2 and len({p.parts[-4] for p in t1w}) == 1
    assert [p.name for p in _pet_images(averaged)] == [
        "sub-001_trc-AV1451_rec-acstat_pet.nii.gz",
        "sub-002_trc-AV1451_rec-acstat_pet.nii.gz",
    ]
    participants = (longitudinal / "participants.tsv").read_text().splitlines()
    assert participants[0].split("\t") == [
        "participant_id",
        "age",
        "sex",
        "diagnosis",
        "braak_stage",
        "mmse",
        "amyloid_status",
        "amyloid_centiloid",
        "tspo_genotype",
    ]
    for row in participants[1:]:
        _, _, _, diagnosis, stage, *_ = row.split("\t")
        assert diagnosis == ("CN" if int(stage) <= 2 else "MCI" if int(stage) <= 4 else "AD")
    description = json.loads(
        (longitudinal / "derivatives/truth/dataset_description.json").read_text()
    )
    assert description["DatasetType"] == "derivative"


@pytest.mark.parametrize("name", ["longitudinal", "averaged"])
def test_pet_sidecar_complete_and_frames_match(name, request):
    for image_path in _pet_images(request.getfixturevalue(name)):
        sidecar = json.loads(image_path.with_name(image_path.name[:-7] + ".json").read_text())
        assert set(REQUIRED_PET_FIELDS) <= set(sidecar)
        assert sidecar["TracerName"] == "AV1451" and sidecar["TracerRadionuclide"] == "F18"
        image = nib.load(image_path)
        n_frames = image.shape[3] if image.ndim == 4 else 1
        assert len(sidecar["FrameTimesStart"]) == len(sidecar["FrameDuration"]) == n_frames
        assert n_frames == (1 if name == "averaged" else 4)
        assert sidecar["FrameTimesStart"][0] == sidecar["ScanStart"] == 4800
        assert sum(sidecar["FrameDuration"]) == 1200
        assert len(sidecar["ReconMethodParameterLabels"]) == len(
            sidecar["ReconMethodParameterValues"]
        )
        brain = np.asarray(image.dataobj)
        assert 2e3 < np.percentile(brain, 95) < 2e4  # Bq/mL: a few kBq/mL in the head


def test_native_grids_differ_from_template(longitudinal):
    template = nib.load(templates.t1w_path(2))
    pet = nib.load(_pet_images(longitudinal)[0])
    t1w = nib.load(next(longitudinal.glob("sub-*/ses-M000/anat/*_T1w.nii.gz")))
    codes = {nib.aff2axcodes(img.affine) for img in (template, pet, t1w)}
    assert len(codes) == 3
    assert pet.shape[:3] != template.shape and t1w.shape != template.shape
    assert 1.9 < pet.header.get_zooms()[0] < 2.5


def _template_means(image: np.ndarray, atlas: np.ndarray, indices: list[int]) -> float:
    return float(image[np.isin(atlas, indices)].mean())


@pytest.mark.parametrize("kind", ["sharp", "blurred"])
def test_truth_tables_agree_with_truth_maps(longitudinal, kind):
    dk = np.asarray(nib.load(templates.atlas_path("DK", 2)).dataobj)
    braak = np.asarray(nib.load(templates.atlas_path("Braak", 2)).dataobj)
    meta = np.asarray(nib.load(templates.atlas_path("MetaTemporal", 2)).dataobj)
    ref = np.asarray(nib.load(templates.reference_mask_path("InfCerebGrey", 2)).dataobj) > 0
    grid = nib.load(templates.t1w_path(2))
    tables = [p for p in _truth_tables(longitudinal) if f"desc-{kind}_" in p.name]
    assert len(tables) == 4
    for table_path in tables:
        table = read_truth_table(table_path)
        image = nib.load(str(table_path).replace(".tsv", ".nii.gz"))
        assert image.shape == grid.shape and np.allclose(image.affine, grid.affine)
        data = np.asarray(image.dataobj)
        for region in ("entorhinal", "hippocampus", "precuneus", "cerebral-white-matter"):
            expected = _template_means(data, dk, atlases.dk_indices([region]))
            assert truth_value(table, "DK", region) == pytest.approx(expected, abs=1e-5)
        assert truth_value(table, "Braak", "BraakIII") == pytest.approx(
            float(data[braak == 3].mean()), abs=1e-5
        )
        assert truth_value(table, "MetaTemporal", "metatemporal") == pytest.approx(
            float(data[meta == 1].mean()), abs=1e-5
        )
        assert truth_value(table, "reference", "InfCerebGrey") == pytest.approx(1.0, abs=1e-5)
        assert float(data[ref].mean()) == pytest.approx(1.0, abs=1e-5)
        dk_rows = set(table.loc[table["atlas"] == "DK", "region"])
        cortical = {lab.region for lab in atlases.dk_labels() if lab.tissue == "cortex"}
        assert cortical | {"hippocampus", "amygdala", "putamen", "thalamus"} <= dk_rows
        assert {f"Braak{r}" for r in atlases.BRAAK_ROMAN.values()} <= set(table["region"])


def test_blurring_pulls_small_extremes_toward_surroundings(longitudinal):
    for sharp_path in [p for p in _truth_tables(longitudinal) if "desc-sharp_" in p.name]:
        sharp = read_truth_table(sharp_path)
        blurred = read_truth_table(str(sharp_path).replace("desc-sharp", "desc-blurred"))
        # small, hot choroid plexus loses signal; small, cold ventricles gain it
        assert (
            truth_value(blurred, "DK", "choroid-plexus")
            < truth_value(sharp, "DK", "choroid-plexus") - 0.2
        )
        assert (
            truth_value(blurred, "DK", "lateral-ventricle")
            > truth_value(sharp, "DK", "lateral-ventricle") + 0.2
        )
        assert truth_value(blurred, "reference", "InfCerebGrey") == pytest.approx(1.0, abs=1e-5)


def test_truth_api_finds_scan_truth(longitudinal):
    path = find_truth(longitudinal, "sub-002", "M024", kind="blurred")
    assert path.name == (
        "sub-002_ses-M024_trc-18FAV1451_space-MNI152NLin6Asym_res-2_desc-blurred_suvr.tsv"
    )
    assert load_truth(longitudinal, "002", "ses-M024", "blurred").equals(read_truth_table(path))
    with pytest.raises(FileNotFoundError):
        find_truth(longitudinal, "003", "M000")
    params = json.loads(find_truth(longitudinal, "001", "M000", suffix=".json").read_text())
    assert params["braak_stage"] in range(7) and 6.0 <= params["psf_fwhm_mm"] <= 8.0


def test_each_visit_moves_by_its_participants_restlessness(longitudinal):
    specs = draw_cohort(2, 11, n_sessions=2, no_t1w_fraction=0.5)
    for spec in specs:
        for visit in spec.visits:
            path = find_truth(longitudinal, spec.label, visit.session, suffix=".json")
            recorded = json.loads(path.read_text())["motion_scale"]
            assert recorded == round(restlessness(spec.seed, visit.diagnosis), 4)
            assert 0.0 < recorded < 5.0


def test_longitudinal_tau_never_decreases(longitudinal):
    for subject in ("001", "002"):
        values = [
            truth_value(load_truth(longitudinal, subject, session), "MetaTemporal", "metatemporal")
            for session in ("M000", "M024")
        ]
        assert values[1] >= values[0] - 1e-6


def test_higher_braak_stage_gives_higher_metatemporal(templateflow_home):
    template = load_template()
    profile = random_profile(np.random.default_rng(3))
    meta = []
    for stage in range(7):
        table = regional_table(suvr_map(profile, TauState(stage, 0.4 * stage), template), template)
        meta.append(next(r["suvr"] for r in table if r["region"] == "metatemporal"))
    assert np.all(np.diff(meta) > 0)
    assert 1.0 < meta[0] < 1.4 and meta[6] > 2.0


def test_inverse_warp_round_trips(templateflow_home):
    template = load_template()
    anatomy = random_anatomy(np.random.default_rng(0), template)
    points = np.random.default_rng(1).uniform(-60, 60, (3, 500)).astype(np.float32)
    back = anatomy.to_template(anatomy.from_template(points))
    assert np.abs(back - points).max() < 0.01
    assert np.abs(anatomy.from_template(points) - points).mean() > 5  # a real warp


def test_same_seed_same_bytes_and_new_seed_differs(templateflow_home, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    options = dict(n_subjects=1, n_frames=2, jobs=1)
    first = _simulate(tmp_path / "a", seed=21, **options)
    second = _simulate(tmp_path / "b", seed=21, **options)
    other = _simulate(tmp_path / "c", seed=22, **options)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) > 15
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    for image in (
        "sub-001/pet/sub-001_trc-18FAV1451_pet.nii.gz",
        "sub-001/anat/sub-001_T1w.nii.gz",
    ):
        assert (first / image).read_bytes() != (other / image).read_bytes()
    shutil.rmtree(tmp_path)


def test_cli_help_and_run(tmp_path, templateflow_home, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--help"])
    assert exit_info.value.code == 0
    assert "--n-subjects" in capsys.readouterr().out
    assert (
        cli_main(
            [
                str(tmp_path / "cli"),
                "--n-subjects",
                "1",
                "--seed",
                "2",
                "--single-frame",
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    assert "[1/1] sub-001" in capsys.readouterr().out
    assert len(_pet_images(tmp_path / "cli")) == 1
    with pytest.raises(SystemExit):
        cli_main([str(tmp_path / "bad"), "--n-subjects", "0"])
    with pytest.raises(SystemExit):
        cli_main([str(tmp_path / "bad"), "--anatomy", "colin27"])
    with pytest.raises(ValueError, match="anatomy must be one of"):
        CohortConfig(n_subjects=1, anatomy="colin27")


def _other_anatomy_tables(root: Path) -> list[Path]:
    return [p for p in _truth_tables(root) if f"space-{SPACE}_" in p.name]


def test_default_phantom_is_not_the_template(averaged):
    """Truth of the default phantom lives in its own anatomy's space, over its own regions."""
    other = load_other_anatomy()
    tables = _other_anatomy_tables(averaged)
    assert len(tables) == 4 and len(_truth_tables(averaged)) == 4
    for table_path in tables:
        table = read_truth_table(table_path)
        image = nib.load(str(table_path).replace(".tsv", ".nii.gz"))
        assert image.shape == other.grid_2mm.shape
        data = np.asarray(image.dataobj)
        for region in ("entorhinal", "hippocampus", "precuneus"):
            mask = np.isin(other.dk, atlases.dk_indices([region]))
            assert truth_value(table, "DK", region) == pytest.approx(
                float(data[mask].mean()), abs=1e-5
            )
        reference = other.reference_masks["InfCerebGrey"]
        assert float(data[reference].mean()) == pytest.approx(1.0, abs=1e-5)


def test_other_anatomy_grey_matter_is_its_own(templateflow_home):
    """Cortical labels follow 2009a's grey matter: they overlap the template's only partly."""
    other, template = load_other_anatomy(), load_template()
    points = template.grid_2mm.world_coordinates()
    voxels = apply_affine(np.linalg.inv(other.grid_2mm.affine), points)
    other_on_template = ndimage.map_coordinates(other.dk, voxels, order=0, mode="constant")
    cortex = [lab.index for lab in atlases.dk_labels() if lab.tissue == "cortex"]
    a, b = np.isin(other_on_template, cortex), np.isin(template.dk, cortex)
    dice = 2 * (a & b).sum() / (a.sum() + b.sum())
    assert 0.3 < dice < 0.8
    for region in ("hippocampus", "precuneus", "cerebellum-cortex"):
        assert np.isin(other.dk, atlases.dk_indices([region])).sum() > 500
    assert other.reference_masks["InfCerebGrey"].sum() > 3000


def test_template_points_follow_the_anatomy_into_the_other_head(templateflow_home):
    """The kept point map lands template cortex on the same DK label more often than identity.

    Training targets for realistic heads go through it (training/heads.py); a map applied in the
    wrong direction, or none, would not beat the identity.
    """
    other, template = load_other_anatomy(), load_template()
    points = template.grid_2mm.world_coordinates()
    cortex = np.isin(
        template.dk, [lab.index for lab in atlases.dk_labels() if lab.tissue == "cortex"]
    )

    def same_label(world: np.ndarray) -> float:
        voxels = apply_affine(np.linalg.inv(other.grid_2mm.affine), world)
        labels = ndimage.map_coordinates(other.dk, voxels, order=0, mode="constant")
        return float((labels[cortex] == template.dk[cortex]).mean())

    mapped = template_to_source(points, "other")
    assert same_label(mapped) > same_label(points) + 0.02
    shift = np.linalg.norm(mapped - points, axis=0)[template.brain_mask]
    assert 0.5 < shift.mean() < 4.0
    assert template_to_source(points, "template") is points
    far = np.full((3, 1), 500.0, np.float32)
    np.testing.assert_array_equal(template_to_source(far, "other"), far)


def test_realistic_head_has_layers_below_and_around_the_brain(templateflow_home):
    other = load_other_anatomy()
    counts = np.bincount(other.tissue.ravel(), minlength=6)
    assert counts[[SOFT_TISSUE, BONE, MENINGES, BRAIN]].min() > 10000
    z = other.grid_2mm.world_coordinates()[2]
    assert other.head_mask[z < -120].sum() > 50000  # neck and shoulders
    profile = random_profile(np.random.default_rng(3), realistic=True)
    suvr = suvr_map(profile, TauState(0, 0.0), other)
    bone = suvr[other.tissue == BONE]
    assert np.ptp(bone) == pytest.approx(0.0, abs=1e-6) and bone.mean() > 0.3
    brain = suvr[np.isin(other.dk, atlases.dk_indices(["superiorfrontal"]))]
    assert brain.std() > 0.02  # within-region heterogeneity


def test_realistic_profile_draws_after_the_template_one():
    """The template phantom's draws are unchanged; the realistic one adds traits after them."""
    plain = random_profile(np.random.default_rng(8))
    realistic = random_profile(np.random.default_rng(8), realistic=True)
    assert plain.head is None and realistic.head is not None
    assert plain.susceptibility == realistic.susceptibility
    choroid = atlases.dk_indices(["choroid-plexus"])
    other = {k: v for k, v in plain.baseline.items() if k not in choroid}
    assert other == {k: v for k, v in realistic.baseline.items() if k not in choroid}


def test_atrophy_enlarges_ventricles_and_shrinks_hippocampi(templateflow_home):
    other = load_other_anatomy()
    for region, pull in (("lateral-ventricle", -1), ("hippocampus", 1)):
        index = atlases.dk_indices([region])[0]
        centre = apply_affine(other.grid_2mm.affine, np.argwhere(other.dk == index).mean(0))
        point = centre + np.array([0.0, 0.0, 6.0])
        grid = Grid((1, 1, 1), np.r_[np.c_[np.eye(3), point], [[0, 0, 0, 1]]])
        field = atrophy_field(other, grid, severity=1.0)[:, 0, 0, 0]
        assert pull * field[2] > 0.5  # mm, along the offset from the centre
    assert atrophy_severity(np.random.default_rng(0), 6) > atrophy_severity(
        np.random.default_rng(0), 1
    )


def test_the_scanner_sees_tissues_mixed_as_the_t1w_mixes_them():
    """A 2 mm voxel of grey matter and CSF reads their mixture; labels elsewhere stay pure."""
    from taupet_bids.simulate.partial_volume import mix, tissue_fractions

    shape = (20, 20, 20)
    r = np.sqrt(sum((g - 9.5) ** 2 for g in np.indices(shape).astype(float)))
    brain = r < 9
    wm = np.clip(5.0 - r, 0.0, 1.0)
    gm = np.clip(np.minimum(r - 4.0, 8.0 - r), 0.0, 1.0) * (1.0 - wm)
    dk = np.zeros(shape, np.int32)
    dk[brain & (gm >= 0.7)] = 1002  # cortex drawn thinner than the grey matter, as in 2009a
    dk[brain & (wm >= 0.5)] = 2
    dk[r < 1.5] = 4  # a ventricle: not mixed
    tissue_map = np.where(dk == 1002, 2.0, np.where(dk == 2, 1.2, 0.5)).astype(np.float32)
    tissue_map[dk == 4] = 0.3
    tissue_map[~brain] = 0.7
    seen = mix(tissue_map, tissue_fractions(dk, brain, gm, wm))
    partial = brain & (dk == 0) & (gm > 0.3) & (wm == 0)  # grey matter the labels left out
    assert partial.any()
    expected = gm[partial] * 2.0 + (1 - gm[partial]) * 0.5
    np.testing.assert_allclose(seen[partial], expected, rtol=1e-5)
    pure = (dk == 1002) & (gm > 0.999)
    np.testing.assert_allclose(seen[pure], 2.0, rtol=1e-6)
    np.testing.assert_array_equal(seen[dk == 4], tissue_map[dk == 4])
    np.testing.assert_array_equal(seen[~brain], tissue_map[~brain])
    assert mix(tissue_map, None) is tissue_map


def test_other_anatomy_pets_mix_tissues_and_keep_the_tissue_map_as_truth(templateflow_home):
    other = load_other_anatomy()
    assert other.fractions is not None and load_template().fractions is None
    grey = other.fractions.fractions[0]
    assert 0.0 <= grey.min() and grey.max() <= 1.0
    cortex = np.isin(
        other.dk.ravel()[other.fractions.zone],
        [lab.index for lab in atlases.dk_labels() if lab.tissue == "cortex"],
    )
    assert 0.75 < float(np.mean(grey[cortex])) < 0.98  # labelled cortex is mostly grey matter
