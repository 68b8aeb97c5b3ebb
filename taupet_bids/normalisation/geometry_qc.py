"""Geometry QC of a normalised PET that does not depend on the tracer.

The template correlation of :mod:`taupet_bids.normalisation.qc` compares the PET with a *tau*
PET template, so an amyloid or FDG scan scores low however well it is normalised, and a tau scan
of an unusual anatomy can score high while it is a centimetre off. These checks look at the head
instead, whose outline every tracer shows (any tissue has some signal, air has none):

- **Head outline.** The PET's own head (its template-space image smoothed, thresholded at half
  the level of its own outer tissue, holes filled; :func:`pet_head_mask`) is compared with the
  template's head (the template T1w above :data:`TEMPLATE_HEAD_T1W`) over the cranial vault
  (above :data:`VAULT_MIN_Z_MM`, inside the field of view). The signed distance of the PET's
  outline at each template outline point is fitted by a shift, an isotropic scale and a small
  rotation (least squares): ``HeadShiftMm`` is how far, ``HeadScalePct`` how much larger
  (positive) or smaller, and ``HeadRotationDeg`` how far turned the PET's head is against the
  template's. ``HeadDice`` is the masks' overlap and ``HeadOutlineMm`` the mean distance of the
  PET's outline from the template's.
- **Reference placement.** ``ReferenceInHead`` is the fraction of the reference mask inside the
  PET's head; ``PosteriorFossaOutlineMm`` is the mean distance of the PET's outline from the
  template's at the outline points nearest the cerebellum (the occiput over it), where a
  cerebellar reference mask that slid below or behind the cerebellum shows first (the same
  points for every reference region).
- **Refinement disagreement** (``network+ants``): how far the short affine refinement moved the
  template brain from where the network put it (mean, mm).
- **Brain check**: how far a second short registration moves the template brain to fit the
  normalised PET, how much it scales it, and how much a composite SUVR would change if it were
  right (``RegistrationCheckMm``, ``RegistrationCheckScalePct``, ``RegistrationCheckSUVRPct``;
  :mod:`taupet_bids.normalisation.registration_check`), which sees the brain where the outline
  sees only the head.

The thresholds below are calibrated against composite SUVR errors on simulated realistic heads
(benchmarks/geometry_qc_calibration.py). The head outline alone cannot see every miss that
matters: a 3-5 mm shift or a 3 % scaling can move a small composite by more than 4 % and leave
the outline within a good normalisation's residual; the brain check catches most of them
(docs/mrless.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import nibabel as nib
import numpy as np
from scipy import ndimage

from taupet_bids import templates
from taupet_bids.core.grids import linear_coordinates

#: Template T1w value above which a voxel is head (the simulator's head mask uses the same).
TEMPLATE_HEAD_T1W = 1000.0
#: PET smoothing (SD, mm) before thresholding, and the threshold as a fraction of its 99th
#: percentile: low enough that scalp and soft tissue count as head for a tau, amyloid or FDG
#: scan, high enough to leave reconstruction noise in the air out.
HEAD_SMOOTHING_MM = 2.0
HEAD_FRACTION = 0.05
#: Depth (mm) of the shell inside the first outline whose median sets the final threshold.
SHELL_MM = (3.0, 8.0)
SHELL_PERCENTILE = 50.0
HEAD_ITERATIONS = 2
#: Only the cranial vault is compared (face, neck and shoulders differ between people).
VAULT_MIN_Z_MM = -10.0
#: Outline points this close to the edge of the PET's field of view are left out.
FOV_MARGIN_MM = 8.0
#: Outline points within this distance of this template region make the posterior fossa check.
FOSSA_NEIGHBOURHOOD_MM = 40.0
FOSSA_REGION = "InfCerebGrey"
#: Fewer outline points than this: the fit is not attempted (values NaN, no flag).
MIN_OUTLINE_POINTS = 200

#: Flag thresholds. The four outline thresholds and the brain check's three were tuned together
#: by benchmarks/geometry_qc_calibration.py on 20 realistic heads (the most misplacements that
#: move a composite by more than 4 % flagged, at most 10 % of acceptable normalisations flagged)
#: and scored on 20 others: 95 % of those misplacements flagged, 10 % false alarms; the outline
#: alone caught 66 % (docs/mrless.md).
MAX_HEAD_SHIFT_MM = 10.0
MAX_HEAD_SCALE_PCT = 6.0
#: ``HeadRotationDeg`` reads about 0.7 of a true turn of 4-12 degrees (a fit linear in a small
#: rotation, on a nearly round vault), so 9 flags turns of about 13 degrees; an index, not an
#: angle ("Geometry QC calibration" in docs/benchmarks.md).
MAX_HEAD_ROTATION_DEG = 9.0
MIN_HEAD_DICE = 0.90
MIN_REFERENCE_IN_HEAD = 0.98
MAX_POSTERIOR_FOSSA_OUTLINE_MM = 5.0
MAX_REFINEMENT_SHIFT_MM = 4.0
#: The brain check (:mod:`taupet_bids.normalisation.registration_check`).
MAX_REGISTRATION_CHECK_MM = 4.5
MAX_REGISTRATION_CHECK_SCALE_PCT = 4.0
MAX_REGISTRATION_CHECK_SUVR_PCT = 5.0


@cache
def template_head() -> tuple[np.ndarray, np.ndarray]:
    """The template's head mask on the 2 mm grid and the grid's affine."""
    image = nib.load(templates.t1w_path(templates.WORKING_RESOLUTION))
    return _filled(np.asarray(image.dataobj) > TEMPLATE_HEAD_T1W), image.affine


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, count + 1))
    return labels == (int(np.argmax(sizes)) + 1)


def pet_head_mask(pet: np.ndarray, voxel_mm: float) -> np.ndarray:
    """The PET's head: where the smoothed PET reaches half the level of its own outer tissue.

    A first mask (above :data:`HEAD_FRACTION` of the 99th percentile) finds the head; the level
    of the tissue just inside its outline (median over a shell :data:`SHELL_MM` deep: the
    scalp, not the skull or meninges, whose signal varies most between tracers) is that scan's
    outer level, and half of it is where a blurred edge really lies, whether the brain inside is
    bright (FDG) or not (tau).
    """
    smooth = ndimage.gaussian_filter(
        np.nan_to_num(pet).astype(np.float32), HEAD_SMOOTHING_MM / voxel_mm
    )
    positive = smooth[smooth > 0]
    if positive.size == 0:
        return np.zeros(pet.shape, bool)
    head = _filled(smooth > HEAD_FRACTION * np.percentile(positive, 99))
    for _ in range(HEAD_ITERATIONS):
        depth = ndimage.distance_transform_edt(head, sampling=voxel_mm)
        shell = (depth > SHELL_MM[0]) & (depth <= SHELL_MM[1])
        if not shell.any():
            break
        head = _filled(smooth > 0.5 * float(np.percentile(smooth[shell], SHELL_PERCENTILE)))
    return head


def _filled(head: np.ndarray) -> np.ndarray:
    """Holes filled slice by slice (an open field of view still fills), largest component."""
    filled = np.zeros_like(head)
    for k in range(head.shape[2]):
        filled[:, :, k] = ndimage.binary_fill_holes(head[:, :, k])
    return _largest_component(filled)


def signed_distance(mask: np.ndarray, voxel_mm: float) -> np.ndarray:
    """Distance (mm) to the mask's outline: positive outside, negative inside."""
    outside = ndimage.distance_transform_edt(~mask, sampling=voxel_mm)
    inside = ndimage.distance_transform_edt(mask, sampling=voxel_mm)
    return np.where(mask, -inside + voxel_mm / 2, outside - voxel_mm / 2)


