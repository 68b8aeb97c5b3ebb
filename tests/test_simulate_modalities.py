"""FDG and TSPO PET, tau-following atrophy and clinical columns in a simulated BIDS dataset.

Two subjects with every modality and ``--atrophy braak``; a default run beside one with the
new modalities shows that they draw from streams of their own (same tau PET and T1w bytes).
The app's own layout, validation and scan selection read the dataset: FDG and TSPO are found
but not processed as tau unless ``--tracer`` asks for them.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from taupet_bids import atlases, bids
from taupet_bids.cli.parser import parse_args
from taupet_bids.cli.run import select_scans
from taupet_bids.simulate import (
    CohortConfig,
    find_truth,
    gm_atrophy,
    load_truth,
    simulate_cohort,
    truth_value,
)
from taupet_bids.simulate.other_anatomy import load_other_anatomy
from taupet_bids.simulate.uptake import TauState, random_profile

TRACERS = {"18FAV1451": "AV1451", "18FFDG": "FDG", "11CPBR28": "PBR28"}


def _simulate(path: Path, **options) -> Path:
    simulate_cohort(path, CohortConfig(**options), log=lambda line: None)
    return path


@pytest.fixture(scope="module")
def dataset(templateflow_home, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("modalities") / "bids"
    return _simulate(
        out, n_subjects=2, seed=8, n_frames=1, jobs=2,
        modalities=("tau", "fdg", "tspo"), atrophy="braak",
    )  # fmt: skip


def test_every_tracer_written_with_its_sidecar_and_truth(dataset):
    for subject in ("001", "002"):
        for label, name in TRACERS.items():
            stem = dataset / f"sub-{subject}" / "pet" / f"sub-{subject}_trc-{label}_pet"
            sidecar = json.loads(stem.with_suffix(".json").read_text())
            assert sidecar["TracerName"] == name
            assert nib.load(stem.with_suffix(".nii.gz")).ndim == 3
            assert load_truth(dataset, subject, tracer=label).shape[0] > 40
    fdg = json.loads((dataset / "sub-001/pet/sub-001_trc-18FFDG_pet.json").read_text())
    assert fdg["TracerRadionuclide"] == "F18"
    assert fdg["FrameTimesStart"] == [1800.0] and fdg["FrameDuration"] == [1800.0]
    tspo = json.loads((dataset / "sub-001/pet/sub-001_trc-11CPBR28_pet.json").read_text())
    assert tspo["TracerRadionuclide"] == "C11" and tspo["FrameTimesStart"] == [3600.0]


def test_truth_references_are_pons_and_whole_cerebellum(dataset):
    for label, reference in (("18FFDG", "Pons"), ("11CPBR28", "WholeCereb")):
        for kind in ("sharp", "blurred"):
            table = load_truth(dataset, "001", kind=kind, tracer=label)
            assert truth_value(table, "reference", reference) == pytest.approx(1.0, abs=1e-3)
        params = json.loads(find_truth(dataset, "001", tracer=label, suffix=".json").read_text())
        assert params["reference_region"] == reference
    tau = load_truth(dataset, "001", tracer="18FAV1451")
    assert truth_value(tau, "reference", "InfCerebGrey") == pytest.approx(1.0, abs=1e-3)


def test_participants_have_clinical_columns_and_genotype_is_marked_truth(dataset):
    table = pd.read_csv(dataset / "participants.tsv", sep="\t")
    assert {"mmse", "amyloid_status", "amyloid_centiloid", "tspo_genotype"} <= set(table)
    assert table["mmse"].between(0, 30).all()
    assert set(table["amyloid_status"]) <= {"positive", "negative"}
    fields = json.loads((dataset / "participants.json").read_text())
    assert fields["tspo_genotype"]["Description"].startswith("SIMULATOR TRUTH")
    for subject, genotype in zip(table["participant_id"], table["tspo_genotype"], strict=True):
        label = subject.removeprefix("sub-")
        params = json.loads(
            find_truth(dataset, label, tracer="11CPBR28", suffix=".json").read_text()
        )
        assert params["tspo_genotype"] == genotype


def test_app_layout_and_validator_accept_the_dataset(dataset):
    bids.validate_dataset(dataset)
    scans = bids.collect_scans(dataset)
    assert len(scans) == 6
    assert {s.entities["trc"] for s in scans} == set(TRACERS)
    assert all(s.t1w is not None for s in scans)


def test_an_amyloid_scan_is_skipped_by_name_and_processed_when_asked(dataset, tmp_path, caplog):
    copy = tmp_path / "bids"
    shutil.copytree(dataset, copy, ignore=shutil.ignore_patterns("derivatives"))
    fdg = copy / "sub-001" / "pet" / "sub-001_trc-18FFDG_pet"
    amyloid = fdg.with_name("sub-001_trc-18FAV45_pet")
    shutil.copy(fdg.with_suffix(".nii.gz"), amyloid.with_suffix(".nii.gz"))
    sidecar = json.loads(fdg.with_suffix(".json").read_text())
    sidecar.update(
        TracerName="[18F]florbetapir",
        ScanStart=3000.0,
        FrameTimesStart=[3000.0],
        FrameDuration=[1200.0],
    )
    amyloid.with_suffix(".json").write_text(json.dumps(sidecar))
    argv = [str(copy), str(tmp_path / "out"), "participant", "--skip-bids-validation"]
    with caplog.at_level(logging.INFO):
        select_scans(parse_args([*argv, "-w", str(tmp_path / "w")]))
    said = "sub-001_trc-18FAV45_pet.nii.gz: florbetapir is an amyloid tracer, not tau"
    assert any(said in r.getMessage() for r in caplog.records)
    wanted = [*argv, "-w", str(tmp_path / "w2"), "--tracer", "florbetapir"]
    plans, failed = select_scans(parse_args(wanted))
    assert failed == [] and [p.pet.name for p in plans] == ["sub-001_trc-18FAV45_pet.nii.gz"]
    assert plans[0].reference_region == "WholeCereb" and not plans[0].tau_tracer


def test_app_skips_non_tau_tracers_unless_asked(dataset, tmp_path, caplog):
    argv = [str(dataset), str(tmp_path / "out"), "participant", "--skip-bids-validation"]
    with caplog.at_level(logging.INFO):
        plans, failed = select_scans(parse_args([*argv, "-w", str(tmp_path / "w")]))
    assert failed == []
    assert sorted(p.pet.name for p in plans) == [
        "sub-001_trc-18FAV1451_pet.nii.gz",
        "sub-002_trc-18FAV1451_pet.nii.gz",
    ]
    skipped = [r.getMessage() for r in caplog.records if "not tau" in r.getMessage()]
    assert len(skipped) == 4
    assert any("FDG is a glucose metabolism tracer" in m and "--tracer FDG" in m for m in skipped)
    plans, failed = select_scans(parse_args([*argv, "-w", str(tmp_path / "w2"), "--tracer", "FDG"]))
    assert failed == [] and len(plans) == 2
    assert all("trc-18FFDG" in p.pet.name and p.reference_region == "Pons" for p in plans)


def test_braak_atrophy_is_recorded_and_darkens_grey_matter(dataset):
    folder = dataset / "derivatives" / "truth" / "sub-001" / "anat"
    record = json.loads((folder / "sub-001_desc-atrophy_T1w.json").read_text())
    assert max(record["grey_matter_loss"].values()) > 0
    assert set(record["displacement_severity"]) == {"hippocampus", "lateral-ventricle"}


def test_grey_matter_loss_follows_the_subjects_tau(templateflow_home):
    anatomy = load_other_anatomy()
    traits = gm_atrophy.random_traits(np.random.default_rng(3))
    profile = random_profile(np.random.default_rng(3), realistic=True)
    early = gm_atrophy.regional_loss(traits, profile, TauState(0, 0.0), 70.0)
    late = gm_atrophy.regional_loss(traits, profile, TauState(6, 2.4), 70.0)
    entorhinal = atlases.dk_indices(["entorhinal"])
    assert min(late[i] - early[i] for i in entorhinal) > 0.1
    labels = gm_atrophy.labels_1mm(anatomy)
    mask = np.isin(labels, entorhinal) & (anatomy.head_t1w > 4000) & (anatomy.head_t1w < 6000)
    before = gm_atrophy.atrophied_head(anatomy, early)[mask].mean()
    after = gm_atrophy.atrophied_head(anatomy, late)[mask].mean()
    assert after < before * 0.95
    severity = gm_atrophy.severities(late)
    assert severity["hippocampus"] > gm_atrophy.severities(early)["hippocampus"]


def test_the_pet_loses_the_grey_matter_the_t1w_loses(templateflow_home):
    """Lost grey matter becomes CSF in the PET's tissue mixing too (T1w and PET agree)."""
    from taupet_bids.simulate.partial_volume import mix

    anatomy = load_other_anatomy()
    loss = {i: 0.0 for i in gm_atrophy._atrophic_labels()}
    entorhinal = atlases.dk_indices(["entorhinal"])
    loss.update({i: 0.3 for i in entorhinal})
    atrophied = gm_atrophy.atrophied_fractions(anatomy, loss)
    np.testing.assert_allclose(atrophied.fractions.sum(axis=0), 1.0, atol=1e-5)
    inside = np.isin(anatomy.dk.ravel()[atrophied.zone], entorhinal)
    before, after = anatomy.fractions.fractions[0][inside], atrophied.fractions[0][inside]
    assert 0.6 < after.mean() / before.mean() < 0.8  # about 30 % of the grey matter is gone
    far = np.isin(anatomy.dk.ravel()[atrophied.zone], atlases.dk_indices(["precentral"]))
    np.testing.assert_allclose(atrophied.fractions[:, far], anatomy.fractions.fractions[:, far])
    tissue = np.where(np.isin(anatomy.dk, entorhinal), 3.0, 1.0).astype(np.float32)
    region = np.isin(anatomy.dk, entorhinal)
    assert mix(tissue, atrophied)[region].mean() < mix(tissue, anatomy.fractions)[region].mean()


