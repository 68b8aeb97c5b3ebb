"""SUVR: PET divided by its mean in a reference region (inferior cerebellar grey for most tracers).

The same reference rule serves the SUVR image and CenTauRz's reference value.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from taupet_bids.greymatter import (
    EDGE_MARGIN_MM,
    MIN_REFERENCE_VOXELS,
    TISSUE_THRESHOLD,
)


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


def subject_reference(
    template_mask: np.ndarray,
    gm: np.ndarray,
    brain: np.ndarray,
    zooms: tuple[float, ...],
    threshold: float = TISSUE_THRESHOLD,
    edge_margin_mm: float = EDGE_MARGIN_MM,
    min_voxels: int = MIN_REFERENCE_VOXELS,
) -> tuple[np.ndarray, str]:
    """(reference mask, ``subject-gm`` or ``template-fallback``) on the template grid.

    The template reference (inferior cerebellar grey) keeps the voxels that are the subject's
    grey matter (``gm >= threshold``) and farther than ``edge_margin_mm`` from outside the brain
    mask (Euclidean, in mm between voxel centres, from ``zooms``). There is no margin from
    white matter: the reference it estimates is the template mask's grey matter, which includes
    the cortex beside the cerebellar white matter, and cutting that cortex read up to 1.7 % low on
    phantoms with hot white matter and large PSFs (docs/benchmarks.md). With fewer than
    ``min_voxels`` left the template mask comes back unchanged.
    """
    sampling = tuple(float(z) for z in zooms[:3])
    from_outside = ndimage.distance_transform_edt(brain > 0, sampling=sampling)
    keep = (template_mask > 0) & (gm >= threshold) & (from_outside > edge_margin_mm)
    if int(keep.sum()) < min_voxels:
        return (template_mask > 0).astype(np.uint8), "template-fallback"
    return keep.astype(np.uint8), "subject-gm"
