"""Individual anatomy: where each point of a subject's head sits in the template.

A subject is the template, warped. The map from the subject's scanner world ``y`` (the T1w
world, mm) to template world is ``T(y) = z + u(z)`` with ``z = A @ y``: ``A`` is an affine
(head size and shape, then the head's position in the scanner for that session) and ``u`` is a
smooth displacement field stored on a coarse grid in template world and read trilinearly.
Images of the subject are made by pulling template images through ``T``; the truth pulls
subject images back through ``T^-1``, which is solved by fixed-point iteration.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from taupet_bids import atlases
from taupet_bids.core.grids import Grid, apply_affine, oriented_grid, rigid_matrix
from taupet_bids.simulate.template import TemplateData

#: Spacing of the displacement field's control grid (mm): coarse, because anatomy varies smoothly.
FIELD_SPACING_MM = 8.0
#: Smoothness of the random displacement (Gaussian sigma, in control-grid units = 16 mm).
FIELD_SMOOTHING = 2.0
#: RMS displacement range (mm) and the largest allowed displacement gradient (keeps T invertible).
FIELD_RMS_MM = (1.5, 3.0)
MAX_GRADIENT = 0.3
#: Head-size scale range (subject / template) and per-axis jitter.
SCALE_RANGE = (0.92, 1.08)
AXIS_JITTER = 0.03
#: Head pose in the scanner per session: rotation SD (degrees, pitch/roll/yaw) and position (mm).
POSE_ROTATION_SD_DEG = (6.0, 3.0, 3.0)
POSE_CENTRE_MM = (0.0, 15.0, 25.0)
POSE_SHIFT_SD_MM = 8.0
#: Fixed-point iterations used to invert the displacement.
INVERSE_ITERATIONS = 8
#: Atrophy (realistic phantoms): at severity 1 the ventricles expand and the hippocampi shrink by
#: a radial displacement around each one's centre with this gradient at the centre (about +30 %
#: ventricular radius, -15 % hippocampal radius), fading with a Gaussian of the given width (mm).
ATROPHY = {"lateral-ventricle": (-0.25, 18.0), "hippocampus": (0.15, 8.0)}
#: Severity by Braak stage: stage / 6 plus individual variation (SD).
ATROPHY_SD = 0.15


@dataclass(frozen=True)
class Anatomy:
    """Subject-to-template map for one session (see the module docstring for ``T``)."""

    affine: np.ndarray
    field: np.ndarray
    field_grid: Grid
    shape_affine: np.ndarray

    def displacement(self, template_points: np.ndarray) -> np.ndarray:
        """``u(z)`` (3, ...) at template-world points (3, ...), trilinear, float32."""
        voxels = apply_affine(np.linalg.inv(self.field_grid.affine), template_points)
        out = np.empty_like(template_points, dtype=np.float32)
        for k in range(3):
            out[k] = ndimage.map_coordinates(
                self.field[k], voxels, order=1, mode="nearest", prefilter=False, output=np.float32
            )
        return out

    def to_template(self, points: np.ndarray) -> np.ndarray:
        """``T(y)``: template-world coordinates of subject-world points (3, ...)."""
        z = apply_affine(self.affine, points)
        z += self.displacement(z)
        return z

    def from_template(self, points: np.ndarray) -> np.ndarray:
        """``T^-1(x)``: subject-world coordinates of template-world points (3, ...)."""
        z = points.astype(np.float32, copy=True)
        for _ in range(INVERSE_ITERATIONS):
            z = points - self.displacement(z)
        return apply_affine(np.linalg.inv(self.affine), z)

    def with_pose(self, pose: np.ndarray) -> Anatomy:
        """The same head placed in the scanner by ``pose`` (scanner world -> head frame)."""
        return replace(self, affine=self.shape_affine @ pose)

    def head_centre(self, template: TemplateData) -> np.ndarray:
        """Approximate subject-world position of the template head centre (for field of view)."""
        centre = np.append(template.head_centre, 1.0)
        return (np.linalg.inv(self.affine) @ centre)[:3]


def _field_grid(template: TemplateData) -> Grid:
    """Control grid covering the 1 mm template field of view with two points of margin."""
    grid = template.grid_1mm
    corners = np.array([[0, 0, 0, 1], [*[n - 1 for n in grid.shape], 1]], dtype=float).T
    lo, hi = np.sort((grid.affine @ corners)[:3], axis=1).T
    shape = tuple(
        int(np.ceil((h - low) / FIELD_SPACING_MM)) + 5 for low, h in zip(lo, hi, strict=True)
    )
    return oriented_grid("RAS", (FIELD_SPACING_MM,) * 3, shape, (lo + hi) / 2)


def random_field(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    """A smooth random displacement field (3, X, Y, Z) in mm with bounded gradient."""
    field = rng.standard_normal((3, *grid.shape)).astype(np.float32)
    for k in range(3):
        field[k] = ndimage.gaussian_filter(field[k], FIELD_SMOOTHING, mode="nearest")
    field *= rng.uniform(*FIELD_RMS_MM) / float(np.sqrt(np.mean(field**2)))
    gradient = np.stack([np.stack(np.gradient(f, FIELD_SPACING_MM)) for f in field])
    largest = float(np.sqrt((gradient**2).sum(axis=(0, 1))).max())
    if largest > MAX_GRADIENT:
        field *= MAX_GRADIENT / largest
    return field


def random_pose(rng: np.random.Generator) -> np.ndarray:
    """Scanner world -> head frame for one visit: the head's tilt and position in the scanner."""
    rotation = rng.normal(0.0, POSE_ROTATION_SD_DEG)
    position = np.asarray(POSE_CENTRE_MM) + rng.normal(0.0, POSE_SHIFT_SD_MM, 3)
    return np.linalg.inv(rigid_matrix(rotation, position))


