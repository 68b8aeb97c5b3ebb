"""Smoothing a PET image to a uniform resolution (ADNI-style harmonisation, e.g. to 8 mm).

Why: scanners differ in resolution (6-8 mm FWHM among ADNI's), so the same brain reads
differently on each (thin cortex loses more signal on a coarser scanner). Smoothing every
scan to one common FWHM, coarser than all of them, removes that difference before SUVR and
regional values (Joshi et al. 2009, NeuroImage 46:154, for ADNI's 8 mm). Gaussians compose in
quadrature, so an image at ``f`` mm reaches ``T`` mm with a Gaussian of
``sqrt(T^2 - f^2)`` mm. An image already at or coarser than ``T`` cannot be sharpened by
smoothing and is left as it is.

Edges are padded with the nearest voxel, not zero: zero padding would darken the first and
last slices, where the cerebellar reference region often lies in a short axial field of view.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from taupet_bids.core.pvc import TRUNCATE, fwhm_to_sigma


def kernel_fwhm(target_mm: float, current_mm: float) -> float:
    """FWHM (mm) of the Gaussian that takes an image at ``current_mm`` to ``target_mm``.

    0 when the image is already at or coarser than the target (it is then left as it is).
    """
    if target_mm <= 0 or current_mm <= 0:
        raise ValueError(f"FWHMs must be positive, got target {target_mm}, image {current_mm}")
    if current_mm >= target_mm:
        return 0.0
    return float(np.sqrt(target_mm**2 - current_mm**2))


def smooth_to_fwhm(
    data: np.ndarray, zooms: Sequence[float], current_mm: float, target_mm: float
) -> tuple[np.ndarray, float]:
    """``(image at target_mm, kernel FWHM applied in mm)``; the input itself when the kernel is 0.

    Non-finite voxels are smoothed as zero and stay non-finite in the output (NaN), so a mask
    of missing data is kept rather than spread.
    """
    kernel = kernel_fwhm(target_mm, current_mm)
    if kernel == 0.0:
        return data, 0.0
    image = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(image)
    sigma = fwhm_to_sigma(kernel, zooms)
    smoothed = ndimage.gaussian_filter(
        np.where(finite, image, 0.0), sigma, mode="nearest", truncate=TRUNCATE
    )
    smoothed[~finite] = np.nan
    return smoothed, kernel
