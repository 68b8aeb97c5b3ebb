"""Nipype wrapper of :mod:`taupet_bids.core.motion`: realign the frames, write the motion table."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from taupet_bids.core.images import out_path
from taupet_bids.core.motion import motion_correct
from taupet_bids.core.registration import set_threads


class _MotionInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D PET (3D passes through)")
    frame_durations = traits.List(traits.Float, desc="seconds; weights of the reference mean")
    reestimate_reference = traits.Bool(True, usedefault=True, desc="second pass on a new mean")
    random_seed = traits.Int(42, usedefault=True)
    num_threads = traits.Int(1, usedefault=True, nohash=True)


class _MotionOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="motion-corrected 4D PET")
    motion_params = File(exists=True, desc="TSV: frame, trans_*, rot_*, framewise_displacement")
    transforms = traits.List(File(exists=True), desc="per frame: onto the reference")


class MotionCorrect(SimpleInterface):
    """Rigid frame-by-frame realignment, with motion parameters and FD for QC."""

    input_spec = _MotionInputSpec
    output_spec = _MotionOutputSpec

    def _run_interface(self, runtime):
        set_threads(self.inputs.num_threads)
        out_file, table, transforms = motion_correct(
            self.inputs.in_file,
            out_path(self.inputs.in_file, "_mc"),
            str(Path.cwd() / "frame-"),
            durations=self.inputs.frame_durations or None,
            reestimate_reference=self.inputs.reestimate_reference,
            seed=self.inputs.random_seed,
        )
        tsv = out_path(self.inputs.in_file, "_motion", ext=".tsv")
        table.to_csv(tsv, sep="\t", index=False, float_format="%.6f", na_rep="n/a")
        self._results.update(out_file=out_file, motion_params=tsv, transforms=transforms)
        return runtime
