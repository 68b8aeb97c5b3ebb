"""The classical MR-less baseline: register a native tau PET to a tau PET template with antspyx.

No MRI is used: the averaged PET (Bq/mL, any orientation, voxel size or field of view) is
registered directly to the tau PET template of :mod:`taupet_bids.normalisation.pet_template`
(mean MR-based SUVR, MNI152NLin6Asym 2 mm), affine then SyN. Both stages use Mattes mutual
information, which does not care that the PET is in Bq/mL and the template in SUVR.

Initialisation: antsRegistration starts from the centres of mass, which takes care of any shift;
an image far from the template's orientation could still lock on a wrong local optimum, so a
quick rigid search over a few starting rotations picks the start with the best metric.

The forward transforms (ANTs order) map the PET into template space with
:class:`taupet_bids.interfaces.registration.ApplyTransforms` and the template 2 mm T1w as the
reference image, exactly like the MR-based chain.
"""

from __future__ import annotations

import time
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

from taupet_bids import templates
from taupet_bids.errors import InputError
from taupet_bids.interfaces.registration import out_path, register, set_threads, similarity
from taupet_bids.normalisation.pet_template import pet_template_path


def prepare_pet(in_file: str, out_file: str) -> str:
    """The PET as a 3D float32 image: frames averaged, non-finite and negative values set to 0."""
    image = nib.load(in_file)
    data = np.asarray(image.dataobj, dtype=np.float32)
    if data.ndim == 4:
        data = data.mean(axis=3)
    if data.ndim != 3:
        raise InputError(in_file, f"expected a 3D PET image, got shape {data.shape}")
    data = np.where(np.isfinite(data) & (data > 0), data, 0).astype(np.float32)
    if not data.any():
        raise InputError(in_file, "PET image has no positive voxel", "check the image")
    out = nib.Nifti1Image(data, image.affine)
    out.header.set_xyzt_units("mm")
    nib.save(out, out_file)
    return out_file


def _env(name, default):
    import json
    import os

    return json.loads(os.environ.get(name, json.dumps(default)))


def clipped(in_file: str, out_file: str, scale: float, ceiling: float) -> str:
    image = nib.load(in_file)
    data = np.asarray(image.dataobj, dtype=np.float32) / scale
    nib.save(nib.Nifti1Image(np.minimum(data, ceiling).astype(np.float32), image.affine), out_file)
    return out_file


def adapt_template(template_file, warped_file, out_file, sigma):
    from scipy import ndimage

    tpl_img = nib.load(template_file)
    tpl = tpl_img.get_fdata()
    sub = nib.load(warped_file).get_fdata()
    reference = nib.load(templates.reference_mask_path("InfCerebGrey")).get_fdata() > 0
    sub = sub / sub[reference].mean()
    dk = np.asarray(nib.load(templates.atlas_path("DK")).dataobj).astype(int)
    head = tpl > 0.2
    labels = np.where(dk > 0, dk, np.where(head, dk.max() + 1, 0))
    covered = sub > 0
    ok = covered & (labels > 0)
    n = np.bincount(labels[ok], minlength=labels.max() + 1)
    ssum = np.bincount(labels[ok], weights=sub[ok], minlength=labels.max() + 1)
    tsum = np.bincount(labels[ok], weights=tpl[ok], minlength=labels.max() + 1)
    ratio = np.ones(labels.max() + 1)
    good = (n >= 10) & (tsum > 0)
    ratio[good] = ssum[good] / tsum[good]
    rmap = np.where(labels > 0, ratio[labels], 1.0)
    if sigma:
        rmap = ndimage.gaussian_filter(rmap, sigma)
    out = (tpl * rmap).astype(np.float32)
    nib.save(nib.Nifti1Image(out, tpl_img.affine), out_file)
    return out_file


