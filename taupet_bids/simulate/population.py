"""Who is in the cohort: demographics, Braak stage and its progression over visits.

Drawn in one place from the cohort seed, so the participants table does not depend on how
subjects are later spread over worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taupet_bids.simulate.clinical import CLINICAL_STREAM, Clinical, draw_clinical, stream
from taupet_bids.simulate.uptake import AMPLITUDE_PER_STAGE, TauState, stage_amplitude

#: Baseline Braak stage 0-VI: a spread that covers every stage in a small cohort.
STAGE_WEIGHTS = (0.22, 0.13, 0.13, 0.13, 0.13, 0.13, 0.13)
#: Clinical label consistent with the stage (a simplification: real cohorts overlap).
DIAGNOSIS_BY_STAGE = ("CN", "CN", "CN", "MCI", "MCI", "AD", "AD")
AGE_RANGE = {"CN": (60.0, 85.0), "MCI": (62.0, 88.0), "AD": (62.0, 90.0)}
#: Chance per interval of moving one Braak stage up (from stage 0, from later stages).
PROGRESSION = (0.15, 0.35)
#: Relative growth of the tau amplitude per year once tau is present.
GROWTH_PER_YEAR = (0.03, 0.08)


@dataclass(frozen=True)
class VisitSpec:
    """One visit: BIDS session label (None for single-visit cohorts), timing, pathology."""

    session: str | None
    months: int
    age: float
    diagnosis: str
    tau: TauState


@dataclass(frozen=True)
class SubjectSpec:
    """One participant and the seed that makes their images."""

    label: str
    sex: str
    has_t1w: bool
    visits: tuple[VisitSpec, ...]
    seed: np.random.SeedSequence
    #: MMSE, amyloid and hidden traits, from the subject's own clinical stream.
    clinical: Clinical | None = None

    @property
    def baseline(self) -> VisitSpec:
        """The first visit (used for participants.tsv)."""
        return self.visits[0]


def _visits(
    rng: np.random.Generator, n_sessions: int, interval_months: int
) -> tuple[VisitSpec, ...]:
    stage = int(rng.choice(len(STAGE_WEIGHTS), p=STAGE_WEIGHTS))
    unit = rng.uniform(*AMPLITUDE_PER_STAGE)
    growth = rng.uniform(*GROWTH_PER_YEAR)
    age = float(rng.uniform(*AGE_RANGE[DIAGNOSIS_BY_STAGE[stage]]))
    visits = []
    for index in range(n_sessions):
        months = index * interval_months
        if index > 0 and rng.random() < PROGRESSION[min(stage, 1)]:
            stage = min(stage + 1, 6)
        amplitude = stage_amplitude(stage, unit) * (1 + growth * months / 12)
        visits.append(
            VisitSpec(
                f"M{months:03d}" if n_sessions > 1 else None,
                months,
                round(age + months / 12, 1),
                DIAGNOSIS_BY_STAGE[stage],
                TauState(stage, float(amplitude)),
            )
        )
    return tuple(visits)


def draw_cohort(
    n_subjects: int,
    seed: int,
    n_sessions: int = 1,
    interval_months: int = 24,
    no_t1w_fraction: float = 0.0,
) -> list[SubjectSpec]:
    """Participants of a cohort; each gets an independent child seed for its images."""
    if n_subjects < 1 or n_sessions < 1:
        raise ValueError("need at least one subject and one session")
    if not 0.0 <= no_t1w_fraction <= 1.0:
        raise ValueError("no_t1w_fraction must be between 0 and 1")
    root = np.random.SeedSequence(seed)
    cohort_seed, *subject_seeds = root.spawn(n_subjects + 1)
    rng = np.random.default_rng(cohort_seed)
    without_t1w = set(
        rng.choice(n_subjects, int(round(no_t1w_fraction * n_subjects)), replace=False).tolist()
    )
    width = max(3, len(str(n_subjects)))
    subjects = []
    for i in range(n_subjects):
        sex = str(rng.choice(["F", "M"]))
        visits = _visits(rng, n_sessions, interval_months)
        clinical = draw_clinical(
            stream(subject_seeds[i], CLINICAL_STREAM), tuple(v.tau.stage for v in visits)
        )
        subjects.append(
            SubjectSpec(
                label=f"{i + 1:0{width}d}",
                sex=sex,
                has_t1w=i not in without_t1w,
                visits=visits,
                seed=subject_seeds[i],
                clinical=clinical,
            )
        )
    return subjects
