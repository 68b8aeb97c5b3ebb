"""Per-scan quality-control numbers and the flags a person should look at.

The flag thresholds are heuristics, not validated criteria: motion is flagged when the largest
framewise displacement reaches the size of the PET point-spread function (~5 mm; residual
misalignment at that scale blurs the average even after correction); PET-to-T1w normalised
mutual information (1 = independent, 2 = identical) near 1 means the rigid registration found
little shared structure (good registrations score 1.04-1.10 on the template phantoms and
1.009-1.036 on the realistic heads of the other anatomy, whose scalp, bone and meninges carry
uptake; the floor is 1.005). The T1w-to-template registration is judged in the template's brain
(grown by 2 voxels): its *alignment margin* (correlation as registered minus the best of small
rigid moves of it, :func:`taupet_bids.core.registration.alignment_margin`) is negative when a 2
mm or 3 degree move would align it better, i.e. when it missed; unlike the correlation itself it
does not depend on how much the subject's brain and contrast resemble the template's. A
correlation below 0.5 means the registration failed outright. Both thresholds are calibrated on
phantoms whose anatomy is not the template (``benchmarks/registration_qc.py``,
docs/benchmarks.md). Every scan, MR-based or MR-less, also carries the QC of its spatial
normalisation (correlation with the tau PET template, field-of-view coverage of the brain and
reference region, and flags; thresholds in :mod:`taupet_bids.normalisation.qc`).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

MAX_FD_MM = 5.0
MIN_COREG_NMI = 1.005
MIN_T1W2STD_CORRELATION = 0.5
MIN_T1W2STD_MARGIN = 0.0

#: Every number of a scan's ``_qc.json``, NaN until known (the flags then say so).
METRICS = ("n_frames", "max_fd_mm", "mean_fd_mm", "max_translation_mm", "coreg_nmi",
           "t1w2std_correlation", "t1w2std_alignment_margin")  # fmt: skip


def motion_metrics(motion_tsv: Path) -> dict[str, float]:
    """Frames used, largest and mean framewise displacement (mm), largest translation (mm)."""
    motion = pd.read_csv(motion_tsv, sep="\t")
    moved = motion["framewise_displacement"].iloc[1:]
    translation = motion[["trans_x", "trans_y", "trans_z"]].abs().to_numpy().max()
    return {
        "n_frames": int(len(motion)),
        "max_fd_mm": float(moved.max()) if len(moved) else 0.0,
        "mean_fd_mm": float(moved.mean()) if len(moved) else 0.0,
        "max_translation_mm": float(translation),
    }


#: Tracer-independent geometry QC values of the normalisation (normalisation/geometry_qc.py)
#: and their group-table columns; RefinementShiftMm only where ``network+ants`` ran.
GEOMETRY_COLUMNS = {
    "HeadShiftMm": "head_shift_mm",
    "HeadScalePct": "head_scale_pct",
    "HeadRotationDeg": "head_rotation_deg",
    "HeadRotationMm": "head_rotation_mm",
    "HeadDice": "head_dice",
    "HeadOutlineMm": "head_outline_mm",
    "ReferenceInHead": "reference_in_head",
    "PosteriorFossaOutlineMm": "posterior_fossa_outline_mm",
    "RefinementShiftMm": "refinement_shift_mm",
    "RegistrationCheckMm": "registration_check_mm",
    "RegistrationCheckScalePct": "registration_check_scale_pct",
    "RegistrationCheckSUVRPct": "registration_check_suvr_pct",
}


def normalisation_metrics(normalisation: dict) -> dict:
    """Method and QC of the scan's spatial normalisation (the ``SpatialNormalisation`` record)."""
    return {
        "normalisation_method": normalisation.get("Method", "n/a"),
        "template_correlation": normalisation.get("TemplateCorrelation", math.nan),
        "reference_coverage": normalisation.get("ReferenceCoverage", math.nan),
        "brain_coverage": normalisation.get("BrainCoverage", math.nan),
        "reference_margin_mm": normalisation.get("ReferenceMarginMm", math.nan),
        "reference_edge_pct": normalisation.get("ReferenceEdgePct", math.nan),
        **{column: normalisation.get(key, math.nan) for key, column in GEOMETRY_COLUMNS.items()},
        "normalisation_flags": list(normalisation.get("Flags", [])),
    }


def is_mr_less(metrics: dict) -> bool:
    """True when the scan was normalised without its T1w."""
    return str(metrics.get("normalisation_method", "")).startswith("MR-less")


def flags(metrics: dict) -> list[str]:
    """Short warnings, one per problem; an empty list means nothing to look at."""
    found = []
    if metrics.get("max_fd_mm", 0) >= MAX_FD_MM:
        found.append(f"motion: max framewise displacement {metrics['max_fd_mm']:.1f} mm")
    found += [f"normalisation: {flag}" for flag in metrics.get("normalisation_flags", [])]
    if is_mr_less(metrics):
        return found
    nmi = metrics.get("coreg_nmi", math.nan)
    if math.isnan(nmi):
        found.append("PET-to-T1w registration score unavailable")
    elif nmi < MIN_COREG_NMI:
        found.append(f"PET-to-T1w registration: NMI {nmi:.3f} < {MIN_COREG_NMI}")
    corr = metrics.get("t1w2std_correlation", math.nan)
    if math.isnan(corr):
        found.append("T1w-to-template registration score unavailable")
    elif corr < MIN_T1W2STD_CORRELATION:
        found.append(f"T1w-to-template registration: r {corr:.3f} < {MIN_T1W2STD_CORRELATION}")
    margin = metrics.get("t1w2std_alignment_margin", math.nan)
    if not math.isnan(margin) and margin < MIN_T1W2STD_MARGIN:
        found.append(
            f"T1w-to-template registration: a 2 mm or 3 degree move aligns it better "
            f"(margin {margin:.3f} < {MIN_T1W2STD_MARGIN})"
        )
    return found


def scan_qc(
    motion_tsv: Path,
    normalisation: dict,
    coreg_nmi: float = math.nan,
    t1w2std_correlation: float = math.nan,
    t1w2std_alignment_margin: float = math.nan,
) -> dict:
    """Every QC number of one scan and its flags: the content of ``<stem>_qc.json``."""
    metrics: dict = dict.fromkeys(METRICS, math.nan)
    metrics.update(motion_metrics(motion_tsv))
    metrics.update(coreg_nmi=coreg_nmi, t1w2std_correlation=t1w2std_correlation,
                   t1w2std_alignment_margin=t1w2std_alignment_margin)  # fmt: skip
    metrics.update(normalisation_metrics(normalisation))
    metrics["flags"] = flags(metrics)
    return metrics
