"""Refine the network's normalisation with a short antspyx affine registration (``network+ants``).

The network's displacement field brings the PET close to the template; a short affine
registration of the tau PET template (fixed) to the PET resampled through that field (moving)
then corrects what is left: a few iterations at coarse levels (8 and 4 mm), Mattes mutual
information (blind to Bq/mL against SUVR), started from the identity, not from the images'
centres of mass, which a PET with neck and shoulders would pull away from the brain.

The result is one ITK displacement field on the template 2 mm grid, the composition of the
refining affine ``R`` (template point to network-normalised point) with the network's field
``f`` (that point to the PET): ``x -> f(R(x))``. It is written like the network's own field, so
the rest of the pipeline does not know refinement ran. How far ``R`` moves the template brain
(mean and largest distance, mm) is the network-vs-refined disagreement the QC reports.

Needs antspyx and nitransforms only: the node that runs it never imports PyTorch.
"""

from __future__ import annotations

import time

import ants
import nibabel as nib
import numpy as np
from nitransforms.io.itk import ITKDisplacementsField
from scipy import ndimage

from taupet_bids import templates
from taupet_bids.core.grids import apply_affine, linear_coordinates
from taupet_bids.core.registration import apply_transforms, register, set_threads
from taupet_bids.errors import InputError
from taupet_bids.normalisation.ants_baseline import prepare_pet
from taupet_bids.normalisation.pet_template import pet_template_path

#: The short affine stage: iterations per level, shrink factors (x 2 mm) and smoothing (voxels).
REFINE_ITERATIONS = (100, 50)
REFINE_SHRINK_FACTORS = (4, 2)
REFINE_SMOOTHING_SIGMAS = (2, 1)
_LPS = np.array([-1.0, -1.0, 1.0])


def identity_transform(out_file: str) -> str:
    """An identity affine (ITK .mat): the refinement's start instead of the centres of mass."""
    ants.write_transform(
        ants.create_ants_transform(transform_type="AffineTransform", dimension=3), out_file
    )
    return out_file


def affine_points(mat_file: str, points: np.ndarray) -> np.ndarray:
    """Apply an ITK affine (.mat, LPS) to RAS world points (3, ...); returns RAS points."""
    transform = ants.read_transform(mat_file)
    params = np.asarray(transform.parameters, dtype=np.float64)
    centre = np.asarray(transform.fixed_parameters, dtype=np.float64)
    matrix, shift = params[:9].reshape(3, 3), params[9:12]
    lps = points.reshape(3, -1).astype(np.float64) * _LPS[:, None]
    moved = matrix @ (lps - centre[:, None]) + (centre + shift)[:, None]
    return (moved * _LPS[:, None]).reshape(points.shape)


def affine_shift_mm(mat_file: str, mask: np.ndarray, affine: np.ndarray) -> tuple[float, float]:
    """(mean, largest) distance (mm) an affine moves a mask's points (voxel grid ``affine``)."""
    points = apply_affine(affine, np.argwhere(mask).T.astype(np.float64))
    distance = np.linalg.norm(affine_points(mat_file, points) - points, axis=0)
    return float(distance.mean()), float(distance.max())


def compose_with_field(mat_file: str, field_file: str, out_file: str) -> str:
    """One ITK displacement field ``x -> f(R(x))`` on the field's grid (``R``: ``mat_file``)."""
    image = nib.load(field_file)
    field = np.asarray(ITKDisplacementsField.from_image(image).dataobj, dtype=np.float64)
    if field.ndim != 4 or field.shape[-1] != 3:
        raise InputError(field_file, f"not a 3-D displacement field (shape {field.shape})")
    points = linear_coordinates(image.affine, field.shape[:3]).astype(np.float64)
    refined = affine_points(mat_file, points)
    voxels = apply_affine(np.linalg.inv(image.affine), refined)
    displacement = np.stack(
        [
            ndimage.map_coordinates(field[..., axis], voxels, order=1, mode="nearest")
            for axis in range(3)
        ]
    )
    vectors = refined + displacement - points
    out = nib.Nifti1Image(np.moveaxis(vectors, 0, -1).astype(np.float32), image.affine)
    ITKDisplacementsField.to_image(out).to_filename(out_file)
    return out_file


