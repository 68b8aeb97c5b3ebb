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

Per-scan staging with fixed, published thresholds (written by the participant level, copied by
the group level) is a second, separate rule; see :func:`composite_stage` and
:func:`stage_table`. It uses the three Braak composites of the ``seg-Braak`` tables (I/II =
entorhinal + hippocampus, III/IV, V/VI) and the thresholds of Maass et al. 2017 (NeuroImage
157:448-463, Fig. 1), which were derived on partial-volume-corrected flortaucipir SUVR (Rousset
GTM correction as coded by Baker, Maass & Jagust 2017, Data in Brief 15:648; inferior
cerebellar grey reference): a composite is abnormal when its SUVR is strictly above its
threshold (I/II > 1.13, III/IV > 1.30, V/VI > 1.87). The rule is Maass's: go from the latest
composite to the earliest, and the first abnormal one gives the stage (V/VI -> 6, III/IV -> 4,
I/II -> 2); none abnormal -> stage 0. The stage is hierarchical in that it names the furthest
composite reached; a scan whose abnormal composites do not form an unbroken chain from I/II is
kept at that stage and flagged non-conforming. No published set for uncorrected SUVR could be
checked against its source (Maass et al. give one in their text, which we could not read), so
the uncorrected row of the table carries the composites but no stage, and says why.
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


# Per-scan staging with fixed, published thresholds ------------------------------------------

#: Braak composites of the ``seg-Braak`` tables, earliest first, and the stage each one reaches.
COMPOSITES = ("BraakI_II", "BraakIII_IV", "BraakV_VI")
COMPOSITE_STAGE = {"BraakI_II": 2, "BraakIII_IV": 4, "BraakV_VI": 6}
STAGE_LABELS = {0: "0", 2: "I-II", 4: "III-IV", 6: "V-VI"}

#: The reference region the published thresholds were derived with (Baker et al. 2017).
PUBLISHED_REFERENCE = "InfCerebGrey"


@dataclass(frozen=True)
class ThresholdSet:
    """Fixed composite thresholds from one publication, and the conditions they hold under."""

    key: str
    citation: str
    tracer: str
    reference_region: str
    pvc: str
    thresholds: Mapping[str, float]


#: Maass et al. 2017, Fig. 1 caption: "BraakV/VI > 1.87, BraakIII/IV > 1.30, BraakI/II > 1.13,
#: Braak0 <= 1.13", on PVC (Rousset GTM) flortaucipir SUVR, inferior cerebellar grey reference.
MAASS2017_PVC = ThresholdSet(
    key="Maass2017_PVC",
    citation="Maass A et al. (2017) Comparison of multiple tau-PET measures as biomarkers in "
    "aging and Alzheimer's disease. NeuroImage 157:448-463, doi 10.1016/j.neuroimage.2017.05.058"
    " (Fig. 1); PVC: Baker SL, Maass A, Jagust WJ (2017) Data Brief 15:648-657",
    tracer="flortaucipir",
    reference_region=PUBLISHED_REFERENCE,
    pvc="GTM",
    thresholds={"BraakI_II": 1.13, "BraakIII_IV": 1.30, "BraakV_VI": 1.87},
)

#: Why an uncorrected row has no stage (also written in the table's sidecar and docs/pvc.md).
NO_UNCORRECTED_SET = (
    "no stage: taupet-bids has no fixed threshold set for uncorrected SUVR that it could check "
    "against its published source (Maass et al. 2017 state non-PVC thresholds in their text, "
    "which could not be verified), so none is applied; use a --pvc method for the published "
    "PVC thresholds, give your own with --braak-thresholds, or use the group level's "
    "data-driven braak_stage_estimate"
)


#: Key of a threshold set the user gave for uncorrected SUVR (``--braak-thresholds``).
USER_SET_KEY = "user_uncorrected"
USER_SET_NOTE = (
    "user-supplied thresholds for uncorrected SUVR (--braak-thresholds); taupet-bids has not "
    "checked that they suit this tracer, reference region and pipeline"
)


