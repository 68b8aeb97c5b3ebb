"""Hounsfield units -> linear attenuation coefficient at 511 keV (the PET-CT conversion).

A CT measures attenuation at an effective energy of 60-80 keV, where bone attenuates far more
(photoelectric effect) than at 511 keV; a single scale factor would overestimate bone at 511 keV.
So PET-CT systems use a bilinear map: water-air mixtures below a break point, water-bone mixtures
above it. The coefficients are Carney et al. 2006 (Med Phys 33:976-983) for 120 kVp:
``mu = 9.6e-5 (HU + 1000)`` /cm up to 47 HU, ``mu = 5.10e-5 (HU + 1000) + 4.71e-2`` above it
(the two lines meet at the break point, to the rounding of the published coefficients).
"""

from __future__ import annotations

import numpy as np

#: Water-air line: mu of water at 511 keV (0.096 /cm) per 1000 HU.
WATER_SLOPE_PER_CM = 9.6e-5
#: Water-bone line at 120 kVp (Carney et al. 2006, table 1).
BONE_SLOPE_PER_CM = 5.10e-5
BONE_INTERCEPT_PER_CM = 4.71e-2
BREAK_POINT_HU = 47.0
#: HU of air (and of everything outside the body).
AIR_HU = -1000.0


def mu_511(hu: np.ndarray | float) -> np.ndarray:
    """Linear attenuation coefficient (/cm) at 511 keV of CT numbers ``hu`` (120 kVp)."""
    shifted = np.asarray(hu, dtype=np.float32) - np.float32(AIR_HU)
    water = np.float32(WATER_SLOPE_PER_CM) * shifted
    bone = np.float32(BONE_SLOPE_PER_CM) * shifted + np.float32(BONE_INTERCEPT_PER_CM)
    mu = np.where(shifted <= BREAK_POINT_HU - AIR_HU, water, bone)
    return np.clip(mu, 0.0, None).astype(np.float32)
