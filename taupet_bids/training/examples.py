"""Turn a :class:`~taupet_bids.training.heads.Head` into one network input and its targets.

Augmentations (drawn from a generator, so a seed fixes them): a random rigid move of the head in
the scanner (rotations up to :data:`MAX_ROTATION_DEG` about each axis, shifts up to
:data:`MAX_SHIFT_MM`), a field of view cut above or below (cerebellum partly missing), extra
noise, and a random global uptake scale (which the intensity normalisation must cancel). Voxel
size and axis order need no augmentation: every image reaches the network through its header
affine (see :mod:`taupet_bids.normalisation.geometry`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taupet_bids.core.grids import apply_affine, linear_coordinates, rigid_matrix, sample
from taupet_bids.normalisation import geometry
from taupet_bids.training.heads import Head

MAX_ROTATION_DEG = 35.0
MAX_SHIFT_MM = 50.0
#: Chance of a field of view cut from below (cerebellum) and from above (vertex).
CUT_BELOW_P = 0.3
CUT_ABOVE_P = 0.15
#: Distance of the cut from the intensity centre (mm).
CUT_BELOW_MM = (40.0, 80.0)
CUT_ABOVE_MM = (55.0, 85.0)
#: Extra white noise after normalisation (SD, relative to the 99.5th percentile).
EXTRA_NOISE_SD = (0.0, 0.05)


@dataclass(frozen=True)
class Example:
    """Network input on the canvas (1, 48, 48, 48) and canvas coordinates of template voxels."""

    canvas: np.ndarray
    targets: np.ndarray


def _strided_world_z(volume: np.ndarray, affine: np.ndarray, stride: int) -> np.ndarray:
    shape = volume[::stride, ::stride, ::stride].shape
    scaled = affine.copy()
    scaled[:3, :3] *= stride
    return linear_coordinates(scaled, shape)[2]


def make_example(head: Head, rng: np.random.Generator | None = None) -> Example:
    """The network's view of ``head``; with ``rng``, randomly moved, cut and noised."""
    affine, targets, cut = head.affine, head.targets, (-np.inf, np.inf)
    if rng is not None:
        move = rigid_matrix(
            rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, 3),
            rng.uniform(-MAX_SHIFT_MM, MAX_SHIFT_MM, 3),
        )
        affine = move @ affine
        targets = apply_affine(move, targets)
        centre_z = geometry.intensity_centre(head.volume, affine)[2]
        low = centre_z - rng.uniform(*CUT_BELOW_MM) if rng.random() < CUT_BELOW_P else -np.inf
        high = centre_z + rng.uniform(*CUT_ABOVE_MM) if rng.random() < CUT_ABOVE_P else np.inf
        cut = (low, high)
    keep = None
    if np.isfinite(cut).any():
        z = _strided_world_z(head.volume, affine, 2)
        keep = (z >= cut[0]) & (z <= cut[1])
    centre = geometry.intensity_centre(head.volume, affine, keep=keep)
    points = geometry.canvas_points() + centre.astype(np.float32)[:, None, None, None]
    canvas = sample(head.volume, affine, points)
    if keep is not None:
        canvas[(points[2] < cut[0]) | (points[2] > cut[1])] = 0.0
    if rng is not None:
        canvas *= np.float32(rng.uniform(0.2, 5.0))
    canvas = geometry.normalise_intensity(np.clip(canvas, 0.0, None))
    if rng is not None:
        sd = rng.uniform(*EXTRA_NOISE_SD)
        canvas += (sd * rng.standard_normal(canvas.shape)).astype(np.float32) * (canvas > 0)
    return Example(canvas[None], (targets - centre[:, None, None, None]).astype(np.float32))