def normalise_pet(
    in_file: str,
    out_prefix: str,
    template_file: str | None = None,
    seed: int | None = 42,
    num_threads: int = 1,
) -> dict:
    """Register a native PET to the tau PET template; return transforms, warped image and QC."""
    from taupet_bids.interfaces.registration import apply_transforms

    set_threads(num_threads)
    template_file = str(template_file or pet_template_path())
    start = time.perf_counter()
    moving = prepare_pet(in_file, f"{out_prefix}prep.nii.gz")
    stages = _env("STAGES", [["Affine", 0, {}], ["SyNOnly", 1.0, {}]])
    transforms = None
    scale = None
    reference = nib.load(templates.reference_mask_path("InfCerebGrey")).get_fdata() > 0
    mask = _env("MASK", None)
    fmask = None
    if mask:
        from scipy import ndimage

        b = nib.load(templates.brain_mask_path()).get_fdata() > 0
        b = ndimage.binary_dilation(b, iterations=mask)
        ref = nib.load(template_file)
        fmask = f"{out_prefix}fmask.nii.gz"
        nib.save(nib.Nifti1Image(b.astype(np.uint8), ref.affine), fmask)
    for k, (tt, ceiling, opts) in enumerate(stages):
        if ceiling == "adapt":
            w = apply_transforms(moving, template_file, transforms, f"{out_prefix}tmp.nii.gz")
            fixed_s = adapt_template(
                template_file, w, f"{out_prefix}tpl{k}.nii.gz", _env("ASIG", 2.0)
            )
            moving_s = moving
        elif ceiling:
            if scale is None:
                w = apply_transforms(moving, template_file, transforms, f"{out_prefix}tmp.nii.gz")
                scale = float(nib.load(w).get_fdata()[reference].mean())
            fixed_s = clipped(template_file, f"{out_prefix}tpl{k}.nii.gz", 1.0, ceiling)
            moving_s = clipped(moving, f"{out_prefix}pet{k}.nii.gz", scale, ceiling)
        else:
            fixed_s, moving_s = template_file, moving
        init = None if transforms is None else transforms[0]
        res = register(
            fixed_s,
            moving_s,
            f"{out_prefix}s{k}_",
            transform_type=tt,
            initial_transform=init,
            seed=seed,
            fixed_mask=fmask,
            metric=_env("AFFM", "mattes"),
            **opts,
        )
        transforms = res["forward_transforms"]
    warped_file = apply_transforms(moving, template_file, transforms, f"{out_prefix}warped.nii.gz")
    seconds = time.perf_counter() - start
    mask = nib.load(templates.brain_mask_path()).get_fdata() > 0
    fixed = nib.load(template_file).get_fdata()
    warped = nib.load(warped_file).get_fdata()
    corr, _ = similarity(fixed, warped, mask)
    return {
        "transforms": transforms,
        "warped_file": warped_file,
        "similarity": corr,
        "seconds": seconds,
    }


class _NormaliseInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="averaged PET, native space (Bq/mL)")
    template_file = File(exists=True, desc="tau PET template (default: the shipped one)")
    seed = traits.Int(42, usedefault=True, desc="antsRegistration --random-seed")
    num_threads = traits.Int(1, usedefault=True, nohash=True, desc="1 = bitwise reproducible")


class _NormaliseOutputSpec(TraitedSpec):
    transforms = traits.List(File(exists=True), desc="PET -> template (ANTs order)")
    warped_file = File(exists=True, desc="PET on the template 2 mm grid")
    similarity = traits.Float(desc="Pearson r with the template inside its brain mask (QC)")


class ANTsPETNormalisation(SimpleInterface):
    """MR-less spatial normalisation of a tau PET by antspyx registration to a PET template."""

    input_spec = _NormaliseInputSpec
    output_spec = _NormaliseOutputSpec

    def _run_interface(self, runtime):
        result = normalise_pet(
            self.inputs.in_file,
            out_path(self.inputs.in_file, "_to_pettemplate_", ext=""),
            template_file=self.inputs.template_file or None,
            seed=self.inputs.seed,
            num_threads=self.inputs.num_threads,
        )
        self._results.update(
            transforms=result["transforms"],
            warped_file=result["warped_file"],
            similarity=result["similarity"],
        )
        return runtime


__all__ = ["ANTsPETNormalisation", "normalise_pet", "prepare_pet", "Path"]
