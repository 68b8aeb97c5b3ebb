"""Flortaucipir-like uptake: a label-constant SUVR map driven by Braak stage.

Values are SUVR with inferior cerebellar grey = 1. Tau-free levels follow published
flortaucipir data (cortex ~1.0-1.15, white matter ~1.1-1.3; Baker et al. 2017; Maass et al.
2017); off-target binding is high in choroid plexus and mild in basal ganglia and thalamus
(Baker et al. 2019; Lee et al. 2018); CSF is low. Tau adds to every region of a Braak stage at or
below the subject's stage (Schöll et al. 2016), most in the earliest regions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from taupet_bids import atlases
from taupet_bids.simulate import template as layers
from taupet_bids.simulate.template import TemplateData

#: Tau-free SUVR ranges (drawn once per subject) by bilateral DK region, then by tissue.
REGION_RANGES: dict[str, tuple[float, float]] = {
    "cerebellum-cortex": (1.0, 1.0),
    "cerebellum-white-matter": (1.1, 1.25),
    "hippocampus": (1.05, 1.2),
    "amygdala": (1.05, 1.2),
    "choroid-plexus": (1.8, 3.0),
    "putamen": (1.25, 1.6),
    "pallidum": (1.25, 1.6),
    "caudate": (1.05, 1.25),
    "accumbens-area": (1.1, 1.3),
    "thalamus": (1.15, 1.35),
    "ventraldc": (1.2, 1.4),
    "brain-stem": (1.0, 1.15),
    "lateral-ventricle": (0.25, 0.45),
    "inf-lat-vent": (0.4, 0.7),
    "3rd-ventricle": (0.25, 0.45),
    "4th-ventricle": (0.25, 0.45),
    "csf": (0.25, 0.45),
    "vessel": (0.9, 1.2),
}
TISSUE_RANGES: dict[str, tuple[float, float]] = {
    "cortex": (1.1, 1.25),
    "white_matter": (1.1, 1.3),
    "subcortical": (1.0, 1.2),
    "cerebellar_cortex": (1.0, 1.0),
    "other": (0.9, 1.1),
}
#: Brain-mask voxels without a DK label (sulcal CSF, meninges) and extracerebral head tissue.
UNLABELLED_BRAIN = (0.8, 1.0)
EXTRACEREBRAL = (0.4, 0.8)
#: Regional jitter of the tau-free level (SD, relative) and of tau susceptibility (range).
LEVEL_JITTER = 0.03
SUSCEPTIBILITY = (0.75, 1.25)
#: Tau amplitude per Braak stage (SUVR units added to the stage-I region per stage).
AMPLITUDE_PER_STAGE = (0.3, 0.5)

#: Realistic heads only (phantoms of another anatomy with head layers). Off-target and
#: extracerebral levels (SUVR), drawn per subject: meningeal and skull signal vary widely between
#: people and tracers (flortaucipir modest, MK-6240 and PI-2620 higher; Baker et al. 2019,
#: Pascoal et al. 2018); soft tissue of scalp, face and neck is low; air spaces carry nothing.
LAYER_RANGES = {
    "soft_tissue": (0.3, 0.7),
    "bone": (0.4, 1.3),
    "meninges": (0.7, 1.8),
    "air": (0.0, 0.05),
}
#: Choroid plexus: high off-target binding in some subjects only (Lee et al. 2018).
CHOROID_HIGH_FRACTION = 0.5
CHOROID_LOW = (1.0, 1.4)
#: Within-region heterogeneity: a smooth multiplicative field over the brain (SD, smoothness).
HETEROGENEITY_SD = 0.05
HETEROGENEITY_SIGMA_MM = 6.0
#: Left/right asymmetry of tau: amplitude x (1 + a) on one side, x (1 - a) on the other.
ASYMMETRY_MAX = 0.15


@dataclass(frozen=True)
class HeadUptake:
    """A realistic head's extra traits: layer levels, heterogeneity seed, tau asymmetry."""

    layers: dict[str, float]
    heterogeneity_seed: int
    asymmetry: float


@dataclass(frozen=True)
class TauState:
    """Pathology at one visit: Braak stage (0-6) and amplitude (SUVR added to stage-I regions)."""

    stage: int
    amplitude: float


@dataclass(frozen=True)
class UptakeProfile:
    """A subject's stable traits: tau-free SUVR and tau susceptibility per DK label."""

    baseline: dict[int, float]
    susceptibility: dict[int, float]
    unlabelled_brain: float
    extracerebral: float
    head: HeadUptake | None = None


