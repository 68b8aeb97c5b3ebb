"""Spatial operations with antspyx: N4, registration, resampling, template brain masks.

antspyx is the ANTs library as a Python wheel (no ANTs programs needed). Every function here
works on file names and returns file names or numbers. FLIRT matrices (the optional FSL path)
become ITK transforms with nitransforms, so both back ends compose with the same ANTs chain.

Determinism: antsRegistration samples the metric at randomly perturbed points; we always pass
an explicit ``--random-seed`` (through ``ants.config._random_seed``, the hook
``ants.registration`` reads) so a fixed seed gives the same transform on every run.
Threads: ITK reads ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` once, when a process first runs a
multi-threaded filter; later changes are ignored, so ``num_threads`` takes effect only for the
first antspyx call of a process (a fresh Nipype worker). Seeded results are bitwise identical
with one thread; with two, Mattes MI results differed between runs by ~0.1 mm (measured), as
ITK splits the metric sums between threads dynamically.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import ants
import nibabel as nib
import nitransforms.linear as nitl
import numpy as np
from scipy import ndimage

from taupet_bids.core import grids
from taupet_bids.errors import InputError

#: Transform types offered to workflows (a subset of what ``ants.registration`` accepts).
TRANSFORM_TYPES = (
    "Rigid",
    "QuickRigid",
    "DenseRigid",
    "Similarity",
    "Affine",
    "AffineFast",
    "SyN",
    "SyNRA",
    "SyNOnly",
    "SyNCC",
    "SyNAggro",
    "antsRegistrationSyNQuick[r]",
    "antsRegistrationSyNQuick[a]",
    "antsRegistrationSyNQuick[s]",
    "antsRegistrationSyN[r]",
    "antsRegistrationSyN[a]",
    "antsRegistrationSyN[s]",
)
INTERPOLATIONS = ("linear", "nearestNeighbor", "genericLabel", "bSpline", "lanczosWindowedSinc")
LABEL_INTERPOLATIONS = ("nearestNeighbor", "genericLabel")
LINEAR_METRICS = ("mattes", "GC", "meansquares")


def set_threads(num_threads: int) -> None:
    """Ask ITK (hence antspyx) for ``num_threads`` threads."""
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(max(1, int(num_threads)))


@contextmanager
def ants_seed(seed: int | None) -> Iterator[None]:
    """Pass ``--random-seed`` to every antsRegistration call inside the block."""
    previous = ants.config._random_seed
    ants.config._random_seed = None if seed is None else int(seed)
    try:
        yield
    finally:
        ants.config._random_seed = previous


#: Fewer iterations than antspyx's default (4 x 50): measured 7 s instead of 77 s on a 1 mm T1w.
N4_CONVERGENCE = {"iters": [50, 40, 30], "tol": 1e-6}


def n4_bias_correct(
    in_file: str,
    out_file: str,
    bias_file: str,
    mask_file: str | None = None,
    shrink_factor: int = 4,
) -> tuple[str, str]:
    """N4 (Tustison et al. 2010) on a T1w; returns (corrected image, bias field)."""
    image = ants.image_read(in_file)
    # Fitting only inside the head (not the air around it) makes N4 ~10x faster on a 1 mm T1w.
    mask = ants.image_read(mask_file) if mask_file else ants.get_mask(image, cleanup=0)
    bias = ants.n4_bias_field_correction(
        image,
        mask=mask,
        shrink_factor=shrink_factor,
        convergence=N4_CONVERGENCE,
        return_bias_field=True,
    )
    corrected = image / bias
    ants.image_write(corrected, out_file)
    ants.image_write(bias, bias_file)
    return out_file, bias_file


def similarity(fixed: np.ndarray, warped: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(Pearson correlation, normalised mutual information (H(A)+H(B))/H(A,B)) inside ``mask``.

    NMI (Studholme et al. 1999) ranges 1 (independent) to 2 (identical) and, unlike correlation,
    is meaningful across modalities (PET to T1w).
    """
    a = fixed[mask].astype(float)
    b = warped[mask].astype(float)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan"), float("nan")
    corr = float(np.corrcoef(a, b)[0, 1])
    joint, _, _ = np.histogram2d(a, b, bins=32)
    p = joint / joint.sum()

    def entropy(q: np.ndarray) -> float:
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    nmi = (entropy(p.sum(axis=1)) + entropy(p.sum(axis=0))) / entropy(p)
    return corr, float(nmi)


#: Small rigid probes of a finished alignment: shifts (mm) along, and rotations (degrees) about,
#: each axis through the mask's centre, in both directions.
PROBE_SHIFT_MM = 2.0
PROBE_ROTATION_DEG = 3.0


