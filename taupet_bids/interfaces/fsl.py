"""Optional FSL alternatives for PET motion correction and PET -> T1w coregistration.

antspyx is the default (no external binaries). Sites that validated their pipelines on FSL can
opt in when ``FSLDIR`` points at an installation; these factories return nipype's FSL
interfaces preconfigured so both back ends are used with the same intent:
- MCFLIRT (Jenkinson et al. 2002): 6-dof realignment to the mean volume, with the parameter
  plots and per-volume matrices kept for QC and for resampling.
- FLIRT: 6-dof (rigid) PET -> T1w with normalised mutual information, the cross-modal cost.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from nipype.interfaces import fsl
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from taupet_bids.core.motion import mcflirt_motion_table
from taupet_bids.core.registration import fsl_to_itk

OUTPUT_TYPE = "NIFTI_GZ"


def fsl_available() -> bool:
    """True when ``FSLDIR`` is set and its flirt/mcflirt programs can be found."""
    fsldir = os.environ.get("FSLDIR")
    if not fsldir:
        return False
    programs = ("flirt", "mcflirt")
    return all(shutil.which(p) or (Path(fsldir) / "bin" / p).is_file() for p in programs)


def mcflirt(in_file: str | None = None, cost: str = "normcorr") -> fsl.MCFLIRT:
    """MCFLIRT rigid realignment to the mean volume, saving plots (.par) and matrices."""
    interface = fsl.MCFLIRT(
        cost=cost,
        dof=6,
        mean_vol=True,
        save_plots=True,
        save_mats=True,
        save_rms=True,
        output_type=OUTPUT_TYPE,
    )
    if in_file:
        interface.inputs.in_file = in_file
    return interface


def flirt_coregistration(
    in_file: str | None = None, reference: str | None = None, dof: int = 6
) -> fsl.FLIRT:
    """FLIRT PET -> T1w, rigid by default, with normalised mutual information."""
    interface = fsl.FLIRT(
        dof=dof,
        cost="normmi",
        cost_func="normmi",
        interp="trilinear",
        output_type=OUTPUT_TYPE,
    )
    if in_file:
        interface.inputs.in_file = in_file
    if reference:
        interface.inputs.reference = reference
    return interface


class _ParInputSpec(BaseInterfaceInputSpec):
    par_file = File(exists=True, mandatory=True, desc="MCFLIRT .par motion parameters")


class _ParOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="TSV: frame, trans_*, rot_* (deg), framewise_displacement")


class MCFLIRTMotionTable(SimpleInterface):
    """Motion parameters of MCFLIRT in the same table as the antspyx motion correction."""

    input_spec = _ParInputSpec
    output_spec = _ParOutputSpec

    def _run_interface(self, runtime):
        out = os.path.join(runtime.cwd, "motion_params.tsv")
        table = mcflirt_motion_table(self.inputs.par_file)
        table.to_csv(out, sep="\t", index=False, float_format="%.6f")
        self._results["out_file"] = out
        return runtime


class _ToITKInputSpec(BaseInterfaceInputSpec):
    fsl_matrix = File(exists=True, mandatory=True, desc="FLIRT -omat output")
    reference = File(exists=True, mandatory=True, desc="FLIRT reference image")
    moving = File(exists=True, mandatory=True, desc="FLIRT input image")


class _ToITKOutputSpec(TraitedSpec):
    transforms = traits.List(File(exists=True), desc="[ITK transform], ANTs order")


class FSLToITK(SimpleInterface):
    """FLIRT's matrix as an ITK transform, so it composes with the ANTs T1w-to-template chain."""

    input_spec = _ToITKInputSpec
    output_spec = _ToITKOutputSpec

    def _run_interface(self, runtime):
        out = os.path.join(runtime.cwd, "pet_to_t1w_itk.txt")
        fsl_to_itk(self.inputs.fsl_matrix, self.inputs.reference, self.inputs.moving, out)
        self._results["transforms"] = [out]
        return runtime
