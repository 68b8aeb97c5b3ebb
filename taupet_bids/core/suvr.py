"""SUVR: PET divided by its mean in a reference region (inferior cerebellar grey for most tracers).

The same reference rule serves the SUVR image and CenTauRz's reference value.
"""

from __future__ import annotations

import numpy as np


def compute_suvr(
    pet: np.ndarray, reference: np.ndarray, brain: np.ndarray | None = None
) -> tuple[np.ndarray, float, int]:
    """(SUVR image, reference mean, reference voxel count).

    ``reference`` and ``brain`` are masks (> 0 is inside). Non-finite PET voxels, and voxels that
    are exactly 0 (outside the PET's field of view after resampling), are left out of the
    reference mean: a field of view that cuts the cerebellum would otherwise pull the reference
    down and every SUVR up (the QC reports the reference region's coverage). The brain mask only
    zeroes the SUVR image outside the brain.
    """
    inside = (reference > 0) & np.isfinite(pet) & (pet != 0)
    count = int(inside.sum())
    if count == 0:
        raise ValueError("reference region is empty")
    ref_mean = float(pet[inside].mean())
    if ref_mean <= 0:
        raise ValueError(f"mean activity in the reference region is {ref_mean:g} (<= 0)")
    suvr = pet / ref_mean
    if brain is not None:
        suvr = np.where(brain > 0, suvr, 0.0)
    return suvr, ref_mean, count
