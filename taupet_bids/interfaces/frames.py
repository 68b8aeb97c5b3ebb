"""Frame selection and time-weighted averaging of dynamic PET.

SUVR is computed on the late window (e.g. 80-100 min for flortaucipir): the workflow picks the
frame indices from the sidecar and these interfaces cut and average them. Averages are weighted
by frame duration so that a 10-min frame counts twice as much as a 5-min one, matching the
counts a static acquisition over the same window would have recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from taupet_bids.errors import InputError
from taupet_bids.interfaces.registration import out_path


def as_4d(data: np.ndarray) -> np.ndarray:
    """View a 3D volume as a one-frame 4D series."""
    return data[..., np.newaxis] if data.ndim == 3 else data


def select_frames(data: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """Frames ``indices`` of a 3D/4D array; a single frame comes back 3D."""
    series = as_4d(data)
    n_frames = series.shape[3]
    if not indices:
        raise ValueError("no frame indices given")
    bad = [i for i in indices if not 0 <= int(i) < n_frames]
    if bad:
        raise ValueError(f"frame indices {bad} out of range for {n_frames} frames")
    picked = series[..., [int(i) for i in indices]]
    return picked[..., 0] if picked.shape[3] == 1 else picked


def time_weighted_average(data: np.ndarray, durations: Sequence[float]) -> np.ndarray:
    """Duration-weighted mean over the last axis; 3D input is returned unchanged."""
    if data.ndim == 3:
        return data.astype(np.float32)
    weights = np.asarray(durations, dtype=float)
    if weights.shape != (data.shape[3],):
        raise ValueError(f"{weights.size} frame durations for {data.shape[3]} frames")
    if np.any(weights <= 0):
        raise ValueError("frame durations must be positive")
    mean = np.tensordot(data.astype(np.float64), weights / weights.sum(), axes=([3], [0]))
    return mean.astype(np.float32)


def save_like(data: np.ndarray, template: nib.Nifti1Image, out_file: str) -> str:
    """Write ``data`` (float32) with the geometry and units of ``template``."""
    header = template.header.copy()
    header.set_data_dtype(np.float32)
    image = nib.Nifti1Image(data.astype(np.float32), template.affine, header)
    nib.save(image, out_file)
    return out_file


class _SelectFramesInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D or 4D PET")
    frame_indices = traits.List(traits.Int, mandatory=True, desc="0-based frames to keep")


class _SelectFramesOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the selected frames (3D if only one)")


class SelectFrames(SimpleInterface):
    """Cut the frames chosen upstream (the SUVR window) out of a PET series."""

    input_spec = _SelectFramesInputSpec
    output_spec = _SelectFramesOutputSpec

    def _run_interface(self, runtime):
        image = nib.load(self.inputs.in_file)
        try:
            data = select_frames(np.asarray(image.dataobj), self.inputs.frame_indices)
        except ValueError as err:
            raise InputError(self.inputs.in_file, str(err)) from err
        out = out_path(self.inputs.in_file, "_frames")
        self._results["out_file"] = save_like(data, image, out)
        return runtime


class _TWAInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D (motion-corrected) PET or 3D")
    frame_durations = traits.List(traits.Float, desc="seconds, one per frame (needed for 4D)")
    scale = traits.Float(
        1.0, usedefault=True, desc="factor into the output units (e.g. 1000 for kBq/mL -> Bq/mL)"
    )


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
            mean = time_weighted_average(data, durations) * self.inputs.scale
        except ValueError as err:
            raise InputError(self.inputs.in_file, str(err), "check FrameDuration") from err
        out = out_path(self.inputs.in_file, "_twa")
        self._results["out_file"] = save_like(mean, image, out)
        return runtime
