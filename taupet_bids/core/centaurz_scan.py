"""CenTauRz table of one scan: from official mask images when given, else from its DK table.

The conversion itself (SUVR to CenTauRz per tracer and mask) is :mod:`taupet_bids.centaurz`;
this module measures the scan's own SUVRs and reference value that the conversion needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from taupet_bids import centaurz
from taupet_bids.core.suvr import compute_suvr


def official_masks(
    masks_dir: str | os.PathLike, suvr_file: str | os.PathLike
) -> dict[str, np.ndarray]:
    """``<mask>.nii[.gz]`` files of the official CenTauR masks, on the SUVR image's grid.

    ``reference.nii[.gz]`` (the official cerebellar grey reference), when present, comes back
    under the key :data:`taupet_bids.centaurz.REFERENCE_MASK_NAME`.
    """
    reference = nib.load(suvr_file)
    masks = {}
    for mask in (*centaurz.MASKS, centaurz.REFERENCE_MASK_NAME):
        found = sorted(Path(masks_dir).glob(f"{mask}.nii*"))
        if not found:
            continue
        image = nib.load(found[0])
        if image.shape[:3] != reference.shape[:3] or not np.allclose(
            image.affine, reference.affine
        ):
            raise ValueError(
                f"{found[0]}: not on the SUVR grid (MNI152NLin6Asym, 2 mm); resample it first"
            )
        masks[mask] = np.asarray(image.dataobj)
    if not set(masks) - {centaurz.REFERENCE_MASK_NAME}:
        raise FileNotFoundError(f"{masks_dir}: no <mask>.nii.gz for any of {centaurz.MASKS}")
    return masks


def scan_centaurz(
    suvr: np.ndarray,
    reference: np.ndarray,
    tracer: str,
    dk_table: pd.DataFrame,
    masks: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """CenTauRz per mask: official with ``masks`` (and their reference when among them), else
    approximated from the bilateral DK table.

    The reference value is the mean SUVR in the reference mask, by the same rule as the SUVR
    reference: out-of-field-of-view (0) voxels do not count.
    """
    masks = dict(masks or {})
    official_reference = centaurz.REFERENCE_MASK_NAME in masks
    reference = masks.pop(centaurz.REFERENCE_MASK_NAME, reference)
    _, reference_suvr, _ = compute_suvr(suvr, reference)
    if masks:
        return centaurz.official_centaurz(suvr, masks, tracer, reference_suvr, official_reference)
    return centaurz.approximate_centaurz(dk_table, tracer, reference_suvr)
