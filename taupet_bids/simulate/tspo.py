"""[11C]PBR28-like TSPO uptake: genotype, AD-related cortical increase, vessels, test-retest.

Levels are in units of a high-affinity binder's (HAB) cerebellum. Each region is a
non-displaceable part plus specific binding scaled by the hidden rs6971 genotype: mixed-affinity
binders (MAB) end about 30 % below HABs in total (Yoder et al. 2013), low-affinity binders (LAB)
near the non-displaceable level. In AD the cortex rises, most in parietal and temporal cortex,
while subcortex and cerebellum stay (Kreisl et al. 2013); the rise follows the region's tau and
is smaller without amyloid. Vessels (endothelium), meninges and venous sinuses, choroid plexus
and thalamus carry high signal. Every scan gets its own global and regional variation so two
scans of one person differ by 16-18 % (test-retest variability of PBR28 SUV/V_T).
The truth map is SUVR to the whole cerebellum (a pseudo-reference in AD, Lyoo et al. 2015);
the genotype and scan variation then live in the image's absolute level (its SUV).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taupet_bids import atlases
from taupet_bids.simulate import label_maps
from taupet_bids.simulate.clinical import Clinical
from taupet_bids.simulate.template import TemplateData
from taupet_bids.simulate.uptake import TauState, UptakeProfile, label_suvr

#: Reference region of the TSPO truth map (the app has no default for PBR28: name it).
REFERENCE = "WholeCereb"
#: Non-displaceable share of a HAB's cerebellum, and the specific binding left per genotype.
NON_DISPLACEABLE = 0.35
SPECIFIC = {"HAB": (1.0, 1.0), "MAB": (0.5, 0.6), "LAB": (0.0, 0.08)}
#: Levels relative to a HAB's cerebellar cortex, by region, then tissue.
REGION_RANGES = {
    "cerebellum-cortex": (1.0, 1.0),
    "cerebellum-white-matter": (0.85, 0.95),
    "thalamus": (1.15, 1.35),
    "brain-stem": (1.0, 1.2),
    "choroid-plexus": (1.5, 2.2),
    "vessel": (1.8, 2.6),
    "lateral-ventricle": (0.3, 0.5),
    "inf-lat-vent": (0.3, 0.5),
    "3rd-ventricle": (0.3, 0.5),
    "4th-ventricle": (0.3, 0.5),
    "csf": (0.3, 0.5),
}
TISSUE_RANGES = {
    "cortex": (0.95, 1.1),
    "white_matter": (0.8, 0.95),
    "subcortical": (0.95, 1.1),
    "cerebellar_cortex": (1.0, 1.0),
    "other": (0.9, 1.1),
}
LEVEL_JITTER = 0.03
UNLABELLED_BRAIN = (0.9, 1.2)
#: Outside the brain: dura and venous sinuses high (vascular), bone marrow and muscle moderate.
HEAD_RANGES = {"soft_tissue": (0.5, 0.9), "bone": (0.7, 1.2), "meninges": (1.4, 2.2)}
#: Cortical increase per SUVR of added tau, by group (none in subcortex and cerebellum), and
#: its factor without amyloid.
GAIN_PER_TAU = 0.12
GAIN_WEIGHT = {
    "mesial_temporal": 0.4,
    "temporal": 1.0,
    "parietal": 1.4,
    "posterior_cingulate": 0.6,
    "frontal": 0.5,
    "sensorimotor": 0.2,
    "occipital": 0.4,
}
AMYLOID_NEGATIVE_FACTOR = 0.3
INDIVIDUAL_SD = 0.4
#: Scan-to-scan variation: one global factor and one per region (lognormal SDs); together a
#: test-retest variability (mean |a - b| / mean(a, b)) of about 17 %.
SCAN_GLOBAL_SD = 0.145
SCAN_REGIONAL_SD = 0.06
HETEROGENEITY_SD = 0.05
HETEROGENEITY_SIGMA_MM = 6.0


@dataclass(frozen=True)
class TspoProfile:
    """A subject's stable TSPO traits."""

    genotype: str
    specific: float
    baseline: dict[int, float]
    individual: float
    amyloid_positive: bool
    unlabelled: float
    head: dict[str, float]
    heterogeneity_seed: int


