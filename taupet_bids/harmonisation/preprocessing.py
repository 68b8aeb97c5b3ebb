"""The harmoniser's view of a scan: template-space SUVR and T1w at 2 mm -> two 4 mm channels.

Shared by inference and training, so the network always sees the same inputs:

1. both images must be on the template's 2 mm grid (91 x 109 x 91), as the app writes them;
   anything else is refused, never resampled;
2. non-finite values become 0; SUVR is clipped to [0, :data:`SUVR_MAX`]; the T1w is divided by
   its :data:`T1W_PERCENTILE` th percentile inside the template brain mask (T1w intensities have
   no unit) and clipped to [0, :data:`T1W_MAX`];
3. 2 x 2 x 2 blocks are averaged into 4 mm voxels (46 x 55 x 46, zero-padded at the far end).

The correction field comes back at 4 mm and is brought to 2 mm by trilinear interpolation
(:func:`field_to_template`), which keeps it smooth; block repetition would put 4 mm steps into
the harmonised image.
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

SUVR_MAX = 4.0
T1W_MAX = 2.0
T1W_PERCENTILE = 99.0
POOL = 2
TEMPLATE_SHAPE = (91, 109, 91)
INPUT_SHAPE = tuple(-(-n // POOL) for n in TEMPLATE_SHAPE)
#: Input channels, in order.
CHANNELS = ("suvr", "t1w")


def template_affine() -> np.ndarray:
    """Voxel-to-world affine of the template's 2 mm grid."""
    return nib.load(templates.t1w_path(templates.WORKING_RESOLUTION)).affine


def check_template_grid(path: str | os.PathLike, what: str) -> None:
    """Refuse an image that is not on the template's 2 mm grid, naming the file."""
    try:
        image = nib.load(path)
        shape = tuple(image.shape[:3])
    except Exception as error:  # nibabel raises many types for a damaged file
        raise InputError(path, f"the {what} cannot be read ({error})") from None
    if shape != TEMPLATE_SHAPE or not np.allclose(
        image.affine, template_affine(), atol=GRID_ATOL_MM
    ):
        raise InputError(
            path,
            f"the {what} is not on the {templates.TEMPLATE} 2 mm grid (shape {shape}, "
            f"expected {TEMPLATE_SHAPE})",
        )


def downsample(volume: np.ndarray) -> np.ndarray:
    """A (91, 109, 91) array -> the 4 mm grid (46, 55, 46) by 2x2x2 block means, float32."""
    if volume.shape != TEMPLATE_SHAPE:
        raise ValueError(f"expected an array of shape {TEMPLATE_SHAPE}, got {volume.shape}")
    padded = np.zeros([n * POOL for n in INPUT_SHAPE], dtype=np.float32)
    padded[: volume.shape[0], : volume.shape[1], : volume.shape[2]] = volume
    blocks = padded.reshape(INPUT_SHAPE[0], POOL, INPUT_SHAPE[1], POOL, INPUT_SHAPE[2], POOL)
    return blocks.mean(axis=(1, 3, 5), dtype=np.float32)


@cache
def brain_mask() -> np.ndarray:
    """The template brain mask on the 2 mm grid (bool)."""
    return np.asarray(nib.load(templates.brain_mask_path()).dataobj) > 0


@cache
def brain_mask_4mm() -> np.ndarray:
    """Where at least half of a 4 mm voxel is template brain (bool): the training loss's mask."""
    return downsample(brain_mask().astype(np.float32)) >= 0.5


def suvr_channel(suvr: np.ndarray) -> np.ndarray:
    """Template-grid SUVR -> clipped 4 mm channel."""
    clean = np.nan_to_num(suvr, nan=0.0, posinf=0.0, neginf=0.0)
    return downsample(np.clip(clean, 0.0, SUVR_MAX))


def t1w_channel(t1w: np.ndarray) -> np.ndarray:
    """Template-grid T1w -> 4 mm channel scaled by its brain percentile, clipped."""
    clean = np.nan_to_num(t1w, nan=0.0, posinf=0.0, neginf=0.0)
    scale = float(np.percentile(clean[brain_mask()], T1W_PERCENTILE))
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError("the T1w is empty inside the template brain mask")
    return downsample(np.clip(clean / scale, 0.0, T1W_MAX))


def template_t1w() -> np.ndarray:
    """The template's own T1w on the 2 mm grid: the anatomy of a scan without a T1w."""
    return load_3d(templates.t1w_path(templates.WORKING_RESOLUTION), np.float32)


def network_input(suvr: np.ndarray, t1w: np.ndarray) -> np.ndarray:
    """(2, 46, 55, 46) float32: SUVR and T1w channels."""
    return np.stack([suvr_channel(suvr), t1w_channel(t1w)])


def read_t1w(path: str | os.PathLike | None) -> np.ndarray:
    """A template-space T1w file, checked; the template's T1w when ``path`` is None."""
    if not path:
        return template_t1w()
    check_template_grid(path, "template-space T1w")
    return load_3d(path, np.float32)


def read_inputs(suvr_file: str | os.PathLike, t1w_file: str | os.PathLike | None) -> np.ndarray:
    """The network input of one scan's files (see module doc)."""
    if not suvr_file:
        raise ValueError("no SUVR image given (MONAI runner: --input_file SUVR.nii.gz)")
    check_template_grid(suvr_file, "template-space SUVR")
    return network_input(load_3d(suvr_file, np.float32), read_t1w(t1w_file))


def field_to_template(field: np.ndarray) -> np.ndarray:
    """A 4 mm field (46, 55, 46) -> the 2 mm template grid by trilinear interpolation."""
    if field.shape != INPUT_SHAPE:
        raise ValueError(f"expected an array of shape {INPUT_SHAPE}, got {field.shape}")
    fine = functional.interpolate(
        torch.from_numpy(np.ascontiguousarray(field, dtype=np.float32))[None, None],
        size=tuple(n * POOL for n in INPUT_SHAPE),
        mode="trilinear",
        align_corners=False,
    )[0, 0].numpy()
    return fine[: TEMPLATE_SHAPE[0], : TEMPLATE_SHAPE[1], : TEMPLATE_SHAPE[2]]
