"""QC of a spatially normalised PET: similarity to the tau PET template and field-of-view coverage.

Every scan, MR-based or MR-less, carries this QC of its normalisation; the thresholds below
decide its flags. The tracer-independent geometry checks (head outline, reference placement,
refinement disagreement) of :mod:`taupet_bids.normalisation.geometry_qc` join them: their
values sit beside these and their flags in the same list.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage

from taupet_bids import templates
from taupet_bids.normalisation.geometry_qc import geometry_qc
from taupet_bids.normalisation.pet_template import pet_template_path

#: Below this Pearson correlation with the tau PET template a normalisation is flagged. The
#: correlation is taken after a 4 mm (SD) Gaussian smoothing, over the template brain dilated by
#: 10 mm, so that the brain's outline, which any correct normalisation shares with the template,
#: outweighs the subject's own tau pattern and noise. Calibrated by benchmarks/qc_calibration.py
#: (docs/benchmarks.md): correct normalisations 0.90-0.97, moved by 10 mm or yawed 20 degrees
#: mostly below 0.80; a 5 mm error is not caught.
MIN_TEMPLATE_CORRELATION = 0.80
QC_SMOOTHING_VOXELS = 2.0
QC_SHELL_VOXELS = 5
#: Minimum fraction of the reference region and of the brain inside the PET field of view.
MIN_REFERENCE_COVERAGE = 0.95
MIN_BRAIN_COVERAGE = 0.90
#: Below this distance (mm) between the reference region and the edge of the PET's field of view
#: a scan is flagged. A scanner's last planes are its noisiest, and a normalisation that
#: stretches the brain into a cut fills the reference mask with signal, which the coverage check
#: above then passes (docs/mrless.md, head 24). About one PET resolution (FWHM); chosen, not
#: tuned, then checked on tuning heads apart from the benchmark's (geometry_qc_methods.py).
MIN_REFERENCE_MARGIN_MM = 6.0


def reference_margin_mm(covered: np.ndarray, reference: np.ndarray, voxel_mm: float) -> float:
    """Shortest distance (mm, voxel centre to voxel centre) from the covered part of the
    reference region to a voxel outside the field of view; NaN when the PET covers the whole
    template grid or none of the reference region (the coverage check speaks then)."""
    inside = reference & covered
    if covered.all() or not inside.any():
        return float("nan")
    return float(ndimage.distance_transform_edt(covered, sampling=voxel_mm)[inside].min())


def reference_edge_pct(
    pet_std: np.ndarray, reference: np.ndarray, within_field_of_view: bool = True
) -> float:
    """Largest change (%) of the reference mean when its mask moves by one voxel along any axis:
    how steep the uptake is across the reference region's edge in this scan. A placement error
    of that size costs every SUVR about this much (MK-6240's meningeal signal made it ~4 % per
    2 mm for InfCerebGrey; docs/mrless.md). Reported, not flagged: it describes the scan and
    the reference region, not whether the normalisation is right. NaN when the mask is empty.
    ``within_field_of_view=False`` keeps voxels beyond the field of view (zero), so that a
    reference the field of view cuts reads as steep as it is (the benchmarks' use)."""
    covered = np.isfinite(pet_std) & (pet_std != 0) if within_field_of_view else True
    seen = reference & covered
    if not seen.any():
        return float("nan")
    level = float(pet_std[seen].mean())
    changes = [
        abs(100 * (float(pet_std[np.roll(seen, step, axis=axis) & covered].mean()) / level - 1))
        for axis in range(3)
        for step in (-1, 1)
    ]
    return max(changes)


def normalisation_qc(
    pet_std: np.ndarray,
    reference_region: str,
    refinement_shift_mm: float | None = None,
    brain_check: dict | None = None,
    tau_tracer: bool = True,
) -> dict:
    """Similarity to the tau PET template, field-of-view coverage and geometry of a normalised
    PET (``refinement_shift_mm``: the network-vs-refined disagreement, when refinement ran;
    ``brain_check``: the values of :mod:`.registration_check`).

    ``tau_tracer`` False (FDG, TSPO, amyloid): the template correlation is recorded but not
    flagged. It compares the scan with a *tau* template, so it reads the other tracer's uptake
    pattern as a miss however well the scan is placed; the geometry checks judge their
    normalisation."""
    resolution = templates.WORKING_RESOLUTION
    template = np.asarray(nib.load(pet_template_path()).dataobj, dtype=np.float32)
    brain = np.asarray(nib.load(templates.brain_mask_path(resolution)).dataobj) > 0
    reference = (
        np.asarray(nib.load(templates.reference_mask_path(reference_region, resolution)).dataobj)
        > 0
    )
    covered = np.isfinite(pet_std) & (pet_std != 0)
    region = ndimage.binary_dilation(brain, iterations=QC_SHELL_VOXELS)
    smooth = ndimage.gaussian_filter(np.nan_to_num(pet_std), QC_SMOOTHING_VOXELS)
    score = float(np.corrcoef(smooth[region], template[region])[0, 1]) if covered.any() else 0.0
    values = {
        "TemplateCorrelation": round(score, 4),
        "ReferenceCoverage": round(float(covered[reference].mean()), 4),
        "BrainCoverage": round(float(covered[brain].mean()), 4),
    }
    edge = reference_edge_pct(pet_std, reference)
    if np.isfinite(edge):
        values["ReferenceEdgePct"] = round(edge, 2)
    margin = reference_margin_mm(covered, reference, resolution)
    if np.isfinite(margin):  # absent where not measurable: JSON has no NaN
        values["ReferenceMarginMm"] = round(margin, 1)
    flags = []
    if not tau_tracer:
        values["TemplateCorrelationNote"] = (
            "not flagged: the tau PET template does not describe this tracer's uptake"
        )
    elif score < MIN_TEMPLATE_CORRELATION:
        flags.append(
            f"normalised PET correlates poorly with the tau PET template ({score:.2f} < "
            f"{MIN_TEMPLATE_CORRELATION}): check the normalisation"
        )
    if values["ReferenceCoverage"] < MIN_REFERENCE_COVERAGE:
        flags.append(
            f"only {values['ReferenceCoverage']:.0%} of the {reference_region} reference region "
            "is inside the PET field of view: SUVR is unreliable"
        )
    if values.get("ReferenceMarginMm", np.inf) < MIN_REFERENCE_MARGIN_MM:
        flags.append(
            f"the {reference_region} reference region lies {values['ReferenceMarginMm']:.0f} mm "
            "from the edge of the PET field of view: its mean is unreliable there, and a "
            "normalisation may have stretched the brain into a cut"
        )
    if values["BrainCoverage"] < MIN_BRAIN_COVERAGE:
        flags.append(f"only {values['BrainCoverage']:.0%} of the brain is in the field of view")
    geometry = geometry_qc(pet_std, reference, refinement_shift_mm, brain_check)
    flags += geometry.pop("GeometryFlags")
    return {**values, **geometry, "Flags": flags}
