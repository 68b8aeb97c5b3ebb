"""Nipype wrappers of :mod:`taupet_bids.core.frames`: cut the SUVR window, average it."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from taupet_bids.core.frames import select_frames, time_weighted_average
from taupet_bids.core.images import out_path, save_like
from taupet_bids.errors import InputError


class _SelectFramesInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D or 4D PET")
    frame_indices = traits.List(traits.Int, mandatory=True, desc="0-based frames to keep")
    scale = traits.Float(
        1.0, usedefault=True, desc="factor into the output units (e.g. 1000 for kBq/mL -> Bq/mL)"
    )


class _SelectFramesOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the selected frames (3D if only one)")


class SelectFrames(SimpleInterface):
    """Cut the frames chosen upstream (the SUVR window) out of a PET series, in the output units.

    Scaling here, before motion correction, lets every later step see the same numbers whatever
    the input's units (a kBq/mL copy of a scan gives that scan's registrations and values).
    """

    input_spec = _SelectFramesInputSpec
    output_spec = _SelectFramesOutputSpec

    def _run_interface(self, runtime):
        image = nib.load(self.inputs.in_file)
        try:
            data = select_frames(np.asarray(image.dataobj), self.inputs.frame_indices)
        except ValueError as err:
            raise InputError(self.inputs.in_file, str(err)) from err
        if self.inputs.scale != 1.0:  # unscaled data is passed on bit for bit
            data = data.astype(np.float32) * np.float32(self.inputs.scale)
        out = out_path(self.inputs.in_file, "_frames")
        self._results["out_file"] = save_like(data, image, out)
        return runtime


class _TWAInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D (motion-corrected) PET or 3D")
    frame_durations = traits.List(traits.Float, desc="seconds, one per frame (needed for 4D)")


class _TWAOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="3D duration-weighted mean")


class TimeWeightedAverage(SimpleInterface):
    """Average frames weighted by duration into one static image."""

    input_spec = _TWAInputSpec
    output_spec = _TWAOutputSpec

    def _run_interface(self, runtime):
        image = nib.load(self.inputs.in_file)
        data = np.asarray(image.dataobj)
        try:
            durations = self.inputs.frame_durations or []
            mean = time_weighted_average(data, durations)
        except ValueError as err:
            raise InputError(self.inputs.in_file, str(err), "check FrameDuration") from err
        out = out_path(self.inputs.in_file, "_twa")
        self._results["out_file"] = save_like(mean, image, out)
        return runtime
