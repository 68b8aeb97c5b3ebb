"""NIfTI helpers every operation shares: read a 3-D volume, check grids, write like, name outputs.

A one-frame 4-D image is a 3-D volume stored with a time axis (a static PET in BIDS often is),
so it reads as 3-D everywhere. Images compared voxel by voxel must share one grid: comparing
voxels of different grids gives plausible-looking but wrong numbers, so a mismatch is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from taupet_bids.errors import InputError

#: Affines closer than this (mm) describe the same grid (float rounding in headers).
GRID_ATOL_MM = 1e-3


def squeeze_frame(data: np.ndarray) -> np.ndarray:
    """A one-frame 4-D series as its 3-D volume; any other array as it is."""
    return data[..., 0] if data.ndim == 4 and data.shape[3] == 1 else data


def load_3d(path: str | os.PathLike, dtype: type = np.float64) -> np.ndarray:
    """Data of a 3-D image (a one-frame 4-D image is accepted), as ``dtype``."""
    data = squeeze_frame(np.asarray(nib.load(path).dataobj, dtype=dtype))
    if data.ndim != 3:
        raise InputError(path, f"expected a 3D image, got shape {data.shape}", "average frames")
    return data


def check_same_grid(image_file: str | os.PathLike, other_file: str | os.PathLike) -> None:
    """Raise InputError naming ``other_file`` unless it shares ``image_file``'s 3-D grid."""
    image, other = nib.load(image_file), nib.load(other_file)
    same_shape = image.shape[:3] == other.shape[:3]
    if not (same_shape and np.allclose(image.affine, other.affine, atol=GRID_ATOL_MM)):
        raise InputError(
            other_file,
            f"voxel grid (shape {other.shape[:3]}) differs from that of {Path(image_file).name} "
            f"(shape {image.shape[:3]}; shapes or affines differ)",
            "resample it onto the image grid first",
        )


def save_like(data: np.ndarray, template: nib.Nifti1Image, out_file: str) -> str:
    """Write ``data`` (float32) with the geometry and units of ``template``."""
    header = template.header.copy()
    header.set_data_dtype(np.float32)
    image = nib.Nifti1Image(data.astype(np.float32), template.affine, header)
    nib.save(image, out_file)
    return out_file


def out_path(in_file: str | os.PathLike, suffix: str, ext: str = ".nii.gz") -> str:
    """``<cwd>/<stem of in_file><suffix><ext>``: outputs land in the node's working directory."""
    name = Path(in_file).name
    for known in (".nii.gz", ".nii", ".mat", ".h5", ".tsv"):
        if name.endswith(known):
            name = name[: -len(known)]
            break
    return str(Path.cwd() / f"{name}{suffix}{ext}")