@dataclass(frozen=True)
class ScanVariation:
    """What differs between two scans of the same person on the same day."""

    global_factor: float
    regional: dict[int, float]


def random_profile(rng: np.random.Generator, clinical: Clinical) -> TspoProfile:
    """Draw a subject's TSPO traits (``clinical`` gives genotype and amyloid status)."""
    baseline = label_maps.draw_levels(rng, REGION_RANGES, TISSUE_RANGES, LEVEL_JITTER)
    for index in atlases.dk_indices(["cerebellum-cortex"]):
        baseline[index] = 1.0
    head = {name: float(rng.uniform(*bounds)) for name, bounds in HEAD_RANGES.items()}
    return TspoProfile(
        genotype=clinical.tspo_genotype,
        specific=float(rng.uniform(*SPECIFIC[clinical.tspo_genotype])),
        baseline=baseline,
        individual=float(np.exp(rng.normal(0.0, INDIVIDUAL_SD))),
        amyloid_positive=clinical.amyloid_positive,
        unlabelled=float(rng.uniform(*UNLABELLED_BRAIN)),
        head={**head, "air": 0.0},
        heterogeneity_seed=int(rng.integers(2**31)),
    )


def scan_variation(rng: np.random.Generator) -> ScanVariation:
    """One scan's global and regional variation (drawn afresh for every scan)."""
    regional = {
        lab.index: float(np.exp(rng.normal(0.0, SCAN_REGIONAL_SD))) for lab in atlases.dk_labels()
    }
    return ScanVariation(float(np.exp(rng.normal(0.0, SCAN_GLOBAL_SD))), regional)


def label_values(
    tspo: TspoProfile,
    tau_profile: UptakeProfile,
    state: TauState,
    scan: ScanVariation | None = None,
) -> dict[int, float]:
    """TSPO level per DK label in HAB-cerebellum units (absolute: genotype and scan included)."""
    tau = label_suvr(tau_profile, state)
    amyloid = 1.0 if tspo.amyloid_positive else AMYLOID_NEGATIVE_FACTOR
    values = {}
    for lab in atlases.dk_labels():
        level = tspo.baseline[lab.index]
        group = label_maps.group_of(lab.region)
        if group is not None:
            added = tau[lab.index] - tau_profile.baseline[lab.index]
            level *= 1.0 + GAIN_PER_TAU * GAIN_WEIGHT[group] * added * amyloid * tspo.individual
        value = NON_DISPLACEABLE * level + (1 - NON_DISPLACEABLE) * level * tspo.specific
        if scan is not None:
            value *= scan.global_factor * scan.regional[lab.index]
        values[lab.index] = float(value)
    return values


def absolute_map(
    tspo: TspoProfile,
    tau_profile: UptakeProfile,
    state: TauState,
    template: TemplateData,
    scan: ScanVariation | None = None,
) -> np.ndarray:
    """Noise-free, unblurred TSPO map in HAB-cerebellum units (template 2 mm grid)."""
    field = label_maps.smooth_field(
        tspo.heterogeneity_seed, template, HETEROGENEITY_SD, HETEROGENEITY_SIGMA_MM
    )
    values = label_values(tspo, tau_profile, state, scan)
    factor = scan.global_factor if scan is not None else 1.0
    head = {k: v * factor for k, v in tspo.head.items()}
    scale = NON_DISPLACEABLE + (1 - NON_DISPLACEABLE) * tspo.specific
    return label_maps.label_map(values, tspo.unlabelled * scale * factor, head, template, field)