def alignment_margin(
    fixed: np.ndarray, warped: np.ndarray, mask: np.ndarray, affine: np.ndarray
) -> float:
    """Correlation inside ``mask`` as registered, minus the best of small rigid moves of it.

    A registration that converged sits at an optimum, so every small move (2 mm, 3 degrees)
    lowers the correlation and the margin is positive, whatever the contrast or the anatomy of
    the two images (which move the correlation itself). A miss of a few millimetres is not at
    the optimum: a move towards the right place raises the correlation and the margin is
    negative. ``affine`` is the voxel-to-world matrix both images share.
    """
    voxels = np.argwhere(mask)
    if len(voxels) < 2:
        return float("nan")
    points = grids.apply_affine(affine, voxels.T.astype(np.float32))
    centre = points.mean(axis=1)
    target = fixed[mask].astype(float)

    def correlation(matrix: np.ndarray) -> float:
        moved = grids.apply_affine(matrix, points - centre[:, None]) + centre[:, None]
        values = grids.sample(warped, affine, moved).astype(float)
        return float(np.corrcoef(target, values)[0, 1]) if values.std() > 0 else float("nan")

    probes = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            step = np.zeros(3)
            step[axis] = sign
            probes.append(grids.rigid_matrix(np.zeros(3), step * PROBE_SHIFT_MM))
            probes.append(grids.rigid_matrix(step * PROBE_ROTATION_DEG, np.zeros(3)))
    return correlation(np.eye(4)) - max(correlation(m) for m in probes)


#: The QC region of a template registration: the template's brain mask grown by this many
#: voxels, so a brain edge that misses the template's still counts.
SCORE_DILATION_VOXELS = 2


def template_scores(
    fixed: np.ndarray, warped: np.ndarray, brain_mask: np.ndarray, affine: np.ndarray
) -> dict[str, float]:
    """QC of a registration to a template: correlation, NMI and alignment margin in its brain.

    Inside the (grown) brain mask rather than the whole field of view, where the scalp, the
    neck and the background make the correlation depend on the head more than on the brain.
    """
    region = ndimage.binary_dilation(brain_mask, iterations=SCORE_DILATION_VOXELS)
    corr, nmi = similarity(fixed, warped, region)
    margin = alignment_margin(fixed, warped, region, affine)
    return {"correlation": corr, "nmi": nmi, "alignment_margin": margin}


def register(
    fixed_file: str,
    moving_file: str,
    out_prefix: str,
    transform_type: str = "Rigid",
    fixed_mask: str | None = None,
    moving_mask: str | None = None,
    initial_transform: str | None = None,
    seed: int | None = 42,
    metric: str = "mattes",
    fixed_resample_mm: float = 0.0,
    score_mask: str | None = None,
    **options,
) -> dict:
    """Register moving onto fixed; return files (warped, transforms) and QC similarity.

    ``metric`` drives the linear stages: Mattes MI across modalities (PET -> T1w); mean squares
    or global correlation (GC) within one modality, where they lock on rotations better.
    ``fixed_resample_mm`` registers to a coarser copy of the fixed image: a 2 mm T1w is all a
    PET (6-8 mm resolution) can use, and makes the rigid step ~8x faster than at 1 mm.
    ``options`` go to ``ants.registration`` as they are (e.g. ``syn_metric``, ``flow_sigma``,
    ``reg_iterations``). With ``score_mask`` (a brain mask on the fixed grid) the QC scores are
    :func:`template_scores` in that brain; without it, correlation and NMI in the fixed mask or
    wherever the fixed image is non-zero, and no alignment margin.
    """
    fixed = ants.image_read(fixed_file)
    if fixed_resample_mm > 0:
        spacing = (fixed_resample_mm,) * fixed.dimension
        fixed = ants.resample_image(fixed, spacing, use_voxels=False, interp_type=0)
    moving = ants.image_read(moving_file)
    fmask = ants.image_read(fixed_mask) if fixed_mask else None
    if fmask is not None and fixed_resample_mm > 0:
        fmask = ants.resample_image_to_target(fmask, fixed, interp_type="nearestNeighbor")
    mmask = ants.image_read(moving_mask) if moving_mask else None
    with ants_seed(seed):
        result = ants.registration(
            fixed,
            moving,
            type_of_transform=transform_type,
            initial_transform=initial_transform,
            outprefix=out_prefix,
            mask=fmask,
            moving_mask=mmask,
            aff_metric=metric,
            **options,
        )
    warped_file = f"{out_prefix}warped.nii.gz"
    ants.image_write(result["warpedmovout"], warped_file)
    warped = result["warpedmovout"].numpy()
    if score_mask:
        brain = ants.resample_image_to_target(
            ants.image_read(score_mask), fixed, interp_type="nearestNeighbor"
        )
        affine = nib.load(warped_file).affine
        scores = template_scores(fixed.numpy(), warped, brain.numpy() > 0, affine)
    else:
        region = fmask.numpy() > 0 if fmask is not None else fixed.numpy() > 0
        corr, nmi = similarity(fixed.numpy(), warped, region)
        scores = {"correlation": corr, "nmi": nmi, "alignment_margin": float("nan")}
    inverse = list(result["invtransforms"])
    return {
        "warped_file": warped_file,
        "forward_transforms": list(result["fwdtransforms"]),
        "forward_invert_flags": [False] * len(result["fwdtransforms"]),
        "inverse_transforms": inverse,
        "inverse_invert_flags": [name.endswith(".mat") for name in inverse],
        **scores,
    }


