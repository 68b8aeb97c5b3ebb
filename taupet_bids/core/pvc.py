"""Partial-volume correction (PVC): geometric transfer matrix, RBV and Müller-Gärtner.

Plain NumPy/SciPy functions on arrays; :func:`correct` runs one method the way the app does.
The point-spread function (PSF) is a Gaussian, given as its full width at half maximum (FWHM)
in mm, isotropic or per axis, on an axis-aligned grid. The label image every method needs (one
that covers every voxel) is built by :mod:`taupet_bids.core.pvc_segmentation`.

* **GTM** (Rousset, Ma & Evans 1998, J Nucl Med 39:904): the observed mean ``t_i`` of region
  ``i`` is ``sum_j W_ij T_j``, where ``T_j`` is the true (uniform) value of region ``j`` and
  ``W_ij`` the mean over region ``i`` of region ``j``'s indicator blurred by the PSF (its
  regional spread function). Solving ``W T = t`` gives the regional values. Exact when uptake
  is piecewise constant on the segmentation and the PSF is right; every voxel that carries
  signal must belong to some region, so the segmentation must cover the whole image.
* **RBV**, region-based voxel-wise correction (Thomas et al. 2011, Eur J Nucl Med Mol Imaging
  38:1104): the GTM values painted on the segmentation give a synthetic sharp image ``S``; the
  corrected image is ``observed * S / (S blurred)``, which keeps within-region texture.
* **MG**, Müller-Gärtner et al. (1992, J Cereb Blood Flow Metab 12:571): in grey-matter voxels,
  ``(observed - (non-grey image) blurred) / (grey mask blurred)``. The classic method takes a
  single white-matter value and zero for CSF; here every non-grey region keeps its own value
  from the GTM (as FreeSurfer's PETSurfer does for its MG variant), and grey voxels whose
  blurred grey fraction is below ``min_gm_fraction`` are left undefined (NaN).

The blur is ``scipy.ndimage.gaussian_filter`` with zero padding outside the field of view,
truncated at 4 standard deviations, used identically by every method here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

#: sigma = FWHM / (2 sqrt(2 ln 2)) for a Gaussian.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
#: Gaussian kernels are truncated at this many standard deviations (SciPy's default).
TRUNCATE = 4.0
#: Below this blurred grey-matter fraction, MG leaves a voxel undefined (NaN).
MIN_GM_FRACTION = 0.1
PVC_METHODS = ("gtm", "rbv", "mg")

Fwhm = float | Sequence[float]


@dataclass(frozen=True)
class GTMResult:
    """Regional values of a GTM solve, one entry per label (ascending label order)."""

    labels: np.ndarray
    corrected: np.ndarray
    observed: np.ndarray
    n_voxels: np.ndarray
    matrix: np.ndarray

    @property
    def condition_number(self) -> float:
        """2-norm condition number of the transfer matrix (noise amplification bound)."""
        return float(np.linalg.cond(self.matrix))

    def values(self) -> dict[int, float]:
        """Label -> corrected value."""
        return dict(zip(self.labels.tolist(), self.corrected.tolist(), strict=True))


def fwhm_to_sigma(fwhm_mm: Fwhm, zooms: Sequence[float]) -> tuple[float, float, float]:
    """Per-axis Gaussian sigma in voxels from a FWHM in mm (scalar = isotropic)."""
    fwhm = np.broadcast_to(np.asarray(fwhm_mm, dtype=float), (3,))
    if np.any(fwhm < 0):
        raise ValueError(f"FWHM must be >= 0 mm, got {fwhm_mm}")
    sigma = fwhm / FWHM_PER_SIGMA / np.asarray(zooms[:3], dtype=float)
    return tuple(float(s) for s in sigma)


def combine_fwhm(*fwhms_mm: float) -> float:
    """FWHM of Gaussians convolved in sequence: the root of the sum of squares."""
    return float(np.sqrt(sum(float(f) ** 2 for f in fwhms_mm)))


def psf_fwhm_from_sidecar(
    sidecar: Mapping, scanner_fwhm_mm: float | None = None, default_scanner_fwhm_mm: float = 0.0
) -> float:
    """Image resolution (FWHM, mm) from a BIDS-PET sidecar and the scanner's own resolution.

    BIDS has no field for the scanner's intrinsic resolution, so it is a parameter (e.g. the
    reconstructed-image FWHM from the manufacturer's NEMA NU-2 report). A Gaussian
    post-reconstruction filter (``ReconFilterType`` "Gaussian", ``ReconFilterSize`` = its
    FWHM in mm) adds in quadrature; any other non-empty filter type is an error because its
    width cannot be read as a Gaussian FWHM.
    """
    scanner = default_scanner_fwhm_mm if scanner_fwhm_mm is None else scanner_fwhm_mm
    kind = sidecar.get("ReconFilterType")
    kinds = [kind] if isinstance(kind, str) or kind is None else list(kind)
    sizes = sidecar.get("ReconFilterSize")
    sizes = [sizes] if np.isscalar(sizes) or sizes is None else list(sizes)
    filters = []
    for position, name in enumerate(kinds):
        if name is None or str(name).strip().lower() in ("", "none", "n/a"):
            continue
        if "gauss" not in str(name).lower():
            raise ValueError(
                f"ReconFilterType {name!r} is not Gaussian: give the PSF FWHM explicitly"
            )
        size = sizes[position] if position < len(sizes) else None
        if not isinstance(size, (int, float)) or not np.isfinite(size) or size < 0:
            raise ValueError(
                f"ReconFilterType {name!r} needs ReconFilterSize (its FWHM in mm), got {size!r}"
            )
        filters.append(float(size))
    fwhm = combine_fwhm(scanner, *filters)
    if fwhm <= 0:
        raise ValueError("no PSF: give the scanner resolution or a FWHM explicitly")
    return fwhm


def blur(image: np.ndarray, sigma_vox: Sequence[float]) -> np.ndarray:
    """The image convolved with the Gaussian PSF (zero outside the field of view)."""
    return ndimage.gaussian_filter(
        np.asarray(image, dtype=np.float64), sigma_vox, mode="constant", truncate=TRUNCATE
    )


@dataclass(frozen=True)
class TissueMixing:
    """Regions that share voxels: each voxel split between ``K`` labels by weights summing to 1.

    ``labels`` and ``weights`` are (K, X, Y, Z). A hard label image is the case K = 1 with
    weight 1. Built by :func:`taupet_bids.core.pvc_segmentation.tissue_mixing` from the
    subject's grey- and white-matter fractions, so that a 2 mm voxel half grey matter and half
    CSF counts half to its cortical region and half to CSF, as its signal does.
    """

    labels: np.ndarray
    weights: np.ndarray


def _layers(seg: np.ndarray, mixing: TissueMixing | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(labels, weights) per layer; a hard ``seg`` is one layer of weight 1."""
    if mixing is None:
        return [(seg, np.ones(seg.shape))]
    if mixing.labels.shape != mixing.weights.shape or mixing.labels.shape[1:] != seg.shape:
        raise ValueError(
            f"tissue mixing of shape {mixing.labels.shape} does not fit the segmentation "
            f"{seg.shape}"
        )
    labels = np.rint(mixing.labels).astype(np.int64)
    return [(labels[k], np.asarray(mixing.weights[k], np.float64)) for k in range(len(labels))]


