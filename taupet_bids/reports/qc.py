"""Per-scan quality-control numbers and the flags a person should look at.

Registration scores are QC outputs of the RegisterImages nodes (work folder); they are copied
to ``<pet>_qc.json`` beside the scan's derivatives after the participant run, so the group level
and a rerun of the reports need only the output folder.

The flag thresholds are heuristics, not validated criteria: motion is flagged when the largest
framewise displacement reaches the size of the PET point-spread function (~5 mm; residual
misalignment at that scale blurs the average even after correction); PET-to-T1w normalised
mutual information (1 = independent, 2 = identical) near 1 means the rigid registration found
little shared structure (good registrations of the simulated cohort score 1.04-1.08); a
T1w-to-template correlation below 0.9 means the nonlinear registration did not converge (good
ones score above 0.99). Every scan, MR-based or MR-less, also carries the QC of its spatial
normalisation in the SUVR sidecar (``SpatialNormalisation``: correlation with the tau PET
template, field-of-view coverage of the brain and reference region, and flags; thresholds in
:mod:`taupet_bids.interfaces.mrless`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

MAX_FD_MM = 5.0
MIN_COREG_NMI = 1.02
MIN_T1W2STD_CORRELATION = 0.9

#: Nodes of the participant graph that hold the registration QC scores, and which output.
#: Found by node name anywhere under the scan's folder, so regrouping sub-workflows is harmless.
SCORE_NODES = {
    "coreg_nmi": ("pet_to_t1w", "nmi"),
    "t1w2std_correlation": ("t1w_to_template", "correlation"),
}


def pet_folder(output_dir: Path, stem: str) -> Path:
    """``sub-X/[ses-Y/]pet`` of a scan stem such as ``sub-001_ses-M000_trc-X``."""
    parts = dict(part.split("-", 1) for part in stem.split("_"))
    folder = output_dir / f"sub-{parts['sub']}"
    if "ses" in parts:
        folder = folder / f"ses-{parts['ses']}"
    return folder / "pet"


def qc_json(output_dir: Path, stem: str) -> Path:
    """Where a scan's registration scores are kept."""
    return pet_folder(output_dir, stem) / f"{stem}_qc.json"


def work_scores(work_dir: Path, stem: str) -> dict[str, float]:
    """Registration scores from the Nipype result files of one scan (empty when absent)."""
    from nipype.utils.filemanip import loadpkl

    scan = work_dir / "taupet_participant_wf" / f"scan_{re.sub(r'[^A-Za-z0-9]', '_', stem)}"
    scores = {}
    for key, (node, output) in SCORE_NODES.items():
        for result in sorted(scan.glob(f"**/{node}/result_{node}.pklz")):
            value = getattr(loadpkl(str(result)).outputs, output, None)
            if isinstance(value, float):
                scores[key] = value
    return scores


def save_scores(output_dir: Path, work_dir: Path, stem: str) -> dict[str, float]:
    """Copy one scan's registration scores from the work folder to ``<pet>_qc.json``."""
    scores = work_scores(work_dir, stem)
    if scores:
        qc_json(output_dir, stem).write_text(json.dumps(scores, indent=2) + "\n")
    return scores


def motion_metrics(motion_tsv: Path) -> dict[str, float]:
    """Frames used, largest and mean framewise displacement (mm), largest translation (mm)."""
    if not motion_tsv.exists():
        return {}
    motion = pd.read_csv(motion_tsv, sep="\t")
    moved = motion["framewise_displacement"].iloc[1:]
    translation = motion[["trans_x", "trans_y", "trans_z"]].abs().to_numpy().max()
    return {
        "n_frames": int(len(motion)),
        "max_fd_mm": float(moved.max()) if len(moved) else 0.0,
        "mean_fd_mm": float(moved.mean()) if len(moved) else 0.0,
        "max_translation_mm": float(translation),
    }


def scan_metrics(output_dir: Path, stem: str) -> dict[str, float]:
    """Every QC number of one scan; missing ones are NaN (the flags then say so)."""
    folder = pet_folder(output_dir, stem)
    metrics = {"n_frames": math.nan, "max_fd_mm": math.nan, "mean_fd_mm": math.nan,
               "max_translation_mm": math.nan, "coreg_nmi": math.nan,
               "t1w2std_correlation": math.nan}  # fmt: skip
    metrics.update(motion_metrics(folder / f"{stem}_desc-motion_timeseries.tsv"))
    scores = qc_json(output_dir, stem)
    if scores.exists():
        metrics.update(json.loads(scores.read_text()))
    metrics.update(normalisation_metrics(folder, stem))
    return metrics


def normalisation_metrics(folder: Path, stem: str) -> dict:
    """Method and QC of the scan's spatial normalisation, from its SUVR sidecar."""
    sidecars = sorted(folder.glob(f"{stem}_space-*_desc-suvr_pet.json"))
    if not sidecars:
        return {}
    found = json.loads(sidecars[0].read_text()).get("SpatialNormalisation", {})
    return {
        "normalisation_method": found.get("Method", "n/a"),
        "template_correlation": found.get("TemplateCorrelation", math.nan),
        "reference_coverage": found.get("ReferenceCoverage", math.nan),
        "brain_coverage": found.get("BrainCoverage", math.nan),
        "normalisation_flags": list(found.get("Flags", [])),
    }


def is_mr_less(metrics: dict) -> bool:
    """True when the scan was normalised without its T1w."""
    return str(metrics.get("normalisation_method", "")).startswith("MR-less")


def flags(metrics: dict[str, float]) -> list[str]:
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
    return found