def fsl_to_itk(fsl_matrix: str, reference: str, moving: str, out_file: str) -> str:
    """Convert a FLIRT matrix to an ITK transform that ANTs can compose (via nitransforms)."""
    transform = nitl.load(fsl_matrix, fmt="fsl", reference=reference, moving=moving)
    transform.to_filename(out_file, fmt="itk")
    return out_file


def _check_flags(transforms: Sequence[str], invert: Sequence[bool] | None) -> list[bool]:
    flags = list(invert) if invert else [False] * len(transforms)
    if len(flags) != len(transforms):
        raise InputError(
            transforms[0] if transforms else None,
            f"{len(flags)} invert flags for {len(transforms)} transforms",
            "give one flag per transform",
        )
    return flags


def transform_points(
    points: np.ndarray, transforms: Sequence[str], invert_flags: Sequence[bool] | None = None
) -> np.ndarray:
    """Move world points (3, ...) in RAS mm through an ANTs transform list.

    ANTs maps *points* the way ``apply_transforms`` maps output-grid points: through the list from
    the fixed space of its resampling to the moving space. Its points are LPS, ours RAS, hence
    the flips on the way in and out.
    """
    import pandas as pd

    flags = _check_flags(transforms, invert_flags)
    lps = np.array([-1.0, -1.0, 1.0])[:, None]
    flat = points.reshape(3, -1).astype(np.float64) * lps
    table = pd.DataFrame(dict(zip("xyz", flat, strict=True)))
    moved = ants.apply_transforms_to_points(3, table, list(transforms), whichtoinvert=flags)
    out = moved[["x", "y", "z"]].to_numpy().T * lps
    return out.reshape(points.shape).astype(np.float32)


def apply_transforms(
    in_file: str,
    reference_file: str,
    transforms: Sequence[str],
    out_file: str,
    invert_flags: Sequence[bool] | None = None,
    interpolation: str = "linear",
    default_value: float = 0.0,
) -> str:
    """Resample a 3D image (or each frame of a 4D one) onto the reference grid.

    Continuous images are written float32; with a label interpolator and an integer-typed input
    the output keeps integer labels (int32). Transforms as antspyx takes them: each output-grid
    point is mapped through the list in order (first transform first) into the input image.
    """
    flags = _check_flags(transforms, invert_flags)
    source = nib.load(in_file)
    reference = ants.image_read(reference_file)
    if reference.dimension == 4:
        reference = ants.ndimage_to_list(reference)[0]
    moving = ants.image_read(in_file)
    frames = ants.ndimage_to_list(moving) if moving.dimension == 4 else [moving]
    resampled = [
        ants.apply_transforms(
            reference,
            frame,
            transformlist=list(transforms),
            interpolator=interpolation,
            whichtoinvert=flags,
            defaultvalue=default_value,
        ).numpy()
        for frame in frames
    ]
    data = np.stack(resampled, axis=-1) if moving.dimension == 4 else resampled[0]
    labels = interpolation in LABEL_INTERPOLATIONS and np.issubdtype(
        source.get_data_dtype(), np.integer
    )
    data = np.rint(data).astype(np.int32) if labels else data.astype(np.float32)
    ref_nii = nib.load(reference_file)
    out = nib.Nifti1Image(data, ref_nii.affine)
    out.header.set_xyzt_units(*source.header.get_xyzt_units())
    if moving.dimension == 4:
        out.header.set_zooms(ref_nii.header.get_zooms()[:3] + source.header.get_zooms()[3:4])
    out.header.set_data_dtype(data.dtype)
    nib.save(out, out_file)
    return out_file


def template_brain_mask(
    t1w_file: str,
    template_mask_file: str,
    transforms: Sequence[str],
    invert_flags: Sequence[bool] | None,
    mask_out: str,
    brain_out: str,
) -> tuple[str, str]:
    """Pull a template brain mask into T1w space and skull-strip the T1w with it."""
    apply_transforms(
        template_mask_file,
        t1w_file,
        transforms,
        mask_out,
        invert_flags=invert_flags,
        interpolation="nearestNeighbor",
    )
    mask_nii = nib.load(mask_out)
    mask = np.asarray(mask_nii.dataobj) > 0
    if not mask.any():
        raise InputError(template_mask_file, "brain mask is empty in T1w space", "check transforms")
    out_mask = nib.Nifti1Image(mask.astype(np.uint8), mask_nii.affine)
    out_mask.header.set_data_dtype(np.uint8)
    nib.save(out_mask, mask_out)
    t1w = nib.load(t1w_file)
    brain = np.asarray(t1w.dataobj, dtype=np.float32) * mask
    nib.save(nib.Nifti1Image(brain, t1w.affine, t1w.header), brain_out)
    return mask_out, brain_out
