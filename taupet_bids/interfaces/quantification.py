"""Nipype wrappers of :mod:`taupet_bids.core.suvr` and :mod:`taupet_bids.core.regions`.

Both interfaces demand that their images share one voxel grid
(:func:`taupet_bids.core.images.check_same_grid`). Given the subject's tissue probabilities on
that grid (``tissues_file``, ``--regional-mask subject-gm``), the reference and the grey-matter
regions follow the subject's grey matter; without it they are the template's masks.
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
from taupet_bids.core.regions import (
    STAT_COLUMNS,
    grey_matter_statistics,
    measured_voxels,
    read_label_table,
    regional_statistics,
)
from taupet_bids.core.suvr import compute_suvr, subject_reference
from taupet_bids.errors import InputError
from taupet_bids.interfaces.segmentation import tissue_volumes


class _SUVRInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D PET")
    reference_mask = File(exists=True, mandatory=True, desc="reference region, same grid")
    brain_mask = File(exists=True, desc="SUVR is zeroed outside this mask")
    tissues_file = File(
        exists=True, desc="4-D GM, WM, brain mask on the PET grid: restrict the reference to GM"
    )


class _SUVROutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="SUVR image (float32)")
    reference_value = traits.Float(desc="mean PET in the reference region")
    reference_nvoxels = traits.Int(desc="voxels in the reference region")
    reference_mask_file = File(exists=True, desc="the reference mask that was used")
    reference_mask = traits.Str(desc="template, subject-gm or template-fallback")


class ComputeSUVR(SimpleInterface):
    """Divide PET by its mean in the reference region."""

    input_spec = _SUVRInputSpec
    output_spec = _SUVROutputSpec

    def _run_interface(self, runtime):
        pet_file, ref_file = self.inputs.in_file, self.inputs.reference_mask
        check_same_grid(pet_file, ref_file)
        reference, kind = load_3d(ref_file), "template"
        if self.inputs.tissues_file:
            check_same_grid(pet_file, self.inputs.tissues_file)
            tissues = tissue_volumes(self.inputs.tissues_file)
            zooms = nib.load(pet_file).header.get_zooms()[:3]
            reference, kind = subject_reference(reference, tissues["GM"], tissues["brain"], zooms)
            ref_out = out_path(pet_file, "_reference")
            nib.save(nib.Nifti1Image(reference, nib.load(pet_file).affine), ref_out)
            ref_file = ref_out
        brain = None
        if self.inputs.brain_mask:
            check_same_grid(pet_file, self.inputs.brain_mask)
            brain = load_3d(self.inputs.brain_mask)
        try:
            suvr, value, count = compute_suvr(load_3d(pet_file), reference, brain)
        except ValueError as err:
            raise InputError(
                ref_file, f"{err} of {Path(pet_file).name}", "check the reference mask"
            ) from err
        out = save_like(suvr, nib.load(pet_file), out_path(pet_file, "_suvr"))
        self._results.update(
            out_file=out,
            reference_value=value,
            reference_nvoxels=count,
            reference_mask_file=ref_file,
            reference_mask=kind,
        )
        return runtime


class _StatsInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="SUVR image")
    atlas_file = File(exists=True, mandatory=True, desc="integer label image, same grid")
    labels_file = File(exists=True, mandatory=True, desc="TSV with index and name columns")
    groups = traits.Dict(
        traits.Str, traits.List(traits.Int), desc="output region -> label indices (composites)"
    )
    tissues_file = File(exists=True, desc="4-D GM, WM, brain mask: cut grey_labels to GM")
    grey_labels = traits.List(traits.Int, desc="labels restricted to the subject's GM")


class _StatsOutputSpec(TraitedSpec):
    out_table = File(exists=True, desc="TSV: " + ", ".join(STAT_COLUMNS))
    fallback_regions = traits.List(
        traits.Str, desc="regions with no subject-GM voxel, given their template voxels"
    )


class RegionalStatistics(SimpleInterface):
    """Regional SUVR summary table, one row per label or composite region."""

    input_spec = _StatsInputSpec
    output_spec = _StatsOutputSpec

    def _run_interface(self, runtime):
        check_same_grid(self.inputs.in_file, self.inputs.atlas_file)
        zooms = nib.load(self.inputs.in_file).header.get_zooms()[:3]
        image = load_3d(self.inputs.in_file)
        arguments = (image, load_3d(self.inputs.atlas_file))
        voxel_ml = float(np.prod(zooms)) / 1000.0
        labels = read_label_table(self.inputs.labels_file)
        fallbacks: list[str] = []
        if self.inputs.tissues_file:
            check_same_grid(self.inputs.in_file, self.inputs.tissues_file)
            gm = tissue_volumes(self.inputs.tissues_file)["GM"]
            table, fallbacks = grey_matter_statistics(
                *arguments, gm, voxel_ml, labels, self.inputs.grey_labels,
                groups=self.inputs.groups or None, measured=measured_voxels(image),
            )  # fmt: skip
        else:
            table = regional_statistics(
                *arguments, voxel_ml, labels, groups=self.inputs.groups or None,
                measured=measured_voxels(image),
            )  # fmt: skip
        out = out_path(self.inputs.in_file, "_regions", ext=".tsv")
        table.to_csv(out, sep="\t", index=False, float_format="%.6f", na_rep="n/a")
        self._results.update(out_table=out, fallback_regions=fallbacks)
        return runtime
