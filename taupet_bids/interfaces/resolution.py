"""Nipype wrapper of :mod:`taupet_bids.core.resolution`: smooth the averaged PET to a target FWHM.

The scan's own FWHM comes from its plan (``--pvc-fwhm``, the scanner resolution table, or
``--pvc-scanner-fwhm`` with the sidecar's filter), so the node is built only when
``--smooth-to-fwhm`` is given and knows both numbers before it runs.
"""

from __future__ import annotations

import logging

import nibabel as nib
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from taupet_bids.core.images import load_3d, out_path, save_like
from taupet_bids.core.resolution import smooth_to_fwhm

LOG = logging.getLogger("taupet_bids")


class _SmoothInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D PET (the frame average)")
    scan_fwhm_mm = traits.Float(mandatory=True, desc="the image's own resolution (FWHM, mm)")
    target_fwhm_mm = traits.Float(mandatory=True, desc="the resolution to reach (FWHM, mm)")


class _SmoothOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the PET at the target resolution (or the input as is)")
    kernel_fwhm_mm = traits.Float(desc="FWHM of the Gaussian applied (0: left as is)")


class SmoothToFWHM(SimpleInterface):
    """Gaussian smoothing of sqrt(target^2 - scan^2) mm FWHM; a coarser scan passes unchanged."""

    input_spec = _SmoothInputSpec
    output_spec = _SmoothOutputSpec

    def _run_interface(self, runtime):
        image = nib.load(self.inputs.in_file)
        data = load_3d(self.inputs.in_file)
        scan, target = self.inputs.scan_fwhm_mm, self.inputs.target_fwhm_mm
        smoothed, kernel = smooth_to_fwhm(data, image.header.get_zooms()[:3], scan, target)
        if kernel == 0.0:
            LOG.info(
                "%s: at %.2f mm FWHM, already at or coarser than --smooth-to-fwhm %.2f mm; "
                "left as it is", self.inputs.in_file, scan, target,
            )  # fmt: skip
            self._results["out_file"] = self.inputs.in_file
        else:
            out = out_path(self.inputs.in_file, "_smooth")
            self._results["out_file"] = save_like(smoothed, image, out)
        self._results["kernel_fwhm_mm"] = kernel
        return runtime
