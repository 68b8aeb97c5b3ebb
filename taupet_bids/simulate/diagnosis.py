"""The clinical label of each visit: from the Braak stage, or from cognition.

``stage`` (the default): Braak 0-II is CN, III-IV MCI, V-VI AD. Every earlier cohort was made
this way; a classifier that reads tau can then be perfect, and one number (the meta-temporal
SUVR) nearly is.

``clinical``: the label follows the visit's MMSE through fixed bands, as a memory clinic's label
follows cognition, and some participants carry a cognitive impairment that has nothing to do
with tau (vascular, Lewy body or other disease), drawn from a stream of their own, which lowers
their MMSE at every visit. Tau-negative dementia and high tau with normal cognition then both
occur: about one in ten of the AD labels goes to a participant at Braak 0-II, in line with the
89.9 % sensitivity of flortaucipir for clinically diagnosed AD dementia (Ossenkoppele et al.,
JAMA 2018), and MCI spans Braak 0-VI. The MMSE in participants.tsv includes that loss, so the
table stays consistent with the label. The bands are a simulator rule: real diagnoses use more
than one test score.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from taupet_bids.simulate.clinical import stream
from taupet_bids.simulate.population import DIAGNOSIS_BY_STAGE, SubjectSpec

DIAGNOSIS_MODELS = ("stage", "clinical")
#: Spawn-key suffix of the non-AD impairment stream (16-20 are taken by other draws).
NON_AD_STREAM = 21
#: Chance that a participant has a cognitive impairment unrelated to tau, and its MMSE loss
#: (points, uniform): chosen so that about 10 % of AD labels fall at Braak 0-II.
NON_AD_PROBABILITY = 0.12
NON_AD_MMSE_LOSS = (3.0, 8.0)
#: MMSE bands: at least CN_MIN_MMSE is CN, at least MCI_MIN_MMSE is MCI, lower is AD.
CN_MIN_MMSE = 28
MCI_MIN_MMSE = 24


def diagnosis_from_mmse(mmse: int) -> str:
    """CN, MCI or AD by the MMSE bands."""
    if mmse >= CN_MIN_MMSE:
        return "CN"
    return "MCI" if mmse >= MCI_MIN_MMSE else "AD"


def non_ad_loss(seed: np.random.SeedSequence) -> float:
    """The participant's MMSE loss from a non-AD impairment (0 for most participants)."""
    rng = stream(seed, NON_AD_STREAM)
    impaired = rng.random() < NON_AD_PROBABILITY
    loss = rng.uniform(*NON_AD_MMSE_LOSS)
    return float(loss) if impaired else 0.0


def with_clinical_diagnosis(subject: SubjectSpec) -> SubjectSpec:
    """The participant with MMSE lowered by any non-AD impairment and labels from the MMSE."""
    loss = non_ad_loss(subject.seed)
    mmse = tuple(int(np.clip(np.rint(score - loss), 0, 30)) for score in subject.clinical.mmse)
    visits = tuple(
        replace(visit, diagnosis=diagnosis_from_mmse(score))
        for visit, score in zip(subject.visits, mmse, strict=True)
    )
    return replace(subject, visits=visits, clinical=replace(subject.clinical, mmse=mmse))


def apply_diagnosis_model(subjects: list[SubjectSpec], model: str) -> list[SubjectSpec]:
    """The cohort with its labels drawn by ``model`` (``stage`` leaves it as drawn)."""
    if model not in DIAGNOSIS_MODELS:
        raise ValueError(f"diagnosis must be one of {DIAGNOSIS_MODELS}, not {model!r}")
    if model == "stage":
        return subjects
    return [with_clinical_diagnosis(subject) for subject in subjects]


#: participants.tsv descriptions of the diagnosis and MMSE columns, per model.
DIAGNOSIS_TEXT = {
    "stage": "Clinical diagnosis at the first visit (simulated from the Braak stage: "
    f"0-II {DIAGNOSIS_BY_STAGE[0]}, III-IV {DIAGNOSIS_BY_STAGE[3]}, V-VI {DIAGNOSIS_BY_STAGE[5]})",
    "clinical": "Clinical diagnosis at the first visit (simulated from the MMSE: "
    f">= {CN_MIN_MMSE} CN, {MCI_MIN_MMSE}-{CN_MIN_MMSE - 1} MCI, lower AD; some participants "
    "have a simulated cognitive impairment unrelated to tau)",
}
MMSE_TEXT = {
    "stage": "Mini-Mental State Examination at the first visit (0-30; simulated from the Braak "
    "stage with subject and visit noise)",
    "clinical": "Mini-Mental State Examination at the first visit (0-30; simulated from the "
    "Braak stage with subject and visit noise, lowered for participants with a simulated "
    "impairment unrelated to tau)",
}
