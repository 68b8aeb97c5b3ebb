"""A finished scan's QC numbers, read back from the ``<stem>_qc.json`` its graph committed.

The numbers and flags are computed inside the participant graph (:mod:`taupet_bids.core.qc`,
:class:`taupet_bids.interfaces.qc.ScanQC`); reports and the group level only read them, so they
need nothing but the output folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from taupet_bids import naming
from taupet_bids.core.qc import METRICS, flags, is_mr_less

__all__ = ["scan_metrics", "is_mr_less"]


def scan_metrics(output_dir: Path, stem: str) -> dict:
    """Every QC number of one scan (NaN where unknown, or when the scan has no QC record)."""
    path = naming.qc_json(output_dir, stem)
    metrics: dict = dict.fromkeys(METRICS, math.nan)
    if path.exists():
        recorded = json.loads(path.read_text())
        metrics.update({k: math.nan if v is None else v for k, v in recorded.items()})
    if "flags" not in metrics:  # no record: say what is missing
        metrics["flags"] = flags(metrics)
    return metrics
