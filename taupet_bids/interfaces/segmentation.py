"""Nipype wrapper of :mod:`taupet_bids.core.segmentation`: the subject's grey and white matter.

Besides the GM and WM probability maps, the node writes one 4-D image (GM, WM, brain mask) so
that a single resampling node brings all three to the template grid through the T1w's
registration; the SUVR and table nodes read its volumes by :data:`TISSUE_VOLUMES`. With
``fractions`` it also writes the GM and WM *fractions* (the mixel model's, for soft
partial-volume regions) in the same 4-D layout.
"""

from __future__ import annotations

import ants
import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from taupet_bids.core.images import out_path
from taupet_bids.core.registration import set_threads
from taupet_bids.core.segmentation import segment_tissue_maps, segment_tissues
from taupet_bids.errors import InputError
from taupet_bids.greymatter import ITERATIONS, SEGMENTATION_MM

#: Volumes of the 4-D tissue image, in order.
TISSUE_VOLUMES = ("GM", "WM", "brain")


def tissue_volumes(path: str) -> dict[str, np.ndarray]:
    """The volumes of a (resampled) 4-D tissue image, by :data:`TISSUE_VOLUMES` name."""
    data = np.asarray(nib.load(path).dataobj, dtype=np.float64)
    if data.ndim != 4 or data.shape[3] != len(TISSUE_VOLUMES):
        raise ValueError(f"{path}: expected {len(TISSUE_VOLUMES)} tissue volumes, got {data.shape}")
    return {name: data[..., i] for i, name in enumerate(TISSUE_VOLUMES)}


class _SegmentInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="N4-corrected T1w")
    mask_file = File(exists=True, mandatory=True, desc="brain mask of the T1w")
    resolution_mm = traits.Float(SEGMENTATION_MM, usedefault=True, desc="segmentation voxel size")
    iterations = traits.Int(ITERATIONS, usedefault=True, desc="Atropos EM iterations")
    fractions = traits.Bool(
        False, usedefault=True, desc="also write the GM and WM fractions (out_fractions)"
    )
    num_threads = traits.Int(1, usedefault=True, nohash=True)


class _SegmentOutputSpec(TraitedSpec):
    out_gm = File(exists=True, desc="grey matter probability (T1w space, coarse grid)")
    out_wm = File(exists=True, desc="white matter probability (T1w space, coarse grid)")
    out_tissues = File(exists=True, desc="4-D: GM, WM probability and brain mask, same grid")
    out_fractions = File(desc="4-D: GM, WM fraction and brain mask, same grid (with fractions)")


class TissueSegmentation(SimpleInterface):
    """Three-class Atropos segmentation of the brain-masked T1w (CSF, GM, WM)."""

    input_spec = _SegmentInputSpec
    output_spec = _SegmentOutputSpec

    def _run_interface(self, runtime):
        set_threads(self.inputs.num_threads)
        t1w, mask = ants.image_read(self.inputs.in_file), ants.image_read(self.inputs.mask_file)
        settings = {"mm": self.inputs.resolution_mm, "iterations": self.inputs.iterations}
        stacks = {}
        try:
            if self.inputs.fractions:
                maps = segment_tissue_maps(t1w, mask, **settings)
                gm, wm, brain = maps.gm, maps.wm, maps.brain
                stacks["out_fractions"] = ("_fractions", maps.gm_fraction, maps.wm_fraction)
            else:  # the mixel fit is only needed for soft PVC regions: no new way to fail
                gm, wm, brain = segment_tissues(t1w, mask, **settings)
        except Exception as err:  # antspyx raises a bare Exception when Atropos fails
            step, fix = "tissue segmentation", "use --regional-mask template"
            if self.inputs.fractions:
                fix = "use --pvc-regions hard, or --regional-mask template"
                step = "tissue fractions" if isinstance(err, ValueError) else step
            raise InputError(self.inputs.in_file, f"{step}: {err}", fix) from err
        stacks["out_tissues"] = ("_tissues", gm, wm)
        outputs = {}
        for key, image in (("out_gm", gm), ("out_wm", wm)):
            outputs[key] = out_path(self.inputs.in_file, f"_{key[4:]}prob")
            ants.image_write(image, outputs[key])
        affine = nib.load(outputs["out_gm"]).affine
        for key, (suffix, grey, white) in stacks.items():
            outputs[key] = out_path(self.inputs.in_file, suffix)
            stacked = np.stack([grey.numpy(), white.numpy(), brain.numpy()], axis=-1)
            nib.save(nib.Nifti1Image(stacked.astype(np.float32), affine), outputs[key])
        self._results.update(outputs)
        return runtime