def user_threshold_set(
    thresholds: tuple[float, float, float], citation: str, reference_region: str
) -> ThresholdSet:
    """A set for uncorrected SUVR from the command line: I/II, III/IV, V/VI and its source."""
    if len(thresholds) != len(COMPOSITES) or not all(
        math.isfinite(t) and t > 0 for t in thresholds
    ):
        raise ValueError(f"Braak thresholds must be three positive SUVRs, got {thresholds}")
    if not citation or not citation.strip():
        raise ValueError("user Braak thresholds need their source (a citation)")
    return ThresholdSet(
        key=USER_SET_KEY,
        citation=citation.strip(),
        tracer="any (user's responsibility)",
        reference_region=reference_region,
        pvc="none",
        thresholds=dict(zip(COMPOSITES, (float(t) for t in thresholds), strict=True)),
    )


def threshold_set_for(
    tracer: str | None,
    reference_region: str,
    pvc: str | None,
    uncorrected: ThresholdSet | None = None,
) -> tuple[ThresholdSet | None, str]:
    """The threshold set that applies to a table, or None; and a note on why or with what caveat.

    ``pvc`` is the correction method of the table (``gtm``, ``rbv``, ``mg``), None or ``none``
    for uncorrected SUVR. ``uncorrected`` is a user-supplied set for uncorrected SUVR
    (:func:`user_threshold_set`); without it uncorrected tables get no stage.
    """
    if not pvc or pvc.lower() == "none":
        if uncorrected is not None:
            return uncorrected, USER_SET_NOTE
        return None, NO_UNCORRECTED_SET
    chosen = MAASS2017_PVC
    if tracer != chosen.tracer:
        return None, f"no stage: no published fixed Braak thresholds for tracer {tracer or 'n/a'}"
    if reference_region != chosen.reference_region:
        return None, (
            f"no stage: {chosen.key} holds for the {chosen.reference_region} reference, "
            f"not {reference_region}"
        )
    if pvc.upper() != chosen.pvc:
        return chosen, (
            f"{chosen.key} was derived on {chosen.pvc}-corrected SUVR; applied to "
            f"{pvc.upper()} values as is"
        )
    return chosen, ""


@dataclass(frozen=True)
class CompositeStage:
    """Stage 0/2/4/6 from the three composites (None when a composite value is missing)."""

    stage: int | None
    conforming: bool | None
    abnormal: tuple[bool | None, ...]

    @property
    def label(self) -> str | None:
        """``0``, ``I-II``, ``III-IV`` or ``V-VI``."""
        return None if self.stage is None else STAGE_LABELS[self.stage]


def composite_stage(suvr: Mapping[str, float], thresholds: Mapping[str, float]) -> CompositeStage:
    """Maass et al. 2017's rule on the composites ``BraakI_II``, ``BraakIII_IV``, ``BraakV_VI``.

    A composite is abnormal when its SUVR is strictly above its threshold. From the latest
    composite to the earliest, the first abnormal one gives the stage; with none abnormal the
    stage is 0. The scan conforms when every composite before the one that gave the stage is
    abnormal too. A missing or NaN composite leaves the stage undetermined (None).
    """
    values = [suvr.get(name) for name in COMPOSITES]
    if any(v is None or math.isnan(v) for v in values):
        abnormal = tuple(
            None if v is None or math.isnan(v) else bool(v > thresholds[name])
            for name, v in zip(COMPOSITES, values, strict=True)
        )
        return CompositeStage(None, None, abnormal)
    flags = tuple(bool(v > thresholds[name]) for name, v in zip(COMPOSITES, values, strict=True))
    reached = [i for i, flag in enumerate(flags) if flag]
    if not reached:
        return CompositeStage(0, True, flags)
    last = reached[-1]
    return CompositeStage(COMPOSITE_STAGE[COMPOSITES[last]], all(flags[:last]), flags)


def stage_table_columns() -> list[str]:
    """Columns of the per-scan ``_braakstage.tsv`` table, in order."""
    per_composite = [
        f"{name}_{what}" for name in COMPOSITES for what in ("suvr", "threshold", "abnormal")
    ]
    return ["method", "pvc", *per_composite, "braak_stage", "braak_stage_label",
            "braak_conforming", "threshold_set", "citation", "note"]  # fmt: skip