def _outline(mask: np.ndarray) -> np.ndarray:
    """The mask's outer voxels (the array's border is not an outline)."""
    return mask & ~ndimage.binary_erosion(mask, border_value=1)


def field_of_view_slab(
    pet: np.ndarray, head: np.ndarray, voxel_mm: float, margin_mm: float = FOV_MARGIN_MM
) -> np.ndarray:
    """Template slices the PET's axial field of view covers, less ``margin_mm``.

    A slice is covered when the PET is non-zero in at least half as many voxels as the template
    head has there (air that reads exactly zero then does not shrink it); the PET's transaxial
    field of view is assumed to hold the head.
    """
    covered = np.isfinite(pet) & (pet != 0)
    in_slice = covered.sum(axis=(0, 1)) >= 0.5 * np.maximum(head.sum(axis=(0, 1)), 1)
    margin = int(round(margin_mm / voxel_mm))
    if margin:
        in_slice = ndimage.binary_erosion(in_slice, iterations=margin, border_value=1)
    return np.broadcast_to(in_slice[None, None, :], pet.shape)


def fit_shift_scale(
    distance: np.ndarray, normals: np.ndarray, points: np.ndarray, centre: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
    """Shift ``t`` (mm), scale ``s`` and small rotation ``w`` (radians, axis times angle) with
    ``distance ~ -n.(t + s q + w x q)``, ``q = p - c``.

    ``distance`` is the PET outline's signed distance at template outline points ``p`` (3, N)
    with outward normals ``n`` (3, N): where the PET's head reaches beyond the template's, the
    point is inside it (negative distance), which an outward move (``n.t > 0``) explains. The
    rotation term is linear because ``n.(w x q) = w.(q x n)``.
    """
    offsets = points - centre[:, None]
    design = np.column_stack(
        [normals.T, np.einsum("in,in->n", normals, offsets), np.cross(offsets.T, normals.T)]
    )
    solution, *_ = np.linalg.lstsq(design, -distance, rcond=None)
    return solution[:3], float(solution[3]), solution[4:]


@dataclass(frozen=True)
class _Outline:
    """The template head's outline points (voxel mask), outward normals and world positions."""

    mask: np.ndarray
    normals: np.ndarray
    world: np.ndarray
    centre: np.ndarray


@cache
def template_outline() -> _Outline:
    """The template head's outline with outward normals (world axes), computed once."""
    head, affine = template_head()
    voxel_mm = float(abs(affine[0, 0]))
    outline = _outline(head)
    smooth = ndimage.gaussian_filter(signed_distance(head, voxel_mm), 1.0)
    normals = np.stack([np.gradient(smooth, axis=k)[outline] for k in range(3)])
    normals /= np.maximum(np.linalg.norm(normals, axis=0), 1e-6)
    normals *= np.sign(np.diag(affine)[:3])[:, None]  # voxel axes -> world (RAS) axes
    points = linear_coordinates(affine, head.shape)
    return _Outline(outline, normals, points[:, outline], points[:, head].mean(axis=1))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else float("nan")


def geometry_qc(
    pet_std: np.ndarray,
    reference: np.ndarray,
    refinement_shift_mm: float | None = None,
    brain_check: dict | None = None,
) -> dict:
    """Tracer-independent QC values of a template-space PET (2 mm grid) and their flags
    (``brain_check``: the values of :mod:`.registration_check`, when it ran)."""
    head, affine = template_head()
    outline = template_outline()
    voxel_mm = float(abs(affine[0, 0]))
    slab = field_of_view_slab(pet_std, head, voxel_mm)
    vault_slices = linear_coordinates(affine, head.shape)[2][0, 0] >= VAULT_MIN_Z_MM
    region = slab & vault_slices[None, None, :]
    pet_head = pet_head_mask(pet_std, voxel_mm)
    pet_distance = signed_distance(pet_head, voxel_mm)[outline.mask]
    in_region = region[outline.mask]
    values: dict = {"HeadDice": round(_dice(head & region, pet_head & region), 4)}
    if in_region.sum() >= MIN_OUTLINE_POINTS:
        shift, scale, rotation = fit_shift_scale(
            pet_distance[in_region],
            outline.normals[:, in_region],
            outline.world[:, in_region],
            outline.centre,
        )
        values["HeadShiftMm"] = round(float(np.linalg.norm(shift)), 2)
        values["HeadShiftVectorMm"] = [round(float(v), 2) for v in shift]
        values["HeadScalePct"] = round(100 * scale, 2)
        values["HeadRotationDeg"] = round(float(np.degrees(np.linalg.norm(rotation))), 2)
        # what the rotation moves the outline by (RMS along the normals; reported, not flagged):
        # the vault is nearly round, so a turn of several degrees moves it by about a millimetre
        offsets = outline.world[:, in_region] - outline.centre[:, None]
        swept = np.einsum(
            "i,in->n", rotation, np.cross(offsets.T, outline.normals[:, in_region].T).T
        )
        values["HeadRotationMm"] = round(float(np.sqrt(np.mean(swept**2))), 2)
        values["HeadOutlineMm"] = round(float(np.abs(pet_distance[in_region]).mean()), 2)
    else:
        values.update(HeadShiftMm=float("nan"), HeadShiftVectorMm=[])
        values.update(HeadScalePct=float("nan"), HeadOutlineMm=float("nan"))
        values.update(HeadRotationDeg=float("nan"), HeadRotationMm=float("nan"))
    seen = reference & field_of_view_slab(pet_std, head, voxel_mm, margin_mm=0.0)
    values["ReferenceInHead"] = (  # its part in the field of view: coverage is flagged apart
        round(float(pet_head[seen].mean()), 4) if seen.any() else float("nan")
    )
    fossa = _posterior_fossa()[outline.mask] & slab[outline.mask]
    values["PosteriorFossaOutlineMm"] = (
        round(float(np.abs(pet_distance[fossa]).mean()), 2)
        if fossa.sum() >= MIN_OUTLINE_POINTS // 4
        else float("nan")
    )
    if refinement_shift_mm is not None:
        values["RefinementShiftMm"] = round(float(refinement_shift_mm), 2)
    if brain_check is not None:
        values.update({key: round(float(value), 2) for key, value in brain_check.items()})
    return {**values, "GeometryFlags": geometry_flags(values)}


@cache
def _posterior_fossa() -> np.ndarray:
    """Voxels within :data:`FOSSA_NEIGHBOURHOOD_MM` of the template's inferior cerebellar
    grey and behind its centre (the occiput over the cerebellum; the skull base in front of it
    is left out).

    The same region whatever the scan's reference: near the pons (FDG's reference) the nearest
    outline is the neck and skull base, which differ between people by centimetres, so a
    correctly normalised FDG scan was flagged there; a reference that slid with the brain moves
    the occiput over the cerebellum as well.
    """
    cerebellum = np.asarray(nib.load(templates.reference_mask_path(FOSSA_REGION)).dataobj) > 0
    _, affine = template_head()
    voxel_mm = float(abs(affine[0, 0]))
    near = ndimage.distance_transform_edt(~cerebellum, sampling=voxel_mm)
    behind = np.arange(cerebellum.shape[1]) < ndimage.center_of_mass(cerebellum)[1]
    if affine[1, 1] < 0:  # y axis runs posterior: "behind" is the other side
        behind = ~behind
    return (near <= FOSSA_NEIGHBOURHOOD_MM) & behind[None, :, None]


def geometry_flags(values: dict) -> list[str]:
    """Human-readable warnings for values beyond the thresholds (NaN: no flag)."""

    def beyond(key: str, limit: float, low: bool = False) -> bool:
        value = values.get(key, float("nan"))
        if value is None or np.isnan(value):
            return False
        return value < limit if low else abs(value) > limit

    flags = []
    if beyond("HeadShiftMm", MAX_HEAD_SHIFT_MM):
        flags.append(
            f"the PET's head outline is {values['HeadShiftMm']:.1f} mm from the template's "
            f"(> {MAX_HEAD_SHIFT_MM} mm): check the normalisation"
        )
    if beyond("HeadScalePct", MAX_HEAD_SCALE_PCT):
        flags.append(
            f"the PET's head is {values['HeadScalePct']:+.1f} % the size of the template's "
            f"(beyond {MAX_HEAD_SCALE_PCT} %): check the normalisation"
        )
    if beyond("HeadRotationDeg", MAX_HEAD_ROTATION_DEG):
        flags.append(
            f"the PET's head outline is turned {values['HeadRotationDeg']:.1f} degrees from the "
            f"template's (> {MAX_HEAD_ROTATION_DEG}): check the normalisation"
        )
    if beyond("HeadDice", MIN_HEAD_DICE, low=True):
        flags.append(
            f"head outline overlap with the template {values['HeadDice']:.2f} < {MIN_HEAD_DICE}"
        )
    if beyond("ReferenceInHead", MIN_REFERENCE_IN_HEAD, low=True):
        flags.append(
            f"only {values['ReferenceInHead']:.0%} of the reference region lies inside the "
            "PET's head"
        )
    if beyond("PosteriorFossaOutlineMm", MAX_POSTERIOR_FOSSA_OUTLINE_MM):
        distance = values["PosteriorFossaOutlineMm"]
        flags.append(
            f"the head outline over the posterior fossa (cerebellum and brainstem, where the "
            f"reference regions lie) is {distance:.1f} mm from the template's "
            f"(> {MAX_POSTERIOR_FOSSA_OUTLINE_MM} mm): check where the reference region landed"
        )
    if beyond("RefinementShiftMm", MAX_REFINEMENT_SHIFT_MM):
        shift = values["RefinementShiftMm"]
        flags.append(
            f"the refinement moved the network's normalisation by {shift:.1f} mm on average "
            f"(> {MAX_REFINEMENT_SHIFT_MM} mm): the network missed"
        )
    if beyond("RegistrationCheckMm", MAX_REGISTRATION_CHECK_MM):
        shift = values["RegistrationCheckMm"]
        flags.append(
            f"a registration of the tau PET template to the normalised PET moves the brain by "
            f"{shift:.1f} mm on average (> {MAX_REGISTRATION_CHECK_MM} mm): check the "
            "normalisation"
        )
    if beyond("RegistrationCheckScalePct", MAX_REGISTRATION_CHECK_SCALE_PCT):
        scale = values["RegistrationCheckScalePct"]
        flags.append(
            f"a registration of the tau PET template to the normalised PET scales the brain by "
            f"{scale:+.1f} % (beyond {MAX_REGISTRATION_CHECK_SCALE_PCT} %): check the "
            "normalisation"
        )
    if beyond("RegistrationCheckSUVRPct", MAX_REGISTRATION_CHECK_SUVR_PCT):
        change = values["RegistrationCheckSUVRPct"]
        flags.append(
            f"where a second registration puts the template's brain, a composite SUVR would "
            f"differ by {change:.1f} % (> {MAX_REGISTRATION_CHECK_SUVR_PCT} %): check the "
            "normalisation"
        )
    return flags
