"""Voxel grids and world sampling, shared by the MR-less normalisation and the simulator.

All coordinates are world millimetres in RAS+ (NIfTI convention). A grid is a shape plus a
voxel-to-world affine; images are sampled at world points with trilinear interpolation, so the
network's inference, its training examples and the simulator's truth all resample the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Unit vector (RAS+) of each orientation letter: the direction in which a voxel axis grows.
_DIRECTIONS = {
    "R": (1.0, 0.0, 0.0),
    "L": (-1.0, 0.0, 0.0),
    "A": (0.0, 1.0, 0.0),
    "P": (0.0, -1.0, 0.0),
    "S": (0.0, 0.0, 1.0),
    "I": (0.0, 0.0, -1.0),
}


@dataclass(frozen=True)
class Grid:
    """A voxel grid: shape and voxel-to-world affine (4x4)."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    def to_json(self) -> dict:
        """JSON-ready description (shape, affine, orientation code)."""
        return {
            "shape": [int(n) for n in self.shape],
            "affine": np.round(self.affine, 6).tolist(),
            "orientation": orientation_code(self.affine),
        }

    def world_coordinates(self) -> np.ndarray:
        """World coordinates (3, X, Y, Z) of every voxel centre, float32."""
        return linear_coordinates(self.affine, self.shape)


def orientation_code(affine: np.ndarray) -> str:
    """Three-letter orientation (e.g. ``"LAS"``) of a voxel-to-world affine."""
    letters = []
    for axis in range(3):
        column = affine[:3, axis]
        k = int(np.argmax(np.abs(column)))
        letters.append("RAS"[k] if column[k] > 0 else "LPI"[k])
    return "".join(letters)


def oriented_grid(
    orientation: str,
    voxel_mm: tuple[float, float, float],
    shape: tuple[int, int, int],
    centre: np.ndarray,
) -> Grid:
    """A grid whose axes follow ``orientation`` (e.g. ``"PIR"``), centred on a world point."""
    if sorted(orientation.replace("L", "R").replace("P", "A").replace("I", "S")) != list("ARS"):
        raise ValueError(f"orientation {orientation!r} must name each of the three axes once")
    affine = np.eye(4)
    for axis, letter in enumerate(orientation):
        affine[:3, axis] = np.array(_DIRECTIONS[letter]) * voxel_mm[axis]
    middle = (np.array(shape, dtype=float) - 1) / 2
    affine[:3, 3] = np.asarray(centre, dtype=float) - affine[:3, :3] @ middle
    return Grid(tuple(int(n) for n in shape), affine)


def linear_coordinates(matrix: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """``matrix @ [i, j, k, 1]`` for every voxel index of ``shape``, as (3, X, Y, Z) float32.

    Built by broadcasting three 1-D ramps, so no index mesh is ever materialised.
    """
    ramps = [np.arange(n, dtype=np.float32) for n in shape]
    out = np.empty((3, *shape), dtype=np.float32)
    for row in range(3):
        out[row] = np.float32(matrix[row, 3])
        out[row] += np.float32(matrix[row, 0]) * ramps[0][:, None, None]
        out[row] += np.float32(matrix[row, 1]) * ramps[1][None, :, None]
        out[row] += np.float32(matrix[row, 2]) * ramps[2][None, None, :]
    return out


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine to points stored as (3, ...), float32 in and out."""
    flat = points.reshape(3, -1)
    out = matrix[:3, :3].astype(np.float32) @ flat + matrix[:3, 3:4].astype(np.float32)
    return out.reshape(points.shape)


def sample(
    volume: np.ndarray,
    affine: np.ndarray,
    points: np.ndarray,
    order: int = 1,
    cval: float = 0.0,
) -> np.ndarray:
    """Values of ``volume`` (voxel-to-world ``affine``) at world ``points`` (3, ...).

    Trilinear by default; points outside the volume read ``cval``.
    """
    voxels = apply_affine(np.linalg.inv(affine), points)
    return ndimage.map_coordinates(
        volume, voxels, order=order, mode="constant", cval=cval, prefilter=False, output=np.float32
    )


def rigid_matrix(rotation_deg: np.ndarray, translation_mm: np.ndarray) -> np.ndarray:
    """4x4 rigid transform: rotate about x, then y, then z (degrees), then shift (mm)."""
    ax, ay, az = np.deg2rad(np.asarray(rotation_deg, dtype=float))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    matrix = np.eye(4)
    matrix[:3, :3] = rz @ ry @ rx
    matrix[:3, 3] = translation_mm
    return matrix