def test_new_modalities_leave_default_tau_pet_and_t1w_bytes(templateflow_home, tmp_path):
    options = dict(n_subjects=1, seed=21, n_frames=1, jobs=1)
    plain = _simulate(tmp_path / "plain", **options)
    extended = _simulate(tmp_path / "extended", modalities=("tau", "fdg", "tspo"), **options)
    same = [
        "sub-001/anat/sub-001_T1w.nii.gz",
        "sub-001/pet/sub-001_trc-18FAV1451_pet.nii.gz",
        "sub-001/pet/sub-001_trc-18FAV1451_pet.json",
    ]
    truth = sorted((plain / "derivatives" / "truth").rglob("*"))
    same += [str(p.relative_to(plain)) for p in truth if p.is_file() and "18FAV1451" in p.name]
    for relative in same:
        assert (plain / relative).read_bytes() == (extended / relative).read_bytes(), relative
    assert (extended / "sub-001/pet/sub-001_trc-18FFDG_pet.nii.gz").is_file()
    assert not (plain / "sub-001/pet/sub-001_trc-18FFDG_pet.nii.gz").exists()
    shutil.rmtree(tmp_path)


def test_config_refuses_bad_combinations():
    with pytest.raises(ValueError, match="modalities"):
        CohortConfig(1, modalities=("tau", "amyloid"))
    with pytest.raises(ValueError, match="other"):
        CohortConfig(1, atrophy="braak", anatomy="template")
    with pytest.raises(ValueError, match="tau"):
        CohortConfig(1, modalities=("fdg",), pet_mr="dixon")
