"""The classifier's view of a scan: template-space SUVR at 2 mm -> one 4 mm array.

Shared by inference and training, so the network always sees the same preprocessing:

1. the input must be the app's ``*_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz``, i.e. on
   the template's 2 mm grid (91 x 109 x 91); anything else is refused rather than resampled,
   because a classifier of voxel patterns is only meaningful in one space;
2. non-finite values become 0 (outside the field of view), then SUVR is clipped to
   [0, :data:`SUVR_MAX`]: values above it are rare hot spots (off-target binding, noise) that
   would otherwise dominate the first convolutions;
3. everything outside the template's brain mask becomes 0: scalp, skull, meninges and sinus
   uptake (off-target binding that differs by tracer and scanner) must not decide AD vs CN.
   Version 0.1.0 saw the whole field of view and called every brain-masked scan AD,
   CN included (docs/classification.md);
4. 2 x 2 x 2 blocks are averaged into 4 mm voxels (46 x 55 x 46; the grid is padded with zeros
   by one voxel at the far end of each axis). Averaging, not interpolation: each 4 mm voxel is
   exactly 8 template voxels, so a 4 mm map goes back to 2 mm by repeating each voxel
   (:func:`to_template_grid`) and meets the 2 mm atlases without resampling.

Values stay in SUVR units (no rescaling): the occluder of the occlusion-sensitivity map is then
SUVR 1.0, reference-level uptake, in the network's own input units.
"""

from __future__ import annotations

import os
from functools import cache

import nibabel as nib
import numpy as np

from taupet_bids import templates
from taupet_bids.core.images import GRID_ATOL_MM, load_3d
from taupet_bids.errors import InputError

#: Template-space SUVR is clipped to [0, SUVR_MAX] before the network.
SUVR_MAX = 4.0
#: Voxels of the template grid averaged into one network voxel along each axis (2 mm -> 4 mm).
POOL = 2
#: Shape of the app's template-space images (MNI152NLin6Asym, 2 mm).
TEMPLATE_SHAPE = (91, 109, 91)
#: Shape of the network's input grid.
INPUT_SHAPE = tuple(-(-n // POOL) for n in TEMPLATE_SHAPE)


def template_affine() -> np.ndarray:
    """Voxel-to-world affine of the template's 2 mm grid."""
    return nib.load(templates.t1w_path(templates.WORKING_RESOLUTION)).affine


def check_template_grid(path: str | os.PathLike) -> None:
    """Refuse an image that is not on the template's 2 mm grid, saying what is expected."""
    image = nib.load(path)
    shape = tuple(image.shape[:3])
    if shape != TEMPLATE_SHAPE or not np.allclose(
        image.affine, template_affine(), atol=GRID_ATOL_MM
    ):
        raise InputError(
            path,
            f"not on the {templates.TEMPLATE} 2 mm grid (shape {shape}, expected {TEMPLATE_SHAPE})",
            "give a *_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz of a participant-level run",
        )


@cache
def template_brain() -> np.ndarray:
    """The template's brain mask on its 2 mm grid (what the network may look at)."""
    return np.asarray(nib.load(templates.brain_mask_path()).dataobj) > 0


def network_input(suvr: np.ndarray) -> np.ndarray:
    """What the network sees of a template-grid SUVR array: the brain only, clipped, 4 mm."""
    if suvr.shape != TEMPLATE_SHAPE:
        raise ValueError(f"expected an array of shape {TEMPLATE_SHAPE}, got {suvr.shape}")
    return downsample(np.where(template_brain(), suvr, 0.0))


def downsample(suvr: np.ndarray) -> np.ndarray:
    """Template-grid SUVR (91, 109, 91) -> clipped 4 mm array (46, 55, 46), float32."""
    if suvr.shape != TEMPLATE_SHAPE:
        raise ValueError(f"expected an array of shape {TEMPLATE_SHAPE}, got {suvr.shape}")
    clean = np.clip(np.nan_to_num(suvr, nan=0.0, posinf=0.0, neginf=0.0), 0.0, SUVR_MAX)
    padded = np.zeros([n * POOL for n in INPUT_SHAPE], dtype=np.float32)
    padded[: suvr.shape[0], : suvr.shape[1], : suvr.shape[2]] = clean
    blocks = padded.reshape(INPUT_SHAPE[0], POOL, INPUT_SHAPE[1], POOL, INPUT_SHAPE[2], POOL)
    return blocks.mean(axis=(1, 3, 5), dtype=np.float32)


def to_template_grid(volume: np.ndarray) -> np.ndarray:
    """A 4 mm array (46, 55, 46) back on the 2 mm template grid (each voxel repeated 2x2x2)."""
    if volume.shape != INPUT_SHAPE:
        raise ValueError(f"expected an array of shape {INPUT_SHAPE}, got {volume.shape}")
    repeated = volume.repeat(POOL, 0).repeat(POOL, 1).repeat(POOL, 2)
    return repeated[: TEMPLATE_SHAPE[0], : TEMPLATE_SHAPE[1], : TEMPLATE_SHAPE[2]]


def read_suvr(path: str | os.PathLike) -> np.ndarray:
    """The network input of one template-space SUVR file (checked, clipped, 4 mm)."""
    if not path:
        raise ValueError("no SUVR image given (MONAI runner: --input_file SUVR.nii.gz)")
    check_template_grid(path)
    return network_input(load_3d(path, np.float32))
