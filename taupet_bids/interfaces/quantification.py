"""Nipype wrappers of :mod:`taupet_bids.core.suvr` and :mod:`taupet_bids.core.regions`.

Both interfaces demand that their images share one voxel grid
(:func:`taupet_bids.core.images.check_same_grid`).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from taupet_bids.core.images import check_same_grid, load_3d, out_path, save_like
from taupet_bids.core.regions import STAT_COLUMNS, read_label_table, regional_statistics
from taupet_bids.core.suvr import compute_suvr
from taupet_bids.errors import InputError


class _SUVRInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D PET")
    reference_mask = File(exists=True, mandatory=True, desc="reference region, same grid")
    brain_mask = File(exists=True, desc="SUVR is zeroed outside this mask")


class _SUVROutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="SUVR image (float32)")
    reference_value = traits.Float(desc="mean PET in the reference region")
    reference_nvoxels = traits.Int(desc="voxels in the reference region")


class ComputeSUVR(SimpleInterface):
    """Divide PET by its mean in the reference region."""

    input_spec = _SUVRInputSpec
    output_spec = _SUVROutputSpec

    def _run_interface(self, runtime):
        pet_file, ref_file = self.inputs.in_file, self.inputs.reference_mask
        check_same_grid(pet_file, ref_file)
        brain = None
        if self.inputs.brain_mask:
            check_same_grid(pet_file, self.inputs.brain_mask)
            brain = load_3d(self.inputs.brain_mask)
        try:
            suvr, value, count = compute_suvr(load_3d(pet_file), load_3d(ref_file), brain)
        except ValueError as err:
            raise InputError(
                ref_file, f"{err} of {Path(pet_file).name}", "check the reference mask"
            ) from err
        out = save_like(suvr, nib.load(pet_file), out_path(pet_file, "_suvr"))
        self._results.update(
            out_file=out,
            reference_value=value,
            reference_nvoxels=count,
        )
        return runtime


class _StatsInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="SUVR image")
    atlas_file = File(exists=True, mandatory=True, desc="integer label image, same grid")
    labels_file = File(exists=True, mandatory=True, desc="TSV with index and name columns")
    groups = traits.Dict(
        traits.Str, traits.List(traits.Int), desc="output region -> label indices (composites)"
    )


class _StatsOutputSpec(TraitedSpec):
    out_table = File(exists=True, desc="TSV: " + ", ".join(STAT_COLUMNS))


class RegionalStatistics(SimpleInterface):
    """Regional SUVR summary table, one row per label or composite region."""

    input_spec = _StatsInputSpec
    output_spec = _StatsOutputSpec

    def _run_interface(self, runtime):
        check_same_grid(self.inputs.in_file, self.inputs.atlas_file)
        zooms = nib.load(self.inputs.in_file).header.get_zooms()[:3]
        table = regional_statistics(
            load_3d(self.inputs.in_file),
            load_3d(self.inputs.atlas_file),
            float(np.prod(zooms)) / 1000.0,
            read_label_table(self.inputs.labels_file),
            groups=self.inputs.groups or None,
        )
        out = out_path(self.inputs.in_file, "_regions", ext=".tsv")
        table.to_csv(out, sep="\t", index=False, float_format="%.6f", na_rep="n/a")
        self._results["out_table"] = out
        return runtime
