"""CenTauRz: tau PET SUVR on a cross-tracer z-scaled unit (Villemagne et al. 2023).

Villemagne et al. (2023, Alzheimer's & Dementia: DADM 15:e12454, doi 10.1002/dad2.12454)
define five cortical masks (universal, mesial temporal, meta-temporal, temporo-parietal,
frontal; GAAIN CenTauR project) and the CenTauRz scale. Per tracer and mask, SUVR converts
linearly: ``CTRz = slope * SUVR + intercept``. The constants in :data:`CONVERSIONS` are those
attributed to Leuzy et al. (Alzheimer's & Dementia 2023, doi 10.1002/alz.061177); see
docs/pvc.md for how they were checked.

The constants hold for SUVR measured with the official masks and reference region in the
standard pipeline. That reference is the *whole* cerebellar grey matter (the GAAIN CenTauR
pipeline's ``voi_CerebGry_tau_2mm``), not the inferior cerebellar grey this app uses for
SUVR by default, so every CenTauRz value is computed from SUVR re-referenced to
:data:`REFERENCE_REGION`, whatever ``--reference-region`` says.

taupet-bids' own masks approximate the official ones from Desikan-Killiany regions
(:data:`APPROXIMATE_MASKS`), so values computed from them are labelled approximate; values
computed with the official mask images a user supplies are labelled with their source and not
as approximate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from taupet_bids import atlases, tracers

MASKS = ("universal", "mesial_temporal", "meta_temporal", "temporo_parietal", "frontal")
#: The reference region the CenTauRz constants were derived with (whole cerebellar grey).
REFERENCE_REGION = "CerebGrey"


@dataclass(frozen=True)
class Conversion:
    """``CTRz = slope * SUVR + intercept`` for one tracer and mask."""

    slope: float
    intercept: float

    def __call__(self, suvr):
        return self.slope * np.asarray(suvr, dtype=float) + self.intercept


def _row(*pairs: tuple[float, float]) -> dict[str, Conversion]:
    return {mask: Conversion(*pair) for mask, pair in zip(MASKS, pairs, strict=True)}


#: Tracer -> mask -> conversion, in the mask order of :data:`MASKS`.
CONVERSIONS: dict[str, dict[str, Conversion]] = {
    "FTP": _row(
        (13.63, -15.85), (10.42, -12.11), (12.95, -15.37), (13.75, -15.92), (11.61, -13.01)
    ),
    "MK6240": _row((10.08, -10.06), (7.28, -7.01), (9.36, -10.60), (9.98, -10.15), (10.05, -8.91)),
    "RO948": _row(
        (13.05, -15.57), (11.76, -13.08), (13.16, -16.19), (13.05, -15.62), (12.61, -13.45)
    ),
    "PI2620": _row((8.45, -9.61), (6.03, -6.83), (7.78, -9.33), (8.21, -9.52), (9.07, -9.01)),
    "GTP1": _row((10.67, -11.92), (7.88, -8.75), (9.60, -11.10), (10.84, -12.27), (9.41, -9.71)),
    "PMPBB3": _row(
        (16.73, -15.34), (7.97, -7.83), (11.78, -11.21), (16.16, -14.68), (15.70, -13.18)
    ),
}

#: The conversion's key for each tracer :mod:`taupet_bids.tracers` recognises (by its name there;
#: aliases are recognised in that one place).
CONVERSION_KEYS = {
    "flortaucipir": "FTP",
    "MK6240": "MK6240",
    "RO948": "RO948",
    "PI2620": "PI2620",
    "GTP1": "GTP1",
    "PMPBB3": "PMPBB3",
}

#: taupet-bids' approximation of each CenTauR mask by bilateral DK regions (see docs/pvc.md).
APPROXIMATE_MASKS: dict[str, tuple[str, ...]] = {
    "mesial_temporal": ("entorhinal", "parahippocampal"),
    "meta_temporal": atlases.metatemporal_regions(),
    "temporo_parietal": (
        "inferiortemporal",
        "middletemporal",
        "superiortemporal",
        "bankssts",
        "supramarginal",
        "inferiorparietal",
        "superiorparietal",
        "precuneus",
        "posteriorcingulate",
        "isthmuscingulate",
    ),
    "frontal": (
        "superiorfrontal",
        "rostralmiddlefrontal",
        "caudalmiddlefrontal",
        "parsopercularis",
        "parstriangularis",
        "parsorbitalis",
        "lateralorbitofrontal",
        "medialorbitofrontal",
        "frontalpole",
    ),
}
APPROXIMATE_MASKS["universal"] = tuple(
    dict.fromkeys(
        region
        for mask in ("mesial_temporal", "meta_temporal", "temporo_parietal", "frontal")
        for region in APPROXIMATE_MASKS[mask]
    )
)

APPROXIMATE_LABEL = "approximate (taupet-bids DK-based masks, not the official CenTauR masks)"
OFFICIAL_LABEL = "official CenTauR masks (user-supplied)"
#: Added to the label when the official masks came without the official reference mask.
OWN_REFERENCE_NOTE = "; reference: taupet-bids CerebGrey (DK cerebellum cortex), not the official"
#: File name of the official reference mask in a --centaur-masks folder.
REFERENCE_MASK_NAME = "reference"
#: Columns of a CenTauRz table, with the description written into the table's sidecar.
COLUMN_DESCRIPTIONS = {
    "mask": "CenTauR mask (universal, mesial_temporal, meta_temporal, temporo_parietal, frontal)",
    "tracer": "tracer key of the conversion",
    "reference": "reference region of the SUVR in this table (whole cerebellar grey, as the "
    "CenTauRz constants require, whatever the run's reference region)",
    "suvr": "mean SUVR in the mask, divided by the mean in the reference",
    "centaurz": "CenTauRz = slope * SUVR + intercept (constants: docs/pvc.md)",
    "approximate": "true when the mask is taupet-bids' DK-based approximation",
    "mask_source": "which masks were used",
}
TABLE_COLUMNS = list(COLUMN_DESCRIPTIONS)


def canonical_tracer(name: str) -> str:
    """The :data:`CONVERSIONS` key of a tracer name (``AV1451``, ``18F-MK-6240``, ...)."""
    tracer = tracers.identify_tracer(str(name))
    if tracer is not None and tracer.name in CONVERSION_KEYS:
        return CONVERSION_KEYS[tracer.name]
    raise KeyError(f"no CenTauRz conversion for tracer {name!r}; known: {sorted(CONVERSIONS)}")


def to_centaurz(suvr, tracer: str, mask: str = "universal"):
    """CenTauRz of SUVR in one mask (scalar or array in, same out)."""
    if mask not in MASKS:
        raise KeyError(f"unknown CenTauR mask {mask!r}; choose from {MASKS}")
    value = CONVERSIONS[canonical_tracer(tracer)][mask](suvr)
    return float(value) if np.ndim(value) == 0 else value


def mask_label(official: bool) -> str:
    """How a CenTauRz value is labelled: approximate unless the official masks were used."""
    return OFFICIAL_LABEL if official else APPROXIMATE_LABEL


def volume_weighted_suvr(table: pd.DataFrame, regions: tuple[str, ...]) -> float:
    """Mean SUVR over the union of ``regions`` from a bilateral DK regional table.

    ``table`` has the columns of the regional tables (region, suvr_mean, n_voxels); the union
    of disjoint regions has the voxel-weighted mean of their means.
    """
    rows = table.set_index("region").loc[list(regions)]
    rows = rows[rows.n_voxels > 0]
    return float(np.average(rows.suvr_mean, weights=rows.n_voxels))


def centaurz_table(suvr_by_mask: Mapping[str, float], tracer: str, official: bool) -> pd.DataFrame:
    """One row per mask: SUVR, CenTauRz and the approximate/official label."""
    rows = [
        {
            "mask": mask,
            "tracer": canonical_tracer(tracer),
            "reference": REFERENCE_REGION,
            "suvr": float(suvr),
            "centaurz": to_centaurz(suvr, tracer, mask),
            "approximate": not official,
            "mask_source": mask_label(official),
        }
        for mask, suvr in suvr_by_mask.items()
    ]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _check_reference(reference_suvr: float) -> float:
    if not np.isfinite(reference_suvr) or reference_suvr <= 0:
        raise ValueError(f"SUVR in the {REFERENCE_REGION} reference is {reference_suvr}")
    return float(reference_suvr)


def approximate_centaurz(
    dk_table: pd.DataFrame, tracer: str, reference_suvr: float = 1.0
) -> pd.DataFrame:
    """CenTauRz of every mask from a bilateral DK regional table, labelled approximate.

    ``reference_suvr`` is the table's SUVR in :data:`REFERENCE_REGION`; mask SUVRs are divided
    by it so that they are referenced as the constants require.
    """
    scale = _check_reference(reference_suvr)
    suvr = {mask: volume_weighted_suvr(dk_table, APPROXIMATE_MASKS[mask]) / scale for mask in MASKS}
    return centaurz_table(suvr, tracer, official=False)


def official_centaurz(
    suvr_image: np.ndarray,
    masks: Mapping[str, np.ndarray],
    tracer: str,
    reference_suvr: float = 1.0,
    official_reference: bool = True,
) -> pd.DataFrame:
    """CenTauRz from user-supplied official mask images (same grid as ``suvr_image``).

    Masks are used as given: voxels > 0 are inside; non-finite SUVR voxels are skipped.
    ``reference_suvr`` re-references as in :func:`approximate_centaurz`.
    """
    scale = _check_reference(reference_suvr)
    unknown = set(masks) - set(MASKS)
    if unknown:
        raise KeyError(f"unknown CenTauR masks {sorted(unknown)}; choose from {MASKS}")
    suvr = {}
    for mask, image in masks.items():
        if np.shape(image) != np.shape(suvr_image):
            raise ValueError(f"mask {mask!r} shape {np.shape(image)} differs from the SUVR image")
        values = np.asarray(suvr_image, float)[np.asarray(image) > 0]
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise ValueError(f"mask {mask!r} is empty")
        suvr[mask] = float(values.mean()) / scale
    table = centaurz_table(suvr, tracer, official=True)
    if not official_reference:
        table["mask_source"] = OFFICIAL_LABEL + OWN_REFERENCE_NOTE
    return table
