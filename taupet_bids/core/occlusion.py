"""Which regions raised a classifier's AD probability: an occlusion map summarised per region.

The map holds, at each template voxel, how much the AD probability fell when the block of image
around that voxel was replaced by reference-level uptake (SUVR 1.0): positive where the scan's
uptake there pushed the decision towards AD, negative where it pushed towards CN, 0 where
occluding changed nothing (the uptake already was at reference level). Plain NumPy, so the
summary can be tested and reused without the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: Columns of the regional summary, with their meaning (written into the table's sidecar).
COLUMN_DESCRIPTIONS = {
    "atlas": "atlas the region comes from (DK: bilateral grey-matter regions; Braak: stages I-VI)",
    "region": "region name",
    "sensitivity_mean": "mean over the region's voxels of the drop in AD probability when a "
    "12 mm block around the voxel is set to SUVR 1.0 (positive: the region's uptake raised "
    "the AD probability)",
    "sensitivity_max": "largest such drop in the region",
    "n_voxels": "template voxels of the region",
    "rank": "rank within the atlas by sensitivity_mean (1: raised the AD probability most)",
}
COLUMNS = list(COLUMN_DESCRIPTIONS)
#: The same columns of the attribution map's summary (integrated gradients, log-odds units).
ATTRIBUTION_COLUMN_DESCRIPTIONS = {
    **COLUMN_DESCRIPTIONS,
    "sensitivity_mean": "mean over the region's voxels of the contribution to the AD log-odds "
    "(integrated gradients from the brain at SUVR 1.0, per 4 mm voxel; positive: the region's "
    "uptake raised the odds of AD)",
    "sensitivity_max": "largest such contribution in the region",
    "rank": "rank within the atlas by sensitivity_mean (1: raised the odds of AD most)",
}


def region_sensitivity(
    sensitivity: np.ndarray,
    atlas: np.ndarray,
    groups: Mapping[str, Sequence[int]],
    atlas_name: str,
) -> pd.DataFrame:
    """One row per region of ``groups`` (name -> label indices), ranked by mean sensitivity.

    ``sensitivity`` and ``atlas`` share one grid. Regions with no voxel get NaN and rank last.
    """
    if sensitivity.shape != atlas.shape:
        raise ValueError(f"map {sensitivity.shape} and atlas {atlas.shape} differ in shape")
    labels = np.rint(atlas).astype(np.int64)
    rows = []
    for name, indices in groups.items():
        values = sensitivity[np.isin(labels, np.asarray(list(indices), dtype=np.int64))]
        empty = values.size == 0
        rows.append(
            {
                "atlas": atlas_name,
                "region": name,
                "sensitivity_mean": np.nan if empty else float(values.mean()),
                "sensitivity_max": np.nan if empty else float(values.max()),
                "n_voxels": int(values.size),
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS[:-1])
    table = table.sort_values("sensitivity_mean", ascending=False, na_position="last")
    table["rank"] = np.arange(1, len(table) + 1)
    return table.reset_index(drop=True)[COLUMNS]


def top_regions(table: pd.DataFrame, atlas_name: str, count: int = 3) -> list[str]:
    """The ``count`` regions of one atlas that raised the AD probability most (positive only)."""
    rows = table[(table["atlas"] == atlas_name) & (table["sensitivity_mean"] > 0)]
    return rows.sort_values("rank")["region"].head(count).tolist()
