"""Nipype wrappers of :mod:`taupet_bids.core.registration`: N4, registration, resampling, masks.

Each interface sets the thread count, calls the plain function and names its outputs in the
node's working directory; determinism and threading are explained in the core module.
"""

from __future__ import annotations

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from taupet_bids.core.images import out_path
from taupet_bids.core.registration import (
    INTERPOLATIONS,
    LINEAR_METRICS,
    TRANSFORM_TYPES,
    apply_transforms,
    n4_bias_correct,
    register,
    set_threads,
    template_brain_mask,
)


class _N4InputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="T1w image")
    mask_file = File(exists=True, desc="restrict the bias fit to this mask")
    shrink_factor = traits.Int(4, usedefault=True, desc="downsampling for the fit")
    num_threads = traits.Int(1, usedefault=True, nohash=True)


class _N4OutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="bias-corrected image")
    bias_field = File(exists=True, desc="estimated multiplicative bias field")


class N4BiasCorrect(SimpleInterface):
    """Remove the smooth intensity inhomogeneity of a T1w before registration/segmentation."""

    input_spec = _N4InputSpec
    output_spec = _N4OutputSpec

    def _run_interface(self, runtime):
        set_threads(self.inputs.num_threads)
        mask = self.inputs.mask_file or None
        out, bias = n4_bias_correct(
            self.inputs.in_file,
            out_path(self.inputs.in_file, "_n4"),
            out_path(self.inputs.in_file, "_biasfield"),
            mask_file=mask,
            shrink_factor=self.inputs.shrink_factor,
        )
        self._results.update(out_file=out, bias_field=bias)
        return runtime


class _RegisterInputSpec(BaseInterfaceInputSpec):
    fixed_image = File(exists=True, mandatory=True)
    moving_image = File(exists=True, mandatory=True)
    transform_type = traits.Enum(*TRANSFORM_TYPES, usedefault=True, desc="ants type_of_transform")
    fixed_mask = File(exists=True, desc="metric mask in fixed space")
    moving_mask = File(exists=True, desc="metric mask in moving space")
    initial_transform = File(exists=True, desc="initial moving transform (.mat)")
    metric = traits.Enum(*LINEAR_METRICS, usedefault=True, desc="metric of linear stages")
    random_seed = traits.Int(42, usedefault=True, desc="antsRegistration --random-seed")
    num_threads = traits.Int(1, usedefault=True, nohash=True, desc="1 = bitwise reproducible")
    fixed_resample_mm = traits.Float(0.0, usedefault=True, desc="register to a coarser fixed")
    score_mask = File(exists=True, desc="brain mask on the fixed grid: QC in the brain (template)")


class _RegisterOutputSpec(TraitedSpec):
    warped_image = File(exists=True, desc="moving image resampled onto fixed")
    forward_transforms = traits.List(File(exists=True), desc="moving -> fixed (ANTs order)")
    forward_invert_flags = traits.List(traits.Bool)
    inverse_transforms = traits.List(File(exists=True), desc="fixed -> moving")
    inverse_invert_flags = traits.List(traits.Bool, desc="whichtoinvert for inverse_transforms")
    correlation = traits.Float(desc="Pearson r of fixed and warped inside fixed mask (QC)")
    nmi = traits.Float(desc="normalised mutual information inside fixed mask (QC)")
    alignment_margin = traits.Float(desc="r as registered minus its best small rigid move (QC)")


class RegisterImages(SimpleInterface):
    """Generic antspyx registration with explicit, reproducible settings and a QC score."""

    input_spec = _RegisterInputSpec
    output_spec = _RegisterOutputSpec

    def _run_interface(self, runtime):
        set_threads(self.inputs.num_threads)
        result = register(
            self.inputs.fixed_image,
            self.inputs.moving_image,
            out_path(self.inputs.moving_image, "_to_fixed_", ext=""),
            transform_type=self.inputs.transform_type,
            fixed_mask=self.inputs.fixed_mask or None,
            moving_mask=self.inputs.moving_mask or None,
            initial_transform=self.inputs.initial_transform or None,
            seed=self.inputs.random_seed,
            metric=self.inputs.metric,
            fixed_resample_mm=self.inputs.fixed_resample_mm,
            score_mask=self.inputs.score_mask or None,
        )
        self._results["warped_image"] = result.pop("warped_file")
        self._results.update(result)
        return runtime


class _ApplyInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D image or 4D series (frame by frame)")
    reference_image = File(exists=True, mandatory=True, desc="defines the output grid")
    transforms = InputMultiObject(File(exists=True), mandatory=True, desc="ANTs order")
    invert_transform_flags = traits.List(traits.Bool, desc="one flag per transform")
    interpolation = traits.Enum(*INTERPOLATIONS, usedefault=True)
    default_value = traits.Float(0.0, usedefault=True, desc="value outside the moving image")
    out_suffix = traits.Str("_resampled", usedefault=True)
    num_threads = traits.Int(1, usedefault=True, nohash=True)


class _ApplyOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="resampled image (float32, or int32 labels)")


class ApplyTransforms(SimpleInterface):
    """Resample an image through a chain of ANTs transforms onto a reference grid."""

    input_spec = _ApplyInputSpec
    output_spec = _ApplyOutputSpec

    def _run_interface(self, runtime):
        set_threads(self.inputs.num_threads)
        flags = self.inputs.invert_transform_flags or None
        self._results["out_file"] = apply_transforms(
            self.inputs.in_file,
            self.inputs.reference_image,
            self.inputs.transforms,
            out_path(self.inputs.in_file, self.inputs.out_suffix),
            invert_flags=flags,
            interpolation=self.inputs.interpolation,
            default_value=self.inputs.default_value,
        )
        return runtime


class _BrainMaskInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="N4-corrected T1w")
    template_mask = File(exists=True, mandatory=True, desc="brain mask in template space")
    transforms = InputMultiObject(
        File(exists=True), mandatory=True, desc="template -> T1w (the registration's inverse)"
    )
    invert_transform_flags = traits.List(traits.Bool, desc="one flag per transform")
    num_threads = traits.Int(1, usedefault=True, nohash=True)


class _BrainMaskOutputSpec(TraitedSpec):
    out_mask = File(exists=True, desc="brain mask in T1w space (uint8)")
    out_file = File(exists=True, desc="skull-stripped T1w")


class TemplateBrainMask(SimpleInterface):
    """Brain extraction by template registration, reusing the T1w -> template transforms."""

    input_spec = _BrainMaskInputSpec
    output_spec = _BrainMaskOutputSpec

    def _run_interface(self, runtime):
        set_threads(self.inputs.num_threads)
        mask, brain = template_brain_mask(
            self.inputs.in_file,
            self.inputs.template_mask,
            self.inputs.transforms,
            self.inputs.invert_transform_flags or None,
            out_path(self.inputs.in_file, "_brainmask"),
            out_path(self.inputs.in_file, "_brain"),
        )
        self._results.update(out_mask=mask, out_file=brain)
        return runtime
