"""The classical MR-less baseline: register a native tau PET to a tau PET template with antspyx.

No MRI is used: the averaged PET (Bq/mL, any orientation, voxel size or field of view) is
registered to the tau PET template of :mod:`taupet_bids.normalisation.pet_template` (mean
MR-based SUVR on the MNI152NLin6Asym 2 mm grid) with a 12-parameter affine transform, Mattes
mutual information (blind to the PET being in Bq/mL and the template in SUVR), whole head.

Initialisation: antsRegistration starts from the images' centres of mass, which absorbs any
shift; from there the affine stage recovered 30 degrees about any axis with a 40 mm shift, and
usually 60 degrees. When the result still correlates poorly with the template, the affine stage
is rerun from six rotated starts (+-60 degrees about each axis) and the best-correlated result
is kept (this recovered 90 degrees about the vertical axis).

Why affine only by default: on simulated cohorts never used to build the template, every SyN
stage tried after the affine one (Mattes or CC, default or strongly regularised, B-spline SyN,
on raw images, on images clipped to hide tau, or to a template rescaled region by region to the
subject) moved points further from the truth and regional SUVR further from the true values
than the affine alone: the deformable stage matches the subject's tau pattern to the template's
instead of matching anatomy. ``deformable=True`` adds the least harmful of them (SyN on the
images clipped at SUVR 1, strongly regularised) for comparison; docs/pet_template.md has the
figures.

The forward transforms (ANTs order) map the PET into template space with
:func:`taupet_bids.core.registration.apply_transforms` and the template 2 mm T1w as the
reference image, exactly like the MR-based chain. The Nipype wrapper is
:class:`taupet_bids.interfaces.mrless.ANTsPETNormalisation`.
"""

from __future__ import annotations

import time

import ants
import nibabel as nib
import numpy as np

from taupet_bids import atlases, templates
from taupet_bids.core.registration import apply_transforms, register, set_threads, similarity
from taupet_bids.errors import InputError
from taupet_bids.normalisation.pet_template import pet_template_path

#: Below this correlation with the template (brain mask) the affine stage retries other starts.
RETRY_BELOW = 0.6
#: Rotation (degrees) of the extra starts, about each axis in both directions.
RETRY_ANGLE_DEG = 60.0
#: antsRegistration settings of the affine stage (antspyx defaults unless measured better).
AFFINE_OPTIONS: dict = {}
#: SUVR at which template and PET are clipped for the optional SyN stage (hides tau).
SYN_CLIP_SUVR = 1.0
#: The optional SyN stage: strongly regularised (the milder antspyx defaults did worse).
SYN_OPTIONS = {"grad_step": 0.1, "flow_sigma": 8, "total_sigma": 4, "reg_iterations": (30, 15, 0)}


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


def _rotated_start(fixed_file: str, moving_file: str, axis: int, degrees: float, out: str) -> str:
    """Initial transform: centres of mass matched, moving rotated by ``degrees`` about ``axis``."""
    fixed_centre = np.array(ants.get_center_of_mass(ants.image_read(fixed_file)))
    moving_centre = np.array(ants.get_center_of_mass(ants.image_read(moving_file)))
    angle = np.deg2rad(degrees)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    rotation = np.eye(3)
    rotation[i, i] = rotation[j, j] = np.cos(angle)
    rotation[i, j], rotation[j, i] = -np.sin(angle), np.sin(angle)
    transform = ants.create_ants_transform(
        transform_type="AffineTransform",
        dimension=3,
        matrix=rotation,
        center=fixed_centre,
        translation=moving_centre - fixed_centre,
    )
    ants.write_transform(transform, out)
    return out


class _Scorer:
    """Pearson r of a PET resampled through some transforms with the template (brain mask)."""

    def __init__(self, template_file: str, moving_file: str, out_prefix: str) -> None:
        self.template = nib.load(template_file).get_fdata()
        self.mask = nib.load(templates.brain_mask_path()).get_fdata() > 0
        self.reference = str(templates.t1w_path(templates.WORKING_RESOLUTION))
        self.moving = moving_file
        self.prefix = out_prefix

    def warp(self, transforms: list[str], out_file: str) -> str:
        return apply_transforms(self.moving, self.reference, transforms, out_file)

    def score(self, warped_file: str) -> float:
        """Over the part of the brain mask the PET covers (a cropped field of view is no error)."""
        warped = nib.load(warped_file).get_fdata()
        corr, _ = similarity(self.template, warped, self.mask & (warped != 0))
        return -1.0 if np.isnan(corr) else corr


