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


def normalise_pet(
    in_file: str,
    out_prefix: str,
    template_file: str | None = None,
    seed: int | None = 42,
    num_threads: int = 1,
) -> dict:
    """Register a native PET to the tau PET template; return transforms, warped image and QC.

    Returns ``transforms`` (PET -> template, ANTs order), ``warped_file`` (the PET on the
    template grid), ``similarity`` (Pearson r with the template inside the template brain
    mask) and ``seconds`` (wall time of the registration).
    """
    set_threads(num_threads)
    template_file = str(template_file or pet_template_path())
    start = time.perf_counter()
    moving = prepare_pet(in_file, f"{out_prefix}prep.nii.gz")
    result = register(
        template_file,
        moving,
        out_prefix,
        transform_type=__import__("os").environ.get("VARIANT_TT", "SyN"),
        seed=seed,
        metric="mattes",
    )
    seconds = time.perf_counter() - start
    mask = nib.load(templates.brain_mask_path()).get_fdata() > 0
    fixed = nib.load(template_file).get_fdata()
    warped = nib.load(result["warped_file"]).get_fdata()
    corr, _ = similarity(fixed, warped, mask)
    return {
        "transforms": result["forward_transforms"],
        "warped_file": result["warped_file"],
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