def atrophy_field(
    template: TemplateData, grid: Grid, severity: float | dict[str, float]
) -> np.ndarray:
    """Displacement (3, X, Y, Z) in mm that enlarges the ventricles and shrinks the hippocampi.

    ``T`` maps subject to source anatomy, so a larger subject ventricle means points are pulled
    towards the ventricle's centre (negative strength) and a smaller hippocampus pushes them out.
    ``severity`` is one level for both, or one per region of :data:`ATROPHY`.
    """
    points = grid.world_coordinates()
    field = np.zeros((3, *grid.shape), np.float32)
    voxel_to_world = template.grid_2mm.affine
    for region, (strength, width) in ATROPHY.items():
        level = severity[region] if isinstance(severity, dict) else severity
        for index in atlases.dk_indices([region]):
            voxels = np.argwhere(template.dk == index)
            if not len(voxels):
                continue
            centre = apply_affine(voxel_to_world, voxels.mean(axis=0).reshape(3, 1))[:, 0]
            offset = points - centre.reshape(3, 1, 1, 1)
            weight = np.exp(-(offset**2).sum(axis=0) / (2 * width**2))
            field += (strength * level * offset * weight).astype(np.float32)
    return field


def atrophy_severity(rng: np.random.Generator, stage: int) -> float:
    """How far atrophy has gone (0-1.2) for a Braak stage, with individual variation."""
    return float(np.clip(stage / 6 + rng.normal(0.0, ATROPHY_SD), 0.0, 1.2))


def random_anatomy(
    rng: np.random.Generator, template: TemplateData, severity: float | None = None
) -> Anatomy:
    """One subject's anatomy (size, shape, deformation), placed by a first random pose.

    With ``severity`` the deformation also carries atrophy (:func:`atrophy_field`).
    """
    scale = rng.uniform(*SCALE_RANGE) * (1 + rng.uniform(-AXIS_JITTER, AXIS_JITTER, 3))
    shape_affine = np.eye(4)
    shape_affine[:3, :3] = np.diag(1.0 / scale)
    shape_affine[:3, 3] = template.head_centre
    grid = _field_grid(template)
    field = random_field(rng, grid)
    if severity is not None:
        field += atrophy_field(template, grid, severity)
    anatomy = Anatomy(np.eye(4), field, grid, shape_affine)
    return anatomy.with_pose(random_pose(rng))


def with_atrophy(
    anatomy: Anatomy, template: TemplateData, severity: float | dict[str, float]
) -> Anatomy:
    """``anatomy`` with atrophy added to its deformation (same float32 sum as drawing it so)."""
    field = anatomy.field.copy()
    field += atrophy_field(template, anatomy.field_grid, severity)
    return replace(anatomy, field=field)
