"""Tau positivity and a data-driven Braak stage estimate: small pure functions, sources cited.

Positivity compares the meta-temporal SUVR (Jack et al. 2017) with a tracer-specific cut-point.
Published flortaucipir cut-points range from about 1.19 to 1.34 depending on the reference
region, partial-volume correction and the method that derived them (Weigand et al. 2022,
Alzheimer's Research & Therapy 14:49, Table 2). The default here is 1.23: Jack et al. 2017
(Lancet Neurology 16:435-444), temporal meta-ROI, no PVC, accuracy-maximising ROC between young
adults and amyloid-positive impaired older adults. Jack used cerebellar crus grey as reference
and taupet-bids defaults to inferior cerebellar grey, so the value is an approximation: pass the
cut-point validated for your pipeline (``--tau-cutpoint``). Other tracers have no default: their
positivity is left empty unless a cut-point is given.

Braak staging is hierarchical (Schöll et al. 2016, Neuron 89:971; Therriault et al. 2022, Nature
Aging 2:526): a stage region is abnormal when its SUVR exceeds a threshold, and the stage is the
highest one reached through an unbroken chain of abnormal stages from Braak I. A scan with an
abnormal later stage after a normal earlier one is *non-conforming* (flagged, not hidden).
Braak II (hippocampus) is not assessed: flortaucipir's choroid-plexus off-target signal spills
into it (Baker et al. 2017 Data in Brief; Maass et al. 2017 NeuroImage, who merged I and II), so
stage II is taken as reached whenever Braak I is (stage 1 cannot be told apart from stage 2).

Thresholds are data-driven when the cohort allows it: mean + 2 SD of each stage region in a
reference group (default: diagnosis ``CN``) of at least :data:`MIN_REFERENCE_SCANS` scans, the
rule Weigand et al. 2022 found to separate tau-positive and negative groups best. Smaller
cohorts fall back to the positivity cut-point for every stage region, a pragmatic choice that is
not a validated per-region threshold; the output says which rule was used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Braak stages in order, as they appear in the ``seg-Braak`` tables (``Braak<roman>``).
STAGES = ("I", "II", "III", "IV", "V", "VI")

#: Stages never assessed; each is taken as reached when the stage before it is.
NOT_ASSESSED = ("II",)

#: Reference-group size below which thresholds fall back to the fixed cut-point.
MIN_REFERENCE_SCANS = 10

#: Standard deviations above the reference group's mean (Weigand et al. 2022).
N_SD = 2.0


@dataclass(frozen=True)
class CutPoint:
    """A meta-temporal SUVR cut-point and where it comes from."""

    value: float
    source: str


#: Default cut-points by tracer name (``taupet_bids.tracers.Tracer.name``).
CUTPOINTS: dict[str, CutPoint] = {
    "flortaucipir": CutPoint(
        1.23,
        "Jack et al. 2017, Lancet Neurol 16:435 (temporal meta-ROI, no PVC, cerebellar crus "
        "grey reference; approximate for other references)",
    ),
}


def cutpoint_for(tracer: str | None, override: float | None = None) -> CutPoint | None:
    """The cut-point to use: the user's, else the tracer's default, else none."""
    if override is not None:
        return CutPoint(float(override), "user-supplied (--tau-cutpoint)")
    return CUTPOINTS.get(tracer or "")


def is_positive(suvr: float, cutpoint: CutPoint | None) -> bool | None:
    """True when the SUVR reaches the cut-point; None when either is unknown."""
    if cutpoint is None or suvr is None or math.isnan(suvr):
        return None
    return bool(suvr >= cutpoint.value)


def fixed_thresholds(cutpoint: CutPoint) -> dict[str, float]:
    """The positivity cut-point for every stage region (the small-cohort fallback)."""
    return {stage: cutpoint.value for stage in STAGES}


def reference_thresholds(
    braak: pd.DataFrame, n_sd: float = N_SD, min_scans: int = MIN_REFERENCE_SCANS
) -> dict[str, float] | None:
    """Mean + ``n_sd`` SD per stage region over reference-group scans (columns I..VI).

    None when fewer than ``min_scans`` scans have values: an SD from a handful of scans would
    move the thresholds more than the disease does.
    """
    complete = braak[list(STAGES)].dropna()
    if len(complete) < min_scans:
        return None
    return {stage: float(complete[stage].mean() + n_sd * complete[stage].std()) for stage in STAGES}


@dataclass(frozen=True)
class BraakEstimate:
    """One scan's stage (0-6), and whether its abnormal regions follow the Braak order."""

    stage: int
    conforming: bool


def braak_stage(
    suvr: Mapping[str, float],
    thresholds: Mapping[str, float],
    not_assessed: tuple[str, ...] = NOT_ASSESSED,
) -> BraakEstimate:
    """Hierarchical stage from per-stage SUVRs (keys ``I``..``VI``) and thresholds.

    A missing or NaN value counts as not abnormal. Stages in ``not_assessed`` copy the status of
    the stage before them.
    """
    abnormal: list[bool] = []
    for stage in STAGES:
        if stage in not_assessed:
            abnormal.append(abnormal[-1] if abnormal else False)
            continue
        value = suvr.get(stage, np.nan)
        abnormal.append(
            bool(value is not None and not np.isnan(value) and value > thresholds[stage])
        )
    reached = 0
    while reached < len(STAGES) and abnormal[reached]:
        reached += 1
    conforming = not any(abnormal[reached:])
    return BraakEstimate(reached, conforming)