def short_affine_to_template(
    moving_file: str,
    out_prefix: str,
    template_file: str | None = None,
    seed: int | None = 42,
    moving_mask: str | None = None,
) -> tuple[str, float, float]:
    """The short affine of the tau PET template (fixed) to a template-space image (moving),
    started from the identity: its .mat and how far it moves the template brain (mean, largest
    distance, mm). The refinement and the QC's brain check both run it."""
    result = register(
        str(template_file or pet_template_path()),
        moving_file,
        f"{out_prefix}refine_",
        "Affine",
        moving_mask=moving_mask,
        initial_transform=identity_transform(f"{out_prefix}identity.mat"),
        seed=seed,
        aff_iterations=REFINE_ITERATIONS,
        aff_shrink_factors=REFINE_SHRINK_FACTORS,
        aff_smoothing_sigmas=REFINE_SMOOTHING_SIGMAS,
    )
    affine_file = result["forward_transforms"][0]
    brain = nib.load(templates.brain_mask_path(templates.WORKING_RESOLUTION))
    mean_mm, max_mm = affine_shift_mm(affine_file, np.asarray(brain.dataobj) > 0, brain.affine)
    return affine_file, mean_mm, max_mm


def field_of_view_mask(image_file: str, out_file: str) -> str:
    """Where a template-space PET has signal: the part of the template its field of view covers.

    The refinement's metric is restricted to it. Without it the empty planes beyond an axial
    field of view that cuts the cerebellum are matched to the template's cerebellum, and the
    affine stretches the brain into the cut (benchmarks/geometry_qc_methods.py, docs/mrless.md).
    """
    image = nib.load(image_file)
    covered = (np.asarray(image.dataobj) != 0).astype(np.uint8)
    nib.Nifti1Image(covered, image.affine).to_filename(out_file)
    return out_file


def refinement_affine(
    network_std: str, out_prefix: str, template_file: str | None = None, seed: int | None = 42
) -> tuple[str, float, float]:
    """The refinement's short affine of a network-normalised PET, within its field of view
    (what :func:`short_affine_to_template` returns)."""
    mask = field_of_view_mask(network_std, f"{out_prefix}fov_mask.nii.gz")
    return short_affine_to_template(network_std, out_prefix, template_file, seed, moving_mask=mask)


def refine_normalisation(
    in_file: str,
    network_field: str,
    out_prefix: str,
    template_file: str | None = None,
    seed: int | None = 42,
    num_threads: int = 1,
) -> dict:
    """Refine the network's field with a short affine registration to the tau PET template.

    Returns ``transforms`` (one composed displacement field, ANTs order), ``affine`` (the
    refining .mat), ``shift_mean_mm`` / ``shift_max_mm`` (how far the refinement moved the
    template brain: the network-vs-refined disagreement) and ``seconds``.
    """
    set_threads(num_threads)
    start = time.perf_counter()
    reference = str(templates.t1w_path(templates.WORKING_RESOLUTION))
    moving = prepare_pet(in_file, f"{out_prefix}pet.nii.gz")
    network_std = apply_transforms(
        moving, reference, [network_field], f"{out_prefix}network_std.nii.gz"
    )
    if not np.asarray(nib.load(network_std).dataobj).any():
        raise InputError(in_file, "the network's normalisation put no PET signal on the template")
    refine_affine, mean_mm, max_mm = refinement_affine(network_std, out_prefix, template_file, seed)
    composed = compose_with_field(refine_affine, network_field, f"{out_prefix}field.nii.gz")
    return {
        "transforms": [composed],
        "affine": refine_affine,
        "shift_mean_mm": mean_mm,
        "shift_max_mm": max_mm,
        "seconds": time.perf_counter() - start,
    }
