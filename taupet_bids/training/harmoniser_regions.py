"""Regional supervision for the harmoniser: the regions' means, not only the smoothed voxels.

The voxelwise target is smoothed (8 mm) so reconstruction noise is not learnt, but what a study
reads is regional means, and a smooth field fitted to a smoothed ratio misses a small region
whose ratio differs from its surroundings (the first benchmark read Braak I, the entorhinal
cortex, 2 % high after harmonisation, and a PET-CT input 2 % high there too). So training also
compares, per region, the harmonised mean with the PET-CT's:

    predicted   log( sum_r SUVR_mr x exp(field) ) - log( sum_r SUVR_mr )
    target      log( sum_r SUVR_ct ) - log( sum_r SUVR_mr )

over the benchmark's regions (bilateral Desikan-Killiany grey-matter regions, Braak I-VI, the
meta-temporal ROI). The target is computed from the 2 mm images, as the app's tables are; the
prediction on the network's 4 mm grid, each 4 mm voxel weighted by the share of its 2 mm voxels
inside the region, which is close because the field is smooth (it is a weighted mean of
``exp(field)`` over the region).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from taupet_bids import templates
from taupet_bids.atlases.regions import dk_grey_matter_regions, region_groups
from taupet_bids.core.images import load_3d
from taupet_bids.harmonisation import preprocessing

ATLASES = ("DK", "Braak", "MetaTemporal")
#: Smallest regional sum of SUVR counted (an empty or unmeasured region gives no target).
MIN_SUM = 1e-3


@cache
def _regions() -> tuple[tuple[str, ...], tuple[np.ndarray, ...]]:
    """Region names and each one's flat voxel indices on the 2 mm template grid."""
    names, voxels = [], []
    grey = dk_grey_matter_regions()
    for atlas in ATLASES:
        labels = load_3d(templates.atlas_path(atlas), np.int32).ravel()
        for name, ids in region_groups(atlas).items():
            inside = np.flatnonzero(np.isin(labels, ids))
            if (atlas != "DK" or name in grey) and inside.size:
                names.append(name)
                voxels.append(inside)
    return tuple(names), tuple(voxels)


@cache
def region_weights() -> tuple[tuple[str, ...], np.ndarray]:
    """Region names and their (regions, 4 mm voxels) weights: the share of each 4 mm voxel's
    2 mm voxels inside the region, float32."""
    names, voxels = _regions()
    rows = []
    for inside in voxels:
        mask = np.zeros(int(np.prod(preprocessing.TEMPLATE_SHAPE)), np.float32)
        mask[inside] = 1.0
        rows.append(preprocessing.downsample(mask.reshape(preprocessing.TEMPLATE_SHAPE)).ravel())
    return names, np.stack(rows)


def regional_target(ctac: np.ndarray, mrac: np.ndarray) -> np.ndarray:
    """log(PET-CT regional mean / PET-MR regional mean) per region from the 2 mm SUVR images
    (non-finite values count as 0); NaN where either mean is not positive."""
    flat_ct, flat_mr = (
        np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0).ravel() for a in (ctac, mrac)
    )
    _, voxels = _regions()
    ct = np.array([flat_ct[inside].sum(dtype=np.float64) for inside in voxels])
    mr = np.array([flat_mr[inside].sum(dtype=np.float64) for inside in voxels])
    valid = (ct > MIN_SUM) & (mr > MIN_SUM)
    out = np.full(len(voxels), np.nan)
    out[valid] = np.log(ct[valid] / mr[valid])
    return out.astype(np.float32)


def predicted(suvr4: torch.Tensor, field: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(batch, regions) log-ratio of the harmonised to the input regional means."""
    flat_suvr, flat_field = suvr4.flatten(1), field.flatten(1)
    after = (flat_suvr * torch.exp(flat_field)) @ weights.T
    before = flat_suvr @ weights.T
    return torch.log(after.clamp_min(MIN_SUM)) - torch.log(before.clamp_min(MIN_SUM))
