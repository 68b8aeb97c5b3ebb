"""CenTauRz table of one scan, from its bilateral DK table or from official mask images."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from taupet_bids import centaurz
from taupet_bids.errors import InputError
from taupet_bids.interfaces.quantification import check_same_grid, compute_suvr


def official_masks(masks_dir: str, suvr_file: str) -> dict[str, np.ndarray]:
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


class _CenTauRzInputSpec(BaseInterfaceInputSpec):
    dk_table = File(exists=True, mandatory=True, desc="regional DK table (bilateral rows)")
    suvr_file = File(exists=True, mandatory=True, desc="SUVR image in template space")
    tracer = traits.Str(mandatory=True, desc="tracer name (AV1451, MK6240, ...)")
    masks_dir = Directory(exists=True, desc="official CenTauR masks, one <mask>.nii.gz each")
    reference_mask = File(
        exists=True,
        mandatory=True,
        desc=f"{centaurz.REFERENCE_REGION} mask on the SUVR grid: CenTauRz's reference region",
    )


class _CenTauRzOutputSpec(TraitedSpec):
    out_table = File(exists=True, desc="TSV: " + ", ".join(centaurz.TABLE_COLUMNS))


class CenTauRzTable(SimpleInterface):
    """CenTauRz per mask; labelled approximate unless official masks are given."""

    input_spec = _CenTauRzInputSpec
    output_spec = _CenTauRzOutputSpec

    def _run_interface(self, runtime):
        suvr_file = self.inputs.suvr_file
        suvr = np.asarray(nib.load(suvr_file).dataobj, dtype=float)
        check_same_grid(suvr_file, self.inputs.reference_mask)
        reference = np.asarray(nib.load(self.inputs.reference_mask).dataobj)
        masks = official_masks(self.inputs.masks_dir, suvr_file) if self.inputs.masks_dir else {}
        official_reference = centaurz.REFERENCE_MASK_NAME in masks
        reference = masks.pop(centaurz.REFERENCE_MASK_NAME, reference)
        try:
            # the same rule as the SUVR reference: out-of-field-of-view (0) voxels do not count
            _, reference_suvr, _ = compute_suvr(suvr, reference)
            if masks:
                table = centaurz.official_centaurz(
                    suvr, masks, self.inputs.tracer, reference_suvr, official_reference
                )
            else:
                dk = pd.read_csv(self.inputs.dk_table, sep="\t", na_values="n/a")
                table = centaurz.approximate_centaurz(dk, self.inputs.tracer, reference_suvr)
        except ValueError as err:
            raise InputError(
                suvr_file, f"CenTauRz: {err}", "check the cerebellar grey reference mask"
            ) from err
        out = os.path.join(runtime.cwd, "centaurz.tsv")
        table.to_csv(out, sep="\t", index=False, float_format="%.6f")
        self._results["out_table"] = out
        return runtime
