"""A head of concentric spheres: the geometry in which AC bias can be read against the literature.

Brain, CSF, a skull of uniform thickness and scalp, centred on a cubic grid. Published magnitudes
of Dixon AC bias (cortex vs centre) come from heads and toys like this, so tests and the benchmark
measure the projector on it before trusting it on the phantom.
"""

from __future__ import annotations

import numpy as np

from taupet_bids.simulate.template import BONE, BRAIN, MENINGES, OUTSIDE, SOFT_TISSUE

#: Radii and thicknesses (mm): brain radius, then CSF, skull (a typical vault) and scalp.
BRAIN_MM, CSF_MM, SKULL_MM, SCALP_MM = 70.0, 3.0, 7.0, 5.0
#: Cortex for bias read-outs: the brain's outer shell of this depth (mm); centre: this radius.
CORTEX_DEPTH_MM = 5.0
CENTRE_MM = 15.0


def sphere_head(voxel_mm: float = 2.0, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Head-layer codes on a ``size``^3 grid, and each voxel's distance from the centre (mm)."""
    shape = (size,) * 3
    centre = (np.array(shape) - 1) / 2
    offsets = np.indices(shape) - centre.reshape(3, 1, 1, 1)
    radius = np.sqrt((offsets**2).sum(axis=0)) * voxel_mm
    layers = np.full(shape, OUTSIDE, np.uint8)
    for code, outer in (
        (SOFT_TISSUE, BRAIN_MM + CSF_MM + SKULL_MM + SCALP_MM),
        (BONE, BRAIN_MM + CSF_MM + SKULL_MM),
        (MENINGES, BRAIN_MM + CSF_MM),
        (BRAIN, BRAIN_MM),
    ):
        layers[radius <= outer] = code
    return layers, radius


def sphere_emission(layers: np.ndarray) -> np.ndarray:
    """Activity: brain 1, every other head layer 0.5, outside 0."""
    return np.select([layers == BRAIN, layers == OUTSIDE], [1.0, 0.0], 0.5)


def cortex_and_centre(
    bias: np.ndarray, layers: np.ndarray, radius: np.ndarray
) -> tuple[float, float]:
    """Mean bias (%) in the brain's outer shell and around its centre."""
    cortex = (layers == BRAIN) & (radius > BRAIN_MM - CORTEX_DEPTH_MM)
    centre = radius < CENTRE_MM
    return 100 * (float(bias[cortex].mean()) - 1), 100 * (float(bias[centre].mean()) - 1)
