"""Regional SUVR statistics: one table row per atlas label or composite region.

The table's columns (:data:`STAT_COLUMNS`) are shared by every regional table the app writes,
partial-volume corrected or not, so the group level can stack them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from taupet_bids.errors import InputError
from taupet_bids.greymatter import TISSUE_THRESHOLD

#: Columns of every regional table, with the description written into the table's sidecar.
STAT_COLUMN_DESCRIPTIONS = {
    "region": "region name (DK: bilateral, then left-/right-; Braak stages and composites)",
    "suvr_mean": "mean SUVR over the region's voxels",
    "suvr_median": "median SUVR over the region's voxels",
    "suvr_sd": "standard deviation of SUVR over the region's voxels",
    "volume_ml": "volume of the voxels the statistics were taken over (template space), mL",
    "n_voxels": "number of template-space voxels the statistics were taken over: the atlas "
    "label's, or with RegionalMask subject-gm those of its grey-matter regions where the "
    "subject's grey matter probability is at least GreyMatterThreshold (see the sidecar); "
    "voxels beyond the PET's field of view are left out, so fewer than the label's mean the "
    "field of view cut the region",
}
STAT_COLUMNS = list(STAT_COLUMN_DESCRIPTIONS)


def region_stats(values: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """Mean, median, population sd (ddof=0), volume and count of one region's voxels."""
    finite = values[np.isfinite(values)]
    empty = finite.size == 0
    return {
        "suvr_mean": np.nan if empty else float(finite.mean()),
        "suvr_median": np.nan if empty else float(np.median(finite)),
        "suvr_sd": np.nan if empty else float(finite.std()),
        "volume_ml": values.size * voxel_ml,
        "n_voxels": int(values.size),
    }


def measured_voxels(image: np.ndarray) -> np.ndarray:
    """Voxels that carry PET data: a template-space image is exactly 0 where the PET's field of
    view did not reach (the resampling's fill value), and a region's statistics leave those out,
    as the SUVR reference does; otherwise a field of view that cuts the vertex or the cerebellum
    pulls the regions there towards 0."""
    return np.asarray(image) != 0


def regional_statistics(
    suvr: np.ndarray,
    atlas: np.ndarray,
    voxel_ml: float,
    labels: Mapping[int, str],
    groups: Mapping[str, Sequence[int]] | None = None,
    measured: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per label (or per group when ``groups`` is given); empty regions are kept.

    With ``measured`` (:func:`measured_voxels`), voxels outside it are left out of every region.
    """
    regions = groups if groups else {name: [index] for index, name in labels.items()}
    atlas = np.rint(atlas).astype(np.int64)
    rows = []
    for name, indices in regions.items():
        inside = np.isin(atlas, np.asarray(list(indices), dtype=np.int64))
        if measured is not None:
            inside &= measured
        rows.append({"region": name, **region_stats(suvr[inside], voxel_ml)})
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def read_label_table(path: str) -> dict[int, str]:
    """``index``/``name`` columns of a label TSV as {index: name}."""
    table = pd.read_csv(path, sep="\t")
    missing = {"index", "name"} - set(table.columns)
    if missing:
        raise InputError(path, f"missing columns {sorted(missing)}", "use index and name columns")
    return dict(zip(table["index"].astype(int), table["name"].astype(str), strict=True))


def grey_matter_statistics(
    suvr: np.ndarray,
    atlas: np.ndarray,
    gm: np.ndarray,
    voxel_ml: float,
    labels: Mapping[int, str],
    grey_labels: Sequence[int],
    groups: Mapping[str, Sequence[int]] | None = None,
    threshold: float = TISSUE_THRESHOLD,
    measured: np.ndarray | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """:func:`regional_statistics` with grey-matter labels cut to the subject's grey matter.

    Voxels of the labels in ``grey_labels`` count only where ``gm >= threshold``; voxels of
    every other label (white matter, ventricles, subcortical nuclei) count as the template has
    them. A thresholded mask rather than a GM-weighted mean: every kept voxel weighs the same,
    so the median and sd stay ordinary voxel statistics and ``n_voxels`` stays a voxel count.
    A region left with no voxel falls back to its template voxels; the second value lists those
    regions, for the table's sidecar. With ``measured``, voxels outside it are left out first.
    """
    regions = groups if groups else {name: [index] for index, name in labels.items()}
    atlas = np.rint(atlas).astype(np.int64)
    grey = np.isin(atlas, np.asarray(list(grey_labels), dtype=np.int64))
    kept = ~grey | (gm >= threshold)
    rows, fallbacks = [], []
    for name, indices in regions.items():
        inside = np.isin(atlas, np.asarray(list(indices), dtype=np.int64))
        if measured is not None:
            inside &= measured
        restricted = inside & kept
        if inside.any() and not restricted.any():
            restricted = inside
            fallbacks.append(name)
        rows.append({"region": name, **region_stats(suvr[restricted], voxel_ml)})
    return pd.DataFrame(rows, columns=STAT_COLUMNS), fallbacks
