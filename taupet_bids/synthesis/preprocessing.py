"""The synthesis networks' view of an image: template space, 2 mm -> a padded 4 mm array.

Shared by inference, training and the benchmark, so a network always sees one preprocessing:

1. inputs and targets are on the template's 2 mm grid (MNI152NLin6Asym, 91 x 109 x 91); an
   image on any other grid is refused, not resampled (the pipeline resamples the T1w with its
   own T1w-to-template registration before the network);
2. voxels outside the template's brain mask are set to 0: the skull and neck differ most
   between people and scanners, and tau is read in the brain;
3. intensities: a T1w has arbitrary units, so it is divided by the median of its brain voxels
   (grey and white matter then sit near 1) and clipped to [0, :data:`T1W_MAX`]; PET targets are
   SUVR, clipped to [0, :data:`SUVR_MAX`] and not rescaled, so the network predicts SUVR;
4. 2 x 2 x 2 blocks are averaged into 4 mm voxels, and the 46 x 55 x 46 grid is padded with
   zeros to :data:`INPUT_SHAPE` (48 x 56 x 48) so that three 2x downsamplings of a U-Net divide
   it exactly. :func:`to_template_grid` brings a 4 mm prediction back to 2 mm by trilinear
   interpolation (each 4 mm voxel centre lies midway between two 2 mm centres).
"""

from __future__ import annotations

import os
from functools import cache

import nibabel as nib
import numpy as np
import torch
from torch.nn import functional

from taupet_bids import templates
from taupet_bids.core.images import GRID_ATOL_MM, load_3d
from taupet_bids.errors import InputError

#: Normalised T1w is clipped to [0, T1W_MAX] (brain median = 1).
T1W_MAX = 3.0
#: Target SUVR is clipped to [0, SUVR_MAX].
SUVR_MAX = 4.0
#: Template voxels averaged into one network voxel along each axis (2 mm -> 4 mm).
POOL = 2
#: Shape of the app's template-space images (MNI152NLin6Asym, 2 mm).
TEMPLATE_SHAPE = (91, 109, 91)
#: The 4 mm grid before padding, and the padded network grid (divisible by 8).
POOLED_SHAPE = tuple(-(-n // POOL) for n in TEMPLATE_SHAPE)
INPUT_SHAPE = (48, 56, 48)


def template_affine() -> np.ndarray:
    """Voxel-to-world affine of the template's 2 mm grid."""
    return nib.load(templates.t1w_path(templates.WORKING_RESOLUTION)).affine


@cache
def brain_mask() -> np.ndarray:
    """The template's brain mask on its 2 mm grid (boolean)."""
    return np.asarray(nib.load(templates.brain_mask_path()).dataobj) > 0


def check_template_grid(path: str | os.PathLike, what: str) -> None:
    """Refuse an image that is not on the template's 2 mm grid, saying what is expected."""
    image = nib.load(path)
    shape = tuple(image.shape[:3])
    if shape != TEMPLATE_SHAPE or not np.allclose(
        image.affine, template_affine(), atol=GRID_ATOL_MM
    ):
        raise InputError(
            path,
            f"not on the {templates.TEMPLATE} 2 mm grid (shape {shape}, expected {TEMPLATE_SHAPE})",
            f"give a {what} resampled to the template's 2 mm grid",
        )


def normalise_t1w(t1w: np.ndarray) -> np.ndarray:
    """Template-grid T1w -> brain-masked, divided by its brain median, clipped (float32)."""
    clean = np.nan_to_num(np.asarray(t1w, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    brain = brain_mask()
    inside = clean[brain & (clean > 0)]
    if inside.size == 0:
        raise ValueError("the T1w has no positive voxel inside the template's brain mask")
    scaled = np.where(brain, clean / np.median(inside), 0.0)
    return np.clip(scaled, 0.0, T1W_MAX).astype(np.float32)


def clean_suvr(suvr: np.ndarray) -> np.ndarray:
    """Template-grid SUVR -> brain-masked, clipped to [0, SUVR_MAX] (float32)."""
    clean = np.nan_to_num(np.asarray(suvr, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.where(brain_mask(), clean, 0.0), 0.0, SUVR_MAX).astype(np.float32)


def downsample(volume: np.ndarray) -> np.ndarray:
    """A template-grid array (91, 109, 91) -> 4 mm block means, zero-padded to INPUT_SHAPE."""
    if volume.shape != TEMPLATE_SHAPE:
        raise ValueError(f"expected an array of shape {TEMPLATE_SHAPE}, got {volume.shape}")
    padded = np.zeros([n * POOL for n in INPUT_SHAPE], dtype=np.float32)
    padded[: volume.shape[0], : volume.shape[1], : volume.shape[2]] = volume
    blocks = padded.reshape(INPUT_SHAPE[0], POOL, INPUT_SHAPE[1], POOL, INPUT_SHAPE[2], POOL)
    return blocks.mean(axis=(1, 3, 5), dtype=np.float32)


def network_mask() -> np.ndarray:
    """Where the loss is taken on the 4 mm grid: 4 mm voxels at least half inside the brain."""
    return downsample(brain_mask().astype(np.float32)) >= 0.5


def to_template_grid(volume: np.ndarray) -> np.ndarray:
    """A 4 mm prediction (INPUT_SHAPE) on the 2 mm template grid: trilinear, brain-masked."""
    if volume.shape != INPUT_SHAPE:
        raise ValueError(f"expected an array of shape {INPUT_SHAPE}, got {volume.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None, None]
    fine = functional.interpolate(tensor, scale_factor=POOL, mode="trilinear", align_corners=False)
    cropped = fine[0, 0, : TEMPLATE_SHAPE[0], : TEMPLATE_SHAPE[1], : TEMPLATE_SHAPE[2]].numpy()
    return np.where(brain_mask(), np.clip(cropped, 0.0, SUVR_MAX), 0.0).astype(np.float32)


def read_t1w(path: str | os.PathLike) -> np.ndarray:
    """The network input of one template-space T1w file (checked, normalised, 4 mm)."""
    if not path:
        raise ValueError("no T1w image given (MONAI runner: --input_file T1W.nii.gz)")
    check_template_grid(path, "T1w (e.g. a participant run's T1w warped with its transforms)")
    return downsample(normalise_t1w(load_3d(path, np.float32)))


def read_suvr(path: str | os.PathLike) -> np.ndarray:
    """The training target of one template-space SUVR file (checked, clipped, 4 mm)."""
    check_template_grid(path, "*_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz")
    return downsample(clean_suvr(load_3d(path, np.float32)))
