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
