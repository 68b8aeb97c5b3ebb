"""Grids shared by training and inference of the MR-less normalisation network.

Two fixed grids, both RAS+ at 4 mm:

- the **canvas**: a 48^3 cube (192 mm) in the PET's own world, centred on the image's intensity
  centre of mass. Every PET, whatever its voxel size, axis order or position, is resampled onto
  it through its header affine, so the network only has to learn the head's pose and shape;
- the **template grid**: 48 x 56 x 48 voxels covering MNI152NLin6Asym's brain, on which the
  deformable stage predicts its displacement field.

A normalisation is a map from template world ``x`` to canvas coordinates ``c`` (PET world minus
the canvas centre): ``c(x) = M^-1 (x + d(x))`` with ``M`` the affine stage (canvas -> template)
and ``d`` the deformable stage's displacement (mm, template world).
"""

from __future__ import annotations

from functools import cache

import nibabel as nib
import numpy as np
from scipy import ndimage

from taupet_bids import templates
from taupet_bids.core.grids import linear_coordinates, oriented_grid, sample

CANVAS_SHAPE = (48, 48, 48)
CANVAS_MM = 4.0
TEMPLATE_SHAPE = (48, 56, 48)
TEMPLATE_MM = 4.0
#: World centre (mm) of the template grid: the middle of MNI152NLin6Asym's 2 mm field of view.
TEMPLATE_CENTRE = (0.0, -18.0, 18.0)
#: Voxels below this fraction of the 99th intensity percentile are ignored for the centre of mass.
CENTRE_THRESHOLD = 0.1
#: Intensity percentile mapped to 1 at the network's input.
SCALE_PERCENTILE = 99.5


def canvas_affine(centre: np.ndarray) -> np.ndarray:
    """Voxel-to-world affine of the canvas centred on ``centre`` (PET world, mm)."""
    return oriented_grid("RAS", (CANVAS_MM,) * 3, CANVAS_SHAPE, np.asarray(centre)).affine


def canvas_points() -> np.ndarray:
    """Canvas coordinates (3, 48, 48, 48) of every canvas voxel, mm from its centre."""
    return linear_coordinates(canvas_affine(np.zeros(3)), CANVAS_SHAPE)


@cache
def template_affine() -> np.ndarray:
    """Voxel-to-world affine of the 4 mm template grid."""
    return oriented_grid(
        "RAS", (TEMPLATE_MM,) * 3, TEMPLATE_SHAPE, np.array(TEMPLATE_CENTRE)
    ).affine


@cache
def template_points() -> np.ndarray:
    """Template-world coordinates (3, 48, 56, 48) of every 4 mm template voxel."""
    return linear_coordinates(template_affine(), TEMPLATE_SHAPE)


@cache
def template_brain_mask() -> np.ndarray:
    """MNI152NLin6Asym brain mask resampled to the 4 mm template grid (bool)."""
    image = nib.load(templates.brain_mask_path(templates.WORKING_RESOLUTION))
    values = sample(np.asarray(image.dataobj, dtype=np.float32), image.affine, template_points())
    return values > 0.5


def intensity_centre(
    volume: np.ndarray, affine: np.ndarray, stride: int = 2, keep: np.ndarray | None = None
) -> np.ndarray:
    """World position (mm) of the centre of mass of the clearly-above-background signal.

    Computed on every ``stride``-th voxel (fast; the error is far below a canvas voxel).
    ``keep`` is an optional boolean volume on the same strided grid (training uses it to mimic a
    cropped field of view).
    """
    coarse = np.asarray(volume[::stride, ::stride, ::stride], dtype=np.float32)
    if keep is not None:
        coarse = np.where(keep, coarse, 0.0)
    positive = coarse[coarse > 0]
    if positive.size == 0:
        raise ValueError("the image has no positive voxels")
    weights = np.where(coarse > CENTRE_THRESHOLD * np.percentile(positive, 99), coarse, 0.0)
    centre_voxel = np.array(ndimage.center_of_mass(weights)) * stride
    return affine[:3, :3] @ centre_voxel + affine[:3, 3]


def normalise_intensity(canvas: np.ndarray) -> np.ndarray:
    """Divide by the :data:`SCALE_PERCENTILE` of the positive voxels: uptake scale drops out."""
    positive = canvas[canvas > 0]
    if positive.size == 0:
        return canvas.astype(np.float32)
    return (canvas / np.float32(np.percentile(positive, SCALE_PERCENTILE))).astype(np.float32)


def to_canvas(volume: np.ndarray, affine: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The PET resampled (trilinear) onto the canvas centred on ``centre``, intensity-normalised."""
    canvas = sample(
        volume, affine, canvas_points() + np.asarray(centre, np.float32)[:, None, None, None]
    )
    return normalise_intensity(np.clip(canvas, 0.0, None))