def random_profile(rng: np.random.Generator, realistic: bool = False) -> UptakeProfile:
    """Draw a subject's tau-free levels (bilateral regions share a level, hemispheres jitter).

    ``realistic`` adds :class:`HeadUptake` traits and draws choroid-plexus binding high in some
    subjects only; it draws after everything else, so the template phantom is unchanged.
    """
    labels = atlases.dk_labels()
    level = {}
    for region in sorted({lab.region for lab in labels}):
        tissue = next(lab.tissue for lab in labels if lab.region == region)
        level[region] = rng.uniform(*REGION_RANGES.get(region, TISSUE_RANGES[tissue]))
    baseline, susceptibility = {}, {}
    for lab in labels:
        jitter = 1.0 if lab.tissue == "cerebellar_cortex" else rng.normal(1.0, LEVEL_JITTER)
        baseline[lab.index] = float(level[lab.region] * jitter)
        susceptibility[lab.index] = float(rng.uniform(*SUSCEPTIBILITY))
    profile = UptakeProfile(
        baseline, susceptibility, rng.uniform(*UNLABELLED_BRAIN), rng.uniform(*EXTRACEREBRAL)
    )
    if not realistic:
        return profile
    layers = {name: float(rng.uniform(*bounds)) for name, bounds in LAYER_RANGES.items()}
    head = HeadUptake(
        layers, int(rng.integers(2**31)), float(rng.uniform(-ASYMMETRY_MAX, ASYMMETRY_MAX))
    )
    if rng.random() >= CHOROID_HIGH_FRACTION:
        level = rng.uniform(*CHOROID_LOW)
        for index in atlases.dk_indices(["choroid-plexus"]):
            baseline[index] = float(level * rng.normal(1.0, LEVEL_JITTER))
    return replace(profile, head=head)


def _hemisphere_factor(profile: UptakeProfile) -> dict[int, float]:
    """Tau amplitude factor per DK label: 1, or 1 +- the subject's asymmetry by hemisphere."""
    if profile.head is None:
        return {}
    sign = {"left": 1.0, "right": -1.0}
    return {
        lab.index: 1.0 + sign.get(lab.hemisphere, 0.0) * profile.head.asymmetry
        for lab in atlases.dk_labels()
    }


def stage_amplitude(stage: int, unit: float) -> float:
    """Amplitude for a stage: grows with the stage (``unit`` SUVR per stage)."""
    return float(stage * unit)


def label_suvr(profile: UptakeProfile, state: TauState) -> dict[int, float]:
    """SUVR per DK label: tau-free level plus tau in regions of stages <= the subject's stage.

    A region of stage ``k`` gains ``amplitude * (stage - k + 1) / stage``: earliest regions most.
    """
    values = dict(profile.baseline)
    if state.stage == 0:
        return values
    side = _hemisphere_factor(profile)
    for k, regions in atlases.braak_regions().items():
        if k > state.stage:
            continue
        weight = (state.stage - k + 1) / state.stage
        for index in atlases.dk_indices(regions):
            amplitude = state.amplitude * weight * profile.susceptibility[index]
            values[index] += amplitude * side.get(index, 1.0)
    return values


def suvr_map(profile: UptakeProfile, state: TauState, template: TemplateData) -> np.ndarray:
    """Noise-free, unblurred SUVR map on the template 2 mm grid, scaled so InfCerebGrey = 1."""
    lut = np.zeros(int(template.dk.max()) + 1, dtype=np.float32)
    for index, value in label_suvr(profile, state).items():
        if index < lut.size:
            lut[index] = value
    if profile.head is not None and template.tissue is not None:
        out = _head_layers(profile.head, template)
    else:
        out = np.where(template.head_mask, np.float32(profile.extracerebral), np.float32(0))
    out[template.brain_mask] = profile.unlabelled_brain
    labelled = template.dk > 0
    out[labelled] = lut[template.dk[labelled]]
    if profile.head is not None:
        out[template.brain_mask] *= _heterogeneity(profile.head, template)[template.brain_mask]
    reference = template.reference_masks[atlases.DEFAULT_REFERENCE]
    return (out / out[reference].mean()).astype(np.float32)


def _head_layers(head: HeadUptake, template: TemplateData) -> np.ndarray:
    """Uptake of the head outside the brain, layer by layer (codes of ``template.tissue``)."""
    lut = np.zeros(layers.BRAIN + 1, np.float32)
    lut[layers.SOFT_TISSUE] = head.layers["soft_tissue"]
    lut[layers.BONE] = head.layers["bone"]
    lut[layers.MENINGES] = head.layers["meninges"]
    lut[layers.AIR] = head.layers["air"]
    return lut[template.tissue]


def _heterogeneity(head: HeadUptake, template: TemplateData) -> np.ndarray:
    """A smooth multiplicative field with mean 1 and SD ``HETEROGENEITY_SD`` (per subject)."""
    rng = np.random.default_rng(head.heterogeneity_seed)
    field = rng.standard_normal(template.grid_2mm.shape).astype(np.float32)
    spacing = float(np.abs(template.grid_2mm.affine[0, 0]))
    field = ndimage.gaussian_filter(field, HETEROGENEITY_SIGMA_MM / spacing)
    field *= np.float32(HETEROGENEITY_SD / field[template.brain_mask].std())
    return np.exp(field - field[template.brain_mask].mean())