def _labels_of(
    layers: list[tuple[np.ndarray, np.ndarray]], labels: Iterable[int] | None
) -> np.ndarray:
    present = np.unique(np.concatenate([lab[w > 0] for lab, w in layers]))
    if labels is None:
        return present
    wanted = np.asarray(sorted(set(int(v) for v in labels)), dtype=np.int64)
    missing = np.setdiff1d(present, wanted)
    if missing.size:
        raise ValueError(f"segmentation has labels outside the region list: {missing[:10]}")
    return wanted[np.isin(wanted, present)]


def _boxes(indices: list[np.ndarray], layers, n: int) -> list[tuple[slice, ...] | None]:
    """Bounding box of each region over every layer where it has weight."""
    boxes: list[tuple[slice, ...] | None] = [None] * n
    for index, (_, weight) in zip(indices, layers, strict=True):
        for j, box in enumerate(ndimage.find_objects(np.where(weight > 0, index + 1, 0), n)):
            if box is None:
                continue
            old = boxes[j] or box
            boxes[j] = tuple(
                slice(min(a.start, b.start), max(a.stop, b.stop))
                for a, b in zip(old, box, strict=True)
            )
    return boxes


def transfer_matrix(
    seg: np.ndarray,
    sigma_vox: Sequence[float],
    labels: Iterable[int] | None = None,
    mixing: TissueMixing | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, voxel counts, W) with ``W[i, j]`` = mean over region i of region j blurred.

    Each region's map (its indicator, or with ``mixing`` its weights) is blurred inside its
    bounding box padded by the kernel's reach, so the cost follows the regions' sizes rather
    than (number of regions x image size). Means over a region are weighted by its map, and
    its voxel count is the sum of its weights.
    """
    seg = np.asarray(seg)
    if seg.ndim != 3:
        raise ValueError(f"segmentation must be 3D, got shape {seg.shape}")
    layers = _layers(seg, mixing)
    labels = _labels_of(layers, labels)
    indices = [np.minimum(np.searchsorted(labels, lab), labels.size - 1) for lab, _ in layers]
    counts = sum(
        np.bincount(index.ravel(), weights=w.ravel(), minlength=labels.size)
        for index, (_, w) in zip(indices, layers, strict=True)
    )
    reach = [int(np.ceil(TRUNCATE * s)) + 1 for s in sigma_vox]
    matrix = np.zeros((labels.size, labels.size))
    for j, box in enumerate(_boxes(indices, layers, labels.size)):
        if box is None:
            continue
        padded = tuple(
            slice(max(b.start - r, 0), min(b.stop + r, n))
            for b, r, n in zip(box, reach, seg.shape, strict=True)
        )
        local = [(index[padded], w[padded]) for index, (_, w) in zip(indices, layers, strict=True)]
        spread = blur(sum(w * (index == j) for index, w in local), sigma_vox)
        for index, w in local:
            matrix[:, j] += np.bincount(
                index.ravel(), weights=(w * spread).ravel(), minlength=labels.size
            )
    return labels, counts, matrix / counts[:, None]


def regional_means(
    image: np.ndarray, seg: np.ndarray, labels: np.ndarray, mixing: TissueMixing | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, count) of ``image`` over each label in ``labels`` (sorted; weighted by ``mixing``)."""
    image = np.asarray(image, np.float64)
    sums = np.zeros(labels.size)
    counts = np.zeros(labels.size)
    for lab, w in _layers(np.asarray(seg), mixing):
        index = np.minimum(np.searchsorted(labels, lab), labels.size - 1).ravel()
        known = (labels[index] == lab.ravel()) & (w.ravel() > 0)
        counts += np.bincount(index[known], weights=w.ravel()[known], minlength=labels.size)
        sums += np.bincount(index[known], weights=(w * image).ravel()[known], minlength=labels.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts, counts


def _check_inputs(image: np.ndarray, seg: np.ndarray) -> None:
    if image.shape != seg.shape:
        raise ValueError(f"image shape {image.shape} differs from segmentation {seg.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError("image has non-finite voxels; PVC needs a finite image")


def gtm(
    image: np.ndarray,
    seg: np.ndarray,
    sigma_vox: Sequence[float],
    labels: Iterable[int] | None = None,
    mixing: TissueMixing | None = None,
) -> GTMResult:
    """Regional values by the geometric transfer matrix (Rousset et al. 1998).

    ``seg`` is an integer label image covering every voxel (label 0 is a region like any
    other, typically the background). ``labels`` optionally lists the expected labels; labels
    absent from ``seg`` are dropped. With ``mixing`` the regions are soft (probabilistic, as
    PETPVC's GTM takes them): the model is ``image = blur(sum_j T_j * weight_j)``.
    """
    image = np.asarray(image, dtype=np.float64)
    seg = np.rint(seg).astype(np.int64)
    _check_inputs(image, seg)
    labels, counts, matrix = transfer_matrix(seg, sigma_vox, labels, mixing)
    observed, _ = regional_means(image, seg, labels, mixing)
    corrected = np.linalg.solve(matrix, observed)
    return GTMResult(labels, corrected, observed, np.rint(counts).astype(np.int64), matrix)


def _painted(
    seg: np.ndarray, values: Mapping[int, float], mixing: TissueMixing | None, where=None
) -> np.ndarray:
    """Sum over layers of weight x the layer label's value (``where``: a per-label filter)."""
    keep = {k: v for k, v in values.items() if where is None or where(k)}
    out = np.zeros(np.shape(seg))
    for lab, w in _layers(np.asarray(seg), mixing):
        out += w * paint(lab, keep)
    return out


def paint(seg: np.ndarray, values: Mapping[int, float], fill: float = 0.0) -> np.ndarray:
    """An image with each label's value (labels not in ``values`` get ``fill``)."""
    seg = np.rint(seg).astype(np.int64)
    labels = np.unique(seg)
    lut = np.array([values.get(int(lab), fill) for lab in labels], dtype=np.float64)
    return lut[np.searchsorted(labels, seg)]


def rbv(
    image: np.ndarray,
    seg: np.ndarray,
    sigma_vox: Sequence[float],
    regional: Mapping[int, float] | None = None,
    mixing: TissueMixing | None = None,
) -> np.ndarray:
    """Region-based voxel-wise correction (Thomas et al. 2011).

    ``regional`` are the label values of the synthetic image (default: the GTM of ``image``).
    Where the blurred synthetic image is not positive the observed voxel is kept. With
    ``mixing`` the synthetic image mixes the regions as the voxels do, so a voxel of the result
    is its tissue mixture at full resolution (regional means are then not tissue values).
    """
    image = np.asarray(image, dtype=np.float64)
    seg = np.rint(seg).astype(np.int64)
    _check_inputs(image, seg)
    if regional is None:
        regional = gtm(image, seg, sigma_vox, mixing=mixing).values()
    synthetic = _painted(seg, regional, mixing)
    blurred = blur(synthetic, sigma_vox)
    tiny = np.abs(blurred) <= 1e-9 * max(float(np.abs(synthetic).max()), 1e-30)
    ratio = np.divide(synthetic, blurred, out=np.ones_like(blurred), where=~tiny)
    return image * ratio


def mueller_gaertner(
    image: np.ndarray,
    seg: np.ndarray,
    sigma_vox: Sequence[float],
    gm_labels: Iterable[int],
    regional: Mapping[int, float] | None = None,
    min_gm_fraction: float = MIN_GM_FRACTION,
    mixing: TissueMixing | None = None,
) -> np.ndarray:
    """Müller-Gärtner (1992) grey-matter correction; NaN outside grey matter.

    Non-grey regions contribute their ``regional`` values (default: the GTM of ``image``),
    blurred; the remainder is divided by the blurred grey-matter fraction (with ``mixing``,
    each voxel's grey share, not a 0/1 mask).
    """
    image = np.asarray(image, dtype=np.float64)
    seg = np.rint(seg).astype(np.int64)
    _check_inputs(image, seg)
    grey_labels = {int(v) for v in gm_labels}
    grey = np.isin(seg, np.asarray(sorted(grey_labels), dtype=np.int64))
    if not grey.any():
        raise ValueError("no grey-matter voxels: check gm_labels")
    if regional is None:
        regional = gtm(image, seg, sigma_vox, mixing=mixing).values()
    share = {label: 1.0 for label in grey_labels}
    grey_share = _painted(seg, share, mixing)
    non_grey = _painted(seg, regional, mixing, where=lambda label: label not in grey_labels)
    fraction = blur(grey_share, sigma_vox)
    keep = grey & (fraction >= min_gm_fraction)
    out = np.full(image.shape, np.nan)
    out[keep] = (image - blur(non_grey, sigma_vox))[keep] / fraction[keep]
    return out


#: Labels added to the DK atlas so that the segmentation covers the whole image (air is 0).
BRAIN_REST_LABEL = 9001
HEAD_REST_LABEL = 9002
#: The SUVR reference region, its own GTM region so that its corrected value is solved for.
REFERENCE_LABEL = 9003
#: PET voxels outside the template's box (e.g. neck), when labels are pulled onto a PET grid.
OUTSIDE_LABEL = 9004
#: Head within a few mm of the brain (meninges, venous sinuses, inner skull) and the skull
#: beyond it: off-target binding there differs from scalp and face, and it spills into cortex.
EXTRACEREBRAL_INNER_LABEL = 9005
EXTRACEREBRAL_MIDDLE_LABEL = 9006
#: Voxels without PET data (beyond the PET's field of view once resampled, exactly 0): their
#: own region, so that a region cut by the field of view is judged by its measured part only.
NO_DATA_LABEL = 9007


def renormalise(
    corrected: np.ndarray, seg: np.ndarray, result: GTMResult, reference_label: int
) -> tuple[np.ndarray, float]:
    """The corrected image divided by its own mean over the reference region, and that mean.

    An SUVR image corrected for partial volume is still divided by the *uncorrected*
    reference mean; the reference loses and gains signal to its neighbours too, so the ratio
    is only right once the reference is corrected as well. Each method's own corrected
    reference is used (for GTM that is the reference's GTM value); where the method leaves
    the reference undefined (MG with a reference that is not grey matter) its GTM value is.
    """
    values = result.values()
    if reference_label not in values:
        raise ValueError(f"the segmentation has no reference label {reference_label}")
    in_reference = np.rint(seg) == reference_label
    inside = np.asarray(corrected)[in_reference]
    inside = inside[np.isfinite(inside)]
    value = float(inside.mean()) if inside.size else float(values[reference_label])
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"the corrected reference value is {value}, not positive")
    out = np.asarray(corrected, dtype=np.float64) / value
    if not inside.size:  # undefined there (MG, non-grey reference): its GTM value, now 1
        out[in_reference] = 1.0
    return out, value


@dataclass(frozen=True)
class Correction:
    """A corrected image, the GTM solve behind it and the reference value it was divided by."""

    image: np.ndarray
    gtm: GTMResult
    reference_value: float = 1.0


def correct(
    method: str,
    image: np.ndarray,
    seg: np.ndarray,
    sigma_vox: Sequence[float],
    labels: Iterable[int] | None = None,
    gm_labels: Iterable[int] | None = None,
    min_gm_fraction: float = MIN_GM_FRACTION,
    reference_label: int | None = None,
    mixing: TissueMixing | None = None,
) -> Correction:
    """One method of :data:`PVC_METHODS` as the app runs it, renormalised to the reference.

    Every method starts from the GTM solve: GTM paints its regional values, RBV and MG take
    them for the synthetic image and the non-grey regions. With ``reference_label`` the result
    is divided by its own corrected reference (:func:`renormalise`), so an SUVR stays an SUVR.
    ``mixing`` makes the regions soft (:class:`TissueMixing`) for every method.
    """
    if method not in PVC_METHODS:
        raise ValueError(f"unknown PVC method {method!r}; expected one of {PVC_METHODS}")
    if method == "mg" and gm_labels is None:
        raise ValueError("Müller-Gärtner needs the grey-matter labels")
    result = gtm(image, seg, sigma_vox, labels, mixing)
    values = result.values()
    if method == "gtm":
        corrected = paint(seg, values)
    elif method == "rbv":
        corrected = rbv(image, seg, sigma_vox, values, mixing)
    else:
        corrected = mueller_gaertner(
            image, seg, sigma_vox, gm_labels, values, min_gm_fraction, mixing
        )
    if reference_label is None:
        return Correction(corrected, result)
    corrected, reference_value = renormalise(corrected, seg, result, reference_label)
    return Correction(corrected, result, reference_value)


def regional_values(corrected: np.ndarray, seg: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """index, value: the corrected image's mean over each label (finite voxels; NaN if none).

    For GTM these are the GTM values (divided by the reference's, when renormalised). Values do
    not depend on the grid, so they can be painted on the template labels (:func:`paint`)
    instead of resampling the image.
    """
    means, _ = regional_means(np.nan_to_num(corrected, nan=0.0), seg, labels)
    finite, _ = regional_means(np.isfinite(corrected).astype(float), seg, labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(finite > 0, means / finite, np.nan)
    return pd.DataFrame({"index": labels, "value": values})
