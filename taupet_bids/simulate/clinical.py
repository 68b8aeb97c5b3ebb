"""Clinical variables and hidden traits of a participant, from their own random stream.

MMSE and amyloid status are tied to the Braak stage with noise, so a model conditioned on them
learns something about tau but not everything; the TSPO genotype is a hidden factor that scales
every TSPO scan of the person. They are drawn from a stream of their own (the subject's seed
extended by :data:`CLINICAL_STREAM`), so every image the simulator made before they existed is
drawn from the same numbers as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Spawn-key suffix of the clinical stream (PET-MR pairs use 16).
CLINICAL_STREAM = 17
#: P(amyloid positive) by Braak stage 0-VI: some CN are positive; neocortical tau almost never
#: comes without amyloid (a simulator choice in line with Jack et al. 2018's A/T/N framework).
AMYLOID_POSITIVE = (0.2, 0.3, 0.45, 0.7, 0.85, 0.95, 0.97)
#: Centiloid: threshold, level of the negatives (mean, SD), of the positives (base, per stage, SD).
CENTILOID_THRESHOLD = 20.0
CENTILOID_NEGATIVE = (2.0, 7.0)
CENTILOID_POSITIVE = (35.0, 12.0, 20.0)
#: MMSE: mean 29.5 less per stage, and more per stage beyond II; subject and visit noise (SD).
MMSE_CEILING = 29.5
MMSE_PER_STAGE = (0.15, 1.6)
MMSE_SUBJECT_SD = 1.2
MMSE_VISIT_SD = 0.8
#: rs6971 TSPO genotypes and their frequencies (high-, mixed-, low-affinity binders; roughly
#: the spread reported in European-ancestry cohorts).
GENOTYPES = ("HAB", "MAB", "LAB")
GENOTYPE_FREQUENCIES = (0.49, 0.42, 0.09)


@dataclass(frozen=True)
class Clinical:
    """A participant's clinical variables (MMSE per visit) and hidden traits."""

    amyloid_positive: bool
    centiloid: float
    mmse: tuple[int, ...]
    tspo_genotype: str

    @property
    def amyloid_status(self) -> str:
        """``positive`` or ``negative`` (the participants.tsv value)."""
        return "positive" if self.amyloid_positive else "negative"


def stream(seed: np.random.SeedSequence, suffix: int) -> np.random.Generator:
    """A subject's extra generator: the subject's seed with ``suffix`` appended to its key."""
    key = (*seed.spawn_key, suffix)
    return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=key))


def mmse_mean(stage: int) -> float:
    """Expected MMSE at a Braak stage (before noise)."""
    early, late = MMSE_PER_STAGE
    return MMSE_CEILING - early * stage - late * max(0, stage - 2)


def draw_clinical(rng: np.random.Generator, stages: tuple[int, ...]) -> Clinical:
    """Clinical variables for one participant whose visits have these Braak stages."""
    baseline = stages[0]
    positive = bool(rng.random() < AMYLOID_POSITIVE[baseline])
    if positive:
        base, per_stage, sd = CENTILOID_POSITIVE
        centiloid = max(CENTILOID_THRESHOLD + 1.0, rng.normal(base + per_stage * baseline, sd))
    else:
        centiloid = min(CENTILOID_THRESHOLD - 1.0, rng.normal(*CENTILOID_NEGATIVE))
    offset = rng.normal(0.0, MMSE_SUBJECT_SD)
    mmse = tuple(
        int(np.clip(np.rint(mmse_mean(s) + offset + rng.normal(0.0, MMSE_VISIT_SD)), 0, 30))
        for s in stages
    )
    genotype = str(rng.choice(GENOTYPES, p=GENOTYPE_FREQUENCIES))
    return Clinical(positive, round(float(centiloid), 1), mmse, genotype)