def _affine(template_file: str, moving: str, prefix: str, seed, scorer: _Scorer) -> tuple:
    """The affine stage, retried from rotated starts when it correlates poorly."""
    first = register(
        template_file, moving, f"{prefix}affine_", "Affine", seed=seed, **AFFINE_OPTIONS
    )
    best = (scorer.score(first["warped_file"]), first["forward_transforms"])
    if best[0] >= RETRY_BELOW:
        return best
    for axis in range(3):
        for sign in (1, -1):
            tag = f"{prefix}start{axis}{'p' if sign > 0 else 'm'}_"
            start = _rotated_start(
                template_file, moving, axis, sign * RETRY_ANGLE_DEG, f"{tag}init.mat"
            )
            trial = register(
                template_file,
                moving,
                tag,
                "Affine",
                initial_transform=start,
                seed=seed,
                **AFFINE_OPTIONS,
            )
            score = scorer.score(trial["warped_file"])
            if score > best[0]:
                best = (score, trial["forward_transforms"])
    return best


def _clipped(in_file: str, out_file: str, scale: float) -> str:
    image = nib.load(in_file)
    data = np.minimum(np.asarray(image.dataobj, dtype=np.float32) / scale, SYN_CLIP_SUVR)
    nib.save(nib.Nifti1Image(data.astype(np.float32), image.affine), out_file)
    return out_file


def _syn(template_file: str, moving: str, affine: list[str], prefix: str, seed, scorer) -> list:
    """SyN after the affine stage, on images clipped at SUVR 1 so that tau cannot drive it."""
    reference = templates.reference_mask_path(atlases.DEFAULT_REFERENCE)
    in_reference = nib.load(reference).get_fdata() > 0
    affine_warped = nib.load(scorer.warp(affine, f"{prefix}affine_std.nii.gz")).get_fdata()
    scale = float(affine_warped[in_reference].mean())
    if not scale > 0:
        raise InputError(moving, "no PET signal in the reference region after the affine stage")
    result = register(
        _clipped(template_file, f"{prefix}template_clipped.nii.gz", 1.0),
        _clipped(moving, f"{prefix}pet_clipped.nii.gz", scale),
        f"{prefix}syn_",
        "SyNOnly",
        initial_transform=affine[0],
        seed=seed,
        **SYN_OPTIONS,
    )
    return result["forward_transforms"]


def normalise_pet(
    in_file: str,
    out_prefix: str,
    template_file: str | None = None,
    seed: int | None = 42,
    num_threads: int = 1,
    deformable: bool = False,
) -> dict:
    """Register a native PET to the tau PET template; return transforms, warped image and QC.

    Returns ``transforms`` (PET -> template, ANTs order: ``[affine]``, or ``[warp, affine]``
    with ``deformable``), ``warped_file`` (the PET on the template 2 mm grid, Bq/mL),
    ``similarity`` (Pearson r with the template inside the template brain mask) and
    ``seconds`` (wall time of the whole normalisation).
    """
    set_threads(num_threads)
    start = time.perf_counter()
    template_file = str(template_file or pet_template_path())
    moving = prepare_pet(in_file, f"{out_prefix}pet.nii.gz")
    scorer = _Scorer(template_file, moving, out_prefix)
    score, transforms = _affine(template_file, moving, out_prefix, seed, scorer)
    if deformable:
        transforms = _syn(template_file, moving, transforms, out_prefix, seed, scorer)
    warped_file = scorer.warp(transforms, f"{out_prefix}warped.nii.gz")
    if deformable:
        score = scorer.score(warped_file)
    return {
        "transforms": list(transforms),
        "warped_file": warped_file,
        "similarity": float(score),
        "seconds": time.perf_counter() - start,
    }
