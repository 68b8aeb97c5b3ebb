"""Apply the trained normaliser to one PET and export the result as an ANTs displacement field.

The field lets the rest of the pipeline treat the network exactly like a registration: the same
``ApplyTransforms`` node resamples the PET into template space for both the MR-based and the
MR-less paths, so SUVR, tables, PVC and reports do not know which one ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
import torch
from nitransforms.io.itk import ITKDisplacementsField
from scipy import ndimage

from taupet_bids.normalisation import geometry
from taupet_bids.normalisation.bundle import Normaliser
from taupet_bids.normalisation.networks import canvas_positions, sample_canvas
from taupet_bids.simulate.grids import apply_affine, linear_coordinates


@dataclass(frozen=True)
class Normalisation:
    """Template -> PET mapping: ``y = A^-1 (x + d(x) - t) + centre`` (mm, RAS)."""

    affine: np.ndarray
    centre: np.ndarray
    displacement: np.ndarray

    def pet_points(self, points: np.ndarray) -> np.ndarray:
        """PET-world positions (3, ...) of template-world points (3, ...)."""
        voxels = apply_affine(np.linalg.inv(geometry.template_affine()), points)
        shift = np.stack(
            [
                ndimage.map_coordinates(d, voxels, order=1, mode="nearest", output=np.float32)
                for d in self.displacement
            ]
        )
        matrix, offset = self.affine[:, :3], self.affine[:, 3]
        moved = (points + shift).reshape(3, -1) - offset[:, None]
        canvas = np.linalg.solve(matrix, moved).reshape(points.shape)
        return (canvas + self.centre[:, None, None, None]).astype(np.float32)


def normalise(volume: np.ndarray, affine: np.ndarray, normaliser: Normaliser) -> Normalisation:
    """Run both stages on a native 3-D PET (any units, voxel size, orientation)."""
    volume = np.nan_to_num(np.asarray(volume, dtype=np.float32))
    centre = geometry.intensity_centre(volume, affine)
    canvas = torch.from_numpy(geometry.to_canvas(volume, affine, centre))[None, None]
    with torch.no_grad():
        matrix = normaliser.affine_net(canvas)
        points = torch.from_numpy(geometry.template_points())[None]
        on_template = sample_canvas(canvas, canvas_positions(matrix, points))
        displacement = normaliser.deform_net(on_template)
    return Normalisation(matrix[0].numpy().astype(np.float64), centre, displacement[0].numpy())


def write_itk_displacement(
    normalisation: Normalisation, reference: nib.Nifti1Image, out_file: str
) -> str:
    """An ITK/ANTs displacement field on ``reference``'s grid mapping template to PET points."""
    points = linear_coordinates(reference.affine, reference.shape[:3])
    vectors = normalisation.pet_points(points) - points
    field = nib.Nifti1Image(np.moveaxis(vectors, 0, -1).astype(np.float32), reference.affine)
    ITKDisplacementsField.to_image(field).to_filename(out_file)
    return out_file