def stage_table(
    braak_tables: Mapping[str, pd.DataFrame],
    tracer: str | None,
    reference_region: str,
    uncorrected: ThresholdSet | None = None,
) -> pd.DataFrame:
    """One row per table: ``braak_tables`` maps a PVC method (``none`` first) to a seg-Braak table.

    ``method`` is named as the group tables name it (``SUVR``, ``SUVR-PVC-GTM``);
    ``uncorrected`` optionally stages the uncorrected row (:func:`threshold_set_for`).
    """
    rows = []
    for pvc, table in braak_tables.items():
        values = table.set_index("region")["suvr_mean"].astype(float)
        suvr = {name: float(values.get(name, np.nan)) for name in COMPOSITES}
        chosen, note = threshold_set_for(tracer, reference_region, pvc, uncorrected)
        corrected = bool(pvc) and pvc.lower() != "none"
        row: dict[str, object] = {
            "method": f"SUVR-PVC-{pvc.upper()}" if corrected else "SUVR",
            "pvc": pvc.upper() if corrected else "none",
        }
        result = composite_stage(suvr, chosen.thresholds) if chosen else None
        for position, name in enumerate(COMPOSITES):
            row[f"{name}_suvr"] = suvr[name]
            row[f"{name}_threshold"] = chosen.thresholds[name] if chosen else None
            row[f"{name}_abnormal"] = result.abnormal[position] if result else None
        if result is not None and result.stage is None:
            note = "; ".join(filter(None, [note, "no stage: a Braak composite has no value"]))
        row.update(
            braak_stage=result.stage if result else None,
            braak_stage_label=result.label if result else None,
            braak_conforming=result.conforming if result else None,
            threshold_set=chosen.key if chosen else None,
            citation=chosen.citation if chosen else None,
            note=note or None,
        )
        rows.append(row)
    frame = pd.DataFrame(rows, columns=stage_table_columns())
    return frame.astype({"braak_stage": "Int64"})


#: How the composite stage is decided, in words (sidecar ``StagingRule`` and docs/pvc.md).
STAGING_RULE = (
    "A Braak composite is abnormal when its SUVR is strictly above its threshold. From the "
    "latest composite (V/VI) to the earliest (I/II), the first abnormal one gives the stage "
    "(V/VI: 6, III/IV: 4, I/II: 2); none abnormal: 0 (Maass et al. 2017). The scan conforms "
    "when every composite before that one is abnormal too; otherwise it keeps the stage and "
    "braak_conforming is false. A missing composite leaves the stage empty."
)


def stage_table_sidecar(uncorrected: ThresholdSet | None = None) -> dict:
    """Sidecar fields of the ``_braakstage.tsv`` table: columns, rule and threshold sets."""
    columns = {
        "method": "SUVR (uncorrected) or SUVR-PVC-<METHOD>, as in the group tables",
        "pvc": "partial-volume correction of the values in this row (none, GTM, RBV, MG)",
    }
    for name in COMPOSITES:
        columns[f"{name}_suvr"] = f"{name} composite SUVR (the seg-Braak table's suvr_mean)"
        columns[f"{name}_threshold"] = f"{name} threshold of threshold_set (n/a: none applies)"
        columns[f"{name}_abnormal"] = f"{name}_suvr > {name}_threshold"
    columns.update(
        braak_stage="0, 2 (I-II), 4 (III-IV) or 6 (V-VI); n/a when no threshold set applies",
        braak_stage_label="0, I-II, III-IV or V-VI",
        braak_conforming="false when a composite before the staging one is not abnormal",
        threshold_set="key of the published threshold set used (see ThresholdSets)",
        citation="the source of threshold_set",
        note="why the stage is empty, or a caveat on the thresholds used",
    )
    sets = {
        chosen.key: {
            "Citation": chosen.citation,
            "Tracer": chosen.tracer,
            "ReferenceRegion": chosen.reference_region,
            "PartialVolumeCorrection": chosen.pvc,
            "Thresholds": dict(chosen.thresholds),
        }
        for chosen in filter(None, (MAASS2017_PVC, uncorrected))
    }
    return {
        "Description": "Braak stage of this scan from fixed thresholds (published, or the "
        "user's for uncorrected SUVR: see ThresholdSets) on the Braak "
        "composites of the seg-Braak tables; one row per method",
        "Columns": columns,
        "StagingRule": STAGING_RULE,
        "ThresholdSets": sets,
        "UncorrectedStage": USER_SET_NOTE if uncorrected else NO_UNCORRECTED_SET,
    }
