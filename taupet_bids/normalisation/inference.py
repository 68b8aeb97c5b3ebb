"""Apply the trained normaliser to one PET and export the result as an ANTs displacement field.

The field lets the rest of the pipeline treat the network exactly like a registration: the same
``ApplyTransforms`` node resamples the PET into template space for both the MR-based and the
MR-less paths, so SUVR, tables, PVC and reports do not know which one ran.

The bundle's ``configs/inference.json`` names these functions: :func:`prepare_file` is its
``preprocessing``, :func:`infer` runs its ``network`` with its ``inferer``, :func:`save_field` is
its ``postprocessing``. The pipeline calls :func:`normalise` and :func:`write_itk_displacement`,
which are the same code, so MONAI's runner and the pipeline write the same field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.inferers import Inferer
from nitransforms.io.itk import ITKDisplacementsField
from scipy import ndimage

from taupet_bids import templates
from taupet_bids.core.grids import apply_affine, linear_coordinates
from taupet_bids.core.images import load_3d
from taupet_bids.normalisation import geometry
from taupet_bids.normalisation.bundle import Normaliser


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


@dataclass(frozen=True)
class Prepared:
    """The network's input (1, 1, 48, 48, 48) and the PET-world centre of its canvas (mm)."""

    canvas: torch.Tensor
    centre: np.ndarray


def read_pet(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A 3-D PET (a 4-D file must hold one frame) as float32, and its affine."""
    if not path:
        raise ValueError("no PET image given (MONAI runner: --input_file PET.nii.gz)")
    return load_3d(path, np.float32), nib.load(path).affine


def prepare(volume: np.ndarray, affine: np.ndarray) -> Prepared:
    """A native 3-D PET (any units, voxel size, orientation) on the network's canvas."""
    volume = np.nan_to_num(np.asarray(volume, dtype=np.float32))
    centre = geometry.intensity_centre(volume, affine)
    canvas = torch.from_numpy(geometry.to_canvas(volume, affine, centre))[None, None]
    return Prepared(canvas, centre)


def prepare_file(path: str | Path) -> Prepared:
    """The bundle's preprocessing: a PET NIfTI file on the network's canvas."""
    return prepare(*read_pet(path))


def infer(network: torch.nn.Module, inferer: Inferer, prepared: Prepared) -> Normalisation:
    """Run both stages (``NormaliserNet``) on a prepared PET."""
    with torch.no_grad():
        matrix, displacement = inferer(prepared.canvas, network)
    return Normalisation(
        matrix[0].numpy().astype(np.float64), prepared.centre, displacement[0].numpy()
    )


def normalise(volume: np.ndarray, affine: np.ndarray, normaliser: Normaliser) -> Normalisation:
    """Run both stages on a native 3-D PET (any units, voxel size, orientation)."""
    return infer(normaliser.network, normaliser.inferer, prepare(volume, affine))


def write_itk_displacement(
    normalisation: Normalisation, reference: nib.Nifti1Image, out_file: str
) -> str:
    """An ITK/ANTs displacement field on ``reference``'s grid mapping template to PET points."""
    points = linear_coordinates(reference.affine, reference.shape[:3])
    vectors = normalisation.pet_points(points) - points
    field = nib.Nifti1Image(np.moveaxis(vectors, 0, -1).astype(np.float32), reference.affine)
    ITKDisplacementsField.to_image(field).to_filename(out_file)
    return out_file


def field_path(input_file: str | Path, output_dir: str | Path) -> str:
    """Where the bundle's runner writes the field: the input's name, BIDS-style, in output_dir."""
    name = Path(input_file).name.removesuffix(".gz").removesuffix(".nii").removesuffix("_pet")
    out = f"{name}_from-pet_to-{templates.TEMPLATE}_mode-image_xfm.nii.gz"
    return str(Path(output_dir) / out)


def save_field(
    normalisation: Normalisation, output_file: str | Path, reference_image: str | None = None
) -> str:
    """The bundle's postprocessing: the ITK field on ``reference_image`` (default: template)."""
    reference = nib.load(reference_image or templates.t1w_path(2))
    Path(output_file).parent.mkdir(parents=True, exist_ok=True)
    return write_itk_displacement(normalisation, reference, str(output_file))
