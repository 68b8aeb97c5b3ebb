"""FDG uptake that carries partial, realistic information about tau (SUVR, pons = 1).

Each cortical region's glucose metabolism falls with the tau added to that region (local
coupling; Bischof et al. 2016, strongest in temporal cortex), more when amyloid is positive and
most of all in parietal cortex; the posterior cingulate falls only with both amyloid and
neocortical (inferior temporal) tau (Hanseeuw et al. 2017); at negative amyloid, tau may go with
hypermetabolism (Rubinski et al. 2020). A mismatch subgroup breaks the coupling: resilient
subjects keep their metabolism despite tau, others lose it where tau is low (non-AD
co-pathology). Sensorimotor and occipital cortex, cerebellum and pons are (almost) spared.
Magnitudes are simulator choices tuned to the typical 15-25 % temporoparietal loss of AD
dementia; docs/simulator.md says which are from the literature and which are not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taupet_bids import atlases
from taupet_bids.simulate import label_maps
from taupet_bids.simulate.clinical import Clinical
from taupet_bids.simulate.template import TemplateData
from taupet_bids.simulate.uptake import TauState, UptakeProfile, label_suvr

#: Reference region of the FDG truth (and of the app's FDG default).
REFERENCE = "Pons"
#: Tau-free FDG levels relative to the pons, by region, then by tissue.
REGION_RANGES = {
    "brain-stem": (0.95, 1.05),
    "thalamus": (1.35, 1.6),
    "putamen": (1.45, 1.75),
    "caudate": (1.2, 1.45),
    "pallidum": (1.0, 1.2),
    "accumbens-area": (1.1, 1.35),
    "ventraldc": (1.0, 1.2),
    "hippocampus": (0.95, 1.15),
    "amygdala": (0.95, 1.15),
    "cerebellum-cortex": (1.15, 1.35),
    "cerebellum-white-matter": (0.7, 0.85),
    "choroid-plexus": (0.4, 0.6),
    "vessel": (0.5, 0.8),
    "lateral-ventricle": (0.1, 0.2),
    "inf-lat-vent": (0.15, 0.3),
    "3rd-ventricle": (0.1, 0.2),
    "4th-ventricle": (0.1, 0.2),
    "csf": (0.1, 0.2),
}
TISSUE_RANGES = {
    "cortex": (1.4, 1.6),
    "white_matter": (0.65, 0.8),
    "subcortical": (1.1, 1.4),
    "cerebellar_cortex": (1.15, 1.35),
    "other": (0.8, 1.0),
}
LEVEL_JITTER = 0.05
#: Subject-level cortical metabolism (lognormal SD), independent of tau.
CORTEX_SD = 0.07
UNLABELLED_BRAIN = (0.4, 0.6)
HEAD_RANGES = {"soft_tissue": (0.25, 0.5), "bone": (0.15, 0.3), "meninges": (0.3, 0.5)}
#: Relative loss per SUVR of added tau, by region group (local coupling), and its extra factor
#: when amyloid is positive (largest parietal, Bischof et al. 2016).
LOSS_PER_TAU = 0.11
LOCAL_WEIGHT = {
    "mesial_temporal": 0.5,
    "temporal": 1.0,
    "parietal": 0.5,
    "posterior_cingulate": 0.4,
    "frontal": 0.5,
    "sensorimotor": 0.1,
    "occipital": 0.1,
}
AMYLOID_BOOST = {
    "mesial_temporal": 0.5,
    "temporal": 0.5,
    "parietal": 2.5,
    "posterior_cingulate": 0.5,
    "frontal": 0.5,
    "sensorimotor": 0.0,
    "occipital": 0.0,
}
#: Posterior cingulate: extra loss per SUVR of inferior temporal tau, amyloid positive only.
PCC_LOSS_PER_TAU = 0.08
#: Tau at negative amyloid: relative gain per SUVR of tau, times a per-subject U(0, 1).
HYPER_PER_TAU = 0.06
#: Largest loss and gain of a region.
MAX_LOSS = 0.4
MAX_GAIN = 0.15
#: Individual coupling (lognormal SD) and regional coupling noise (SD, relative).
COUPLING_SD = 0.5
REGIONAL_COUPLING_SD = 0.4
#: Mismatch subgroup: fraction of subjects, then half resilient (coupling x RESILIENT), half with
#: tau-independent loss (NON_AD_LOSS) in mesial temporal and frontal cortex.
MISMATCH_FRACTION = 0.15
RESILIENT = 0.2
NON_AD_LOSS = (0.08, 0.15)
#: Within-region heterogeneity of the map (SD, smoothness in mm).
HETEROGENEITY_SD = 0.04
HETEROGENEITY_SIGMA_MM = 6.0


@dataclass(frozen=True)
class FdgProfile:
    """A subject's stable FDG traits."""

    baseline: dict[int, float]
    coupling: dict[int, float]
    amyloid_positive: bool
    hyper: float
    mismatch: str
    non_ad_loss: float
    unlabelled: float
    head: dict[str, float]
    heterogeneity_seed: int


