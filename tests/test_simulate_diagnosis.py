"""``taupet-bids-simulate --diagnosis``: labels from the Braak stage, or from cognition with some
impairment unrelated to tau, so that a classifier's benchmark is not one a single SUVR solves."""

from __future__ import annotations

import numpy as np
import pytest

from taupet_bids.simulate import diagnosis
from taupet_bids.simulate.cohort import CohortConfig
from taupet_bids.simulate.population import DIAGNOSIS_BY_STAGE, draw_cohort
from taupet_bids.simulate.writer import participant_fields

N = 800


@pytest.fixture(scope="module")
def cohorts():
    drawn = draw_cohort(N, seed=4242, n_sessions=2)
    return drawn, diagnosis.apply_diagnosis_model(drawn, "clinical")


def _baseline(subjects):
    stage = np.array([s.baseline.tau.stage for s in subjects])
    label = np.array([s.baseline.diagnosis for s in subjects])
    mmse = np.array([s.clinical.mmse[0] for s in subjects])
    return stage, label, mmse


def test_the_stage_model_is_the_cohort_as_drawn(cohorts):
    drawn, _ = cohorts
    assert diagnosis.apply_diagnosis_model(drawn, "stage") is drawn
    stage, label, _ = _baseline(drawn)
    assert all(label[i] == DIAGNOSIS_BY_STAGE[stage[i]] for i in range(N))


def test_clinical_labels_follow_the_mmse_bands_at_every_visit(cohorts):
    _, clinical = cohorts
    for subject in clinical:
        for visit, score in zip(subject.visits, subject.clinical.mmse, strict=True):
            expected = "CN" if score >= 28 else "MCI" if score >= 24 else "AD"
            assert visit.diagnosis == expected


def test_clinical_labels_overlap_the_stages_as_in_a_memory_clinic(cohorts):
    _, clinical = cohorts
    stage, label, _ = _baseline(clinical)
    ad = label == "AD"
    # About one AD label in ten at Braak 0-II (flortaucipir's 90 % sensitivity for AD dementia).
    low_tau_share = (stage[ad] <= 2).mean()
    assert 0.04 < low_tau_share < 0.2, low_tau_share
    # Every late-stage label is not AD, and some Braak III-IV participants are CN.
    assert 0.2 < (label[stage >= 5] == "AD").mean() < 0.9
    assert (label[(stage >= 3) & (stage <= 4)] == "CN").mean() > 0.05
    assert set(stage[label == "MCI"]) >= {0, 3, 4, 5, 6}
    # Tau still tells the labels apart on average.
    assert stage[ad].mean() > stage[label == "CN"].mean() + 2


def test_only_mmse_and_labels_change_between_the_models(cohorts):
    drawn, clinical = cohorts
    loss = [a.clinical.mmse[0] - b.clinical.mmse[0] for a, b in zip(drawn, clinical, strict=True)]
    lowered = np.array(loss) > 0
    assert 0.06 < lowered.mean() < 0.2  # the non-AD impairment (12 %), a few clipped at 0
    assert min(loss) >= 0 and max(loss) <= 8
    for a, b in zip(drawn, clinical, strict=True):
        assert a.seed is b.seed and a.sex == b.sex and a.has_t1w == b.has_t1w
        assert a.clinical.amyloid_positive == b.clinical.amyloid_positive
        assert [v.tau for v in a.visits] == [v.tau for v in b.visits]
        assert [v.age for v in a.visits] == [v.age for v in b.visits]


def test_the_clinical_draw_is_reproducible():
    first = diagnosis.apply_diagnosis_model(draw_cohort(30, seed=7), "clinical")
    again = diagnosis.apply_diagnosis_model(draw_cohort(30, seed=7), "clinical")
    assert [s.clinical.mmse for s in first] == [s.clinical.mmse for s in again]


def test_participants_json_says_how_the_labels_were_drawn():
    assert "Braak stage" in participant_fields("stage")["diagnosis"]["Description"]
    clinical = participant_fields("clinical")
    assert "MMSE" in clinical["diagnosis"]["Description"]
    assert "unrelated to tau" in clinical["mmse"]["Description"]


def test_an_unknown_model_is_refused():
    with pytest.raises(ValueError, match="diagnosis must be one of"):
        CohortConfig(n_subjects=2, diagnosis="pathology")


def test_clinical_labels_leave_every_image_and_truth_byte_identical(templateflow_home, tmp_path):
    from taupet_bids.simulate import simulate_cohort

    options = dict(n_subjects=1, seed=21, n_frames=1, jobs=1)
    made = {}
    for model in diagnosis.DIAGNOSIS_MODELS:
        made[model] = tmp_path / model
        config = CohortConfig(diagnosis=model, **options)
        simulate_cohort(made[model], config, log=lambda line: None)
    plain, clinical = made["stage"], made["clinical"]
    # Everything but the top-level tables and the descriptions that record the command.
    files = [
        p for p in plain.rglob("*")
        if p.is_file() and p.parent != plain and p.name != "dataset_description.json"
    ]  # fmt: skip
    assert any(p.name.endswith("_pet.nii.gz") for p in files)
    assert any("truth" in p.parts for p in files)
    for path in files:
        relative = path.relative_to(plain)
        assert path.read_bytes() == (clinical / relative).read_bytes(), relative
    assert (plain / "participants.json").read_text() != (clinical / "participants.json").read_text()