def random_profile(rng: np.random.Generator, clinical: Clinical) -> FdgProfile:
    """Draw a subject's FDG traits (``clinical`` gives the amyloid status)."""
    baseline = label_maps.draw_levels(rng, REGION_RANGES, TISSUE_RANGES, LEVEL_JITTER)
    cortex = float(np.exp(rng.normal(0.0, CORTEX_SD)))
    for lab in atlases.dk_labels():
        if lab.tissue == "cortex":
            baseline[lab.index] *= cortex
    subject = float(np.exp(rng.normal(0.0, COUPLING_SD)))
    coupling = {
        lab.index: subject * float(np.exp(rng.normal(0.0, REGIONAL_COUPLING_SD)))
        for lab in atlases.dk_labels()
    }
    mismatch = "none"
    if rng.random() < MISMATCH_FRACTION:
        mismatch = "resilient" if rng.random() < 0.5 else "non_ad_loss"
    head = {name: float(rng.uniform(*bounds)) for name, bounds in HEAD_RANGES.items()}
    return FdgProfile(
        baseline=baseline,
        coupling=coupling,
        amyloid_positive=clinical.amyloid_positive,
        hyper=float(rng.uniform()),
        mismatch=mismatch,
        non_ad_loss=float(rng.uniform(*NON_AD_LOSS)),
        unlabelled=float(rng.uniform(*UNLABELLED_BRAIN)),
        head={**head, "air": 0.0},
        heterogeneity_seed=int(rng.integers(2**31)),
    )


def relative_change(
    fdg: FdgProfile, tau_profile: UptakeProfile, state: TauState
) -> dict[int, float]:
    """Relative change of metabolism per DK label (negative: hypometabolism)."""
    tau = label_suvr(tau_profile, state)
    added = {k: tau[k] - tau_profile.baseline[k] for k in tau}
    inferior_temporal = np.mean([added[i] for i in atlases.dk_indices(["inferiortemporal"])])
    resilience = RESILIENT if fdg.mismatch == "resilient" else 1.0
    change = {}
    for lab in atlases.dk_labels():
        group = label_maps.group_of(lab.region)
        if group is None:
            change[lab.index] = 0.0
            continue
        local = added[lab.index] * LOCAL_WEIGHT[group] * fdg.coupling[lab.index] * resilience
        if fdg.amyloid_positive:
            delta = -LOSS_PER_TAU * local * (1.0 + AMYLOID_BOOST[group])
            if group == "posterior_cingulate":
                delta -= PCC_LOSS_PER_TAU * inferior_temporal * resilience
        else:
            delta = HYPER_PER_TAU * fdg.hyper * local
        if fdg.mismatch == "non_ad_loss" and group in ("mesial_temporal", "frontal"):
            delta -= fdg.non_ad_loss
        change[lab.index] = float(np.clip(delta, -MAX_LOSS, MAX_GAIN))
    return change


def label_values(fdg: FdgProfile, tau_profile: UptakeProfile, state: TauState) -> dict[int, float]:
    """FDG level per DK label (before normalisation to the pons)."""
    change = relative_change(fdg, tau_profile, state)
    return {k: v * (1.0 + change[k]) for k, v in fdg.baseline.items()}


def suvr_map(
    fdg: FdgProfile, tau_profile: UptakeProfile, state: TauState, template: TemplateData
) -> np.ndarray:
    """Noise-free, unblurred FDG SUVR map (pons = 1) on the template 2 mm grid."""
    field = label_maps.smooth_field(
        fdg.heterogeneity_seed, template, HETEROGENEITY_SD, HETEROGENEITY_SIGMA_MM
    )
    values = label_values(fdg, tau_profile, state)
    image = label_maps.label_map(values, fdg.unlabelled, fdg.head, template, field)
    return label_maps.normalise(image, template, REFERENCE)
