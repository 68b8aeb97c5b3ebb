"""Training examples for the MR-less normaliser: a native PET and where template points fall in it.

A :class:`Head` is one averaged PET in its own scanner world plus its *target*: the PET-world
position (mm) of every voxel of the 4 mm template grid (:mod:`taupet_bids.normalisation.geometry`).
Two sources make them:

- :func:`simulated_head` draws a fresh digital phantom with the simulator (random anatomy, Braak
  stage, scanner, PSF, noise, position); the target is the simulator's exact inverse warp. With
  ``source="other"`` (``taupet-bids-train normaliser --heads-from other``) the phantom is a
  realistic head of the simulator's other anatomy (face, skull base, neck and shoulders), with
  one of several tau tracers' off-target patterns, a scrambled uptake pattern and an axial field
  of view of 15-26 cm (:func:`realistic_head`);
- :func:`derivatives_head` reads a real scan processed by taupet-bids' MR-based pipeline: the
  averaged PET (``desc-preproc_pet``) and its PET->T1w and T1w->template transforms, which give
  the target (the recipe of seed 000: the MR path provides the ground-truth transform).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import nibabel as nib
import numpy as np

from taupet_bids import atlases, naming
from taupet_bids.core import registration
from taupet_bids.core.grids import apply_affine, linear_coordinates
from taupet_bids.normalisation import geometry
from taupet_bids.simulate import anatomy as anatomy_mod
from taupet_bids.simulate import uptake
from taupet_bids.simulate.modalities import TauPET, Visit
from taupet_bids.simulate.other_anatomy import source_anatomy, template_to_source
from taupet_bids.simulate.population import STAGE_WEIGHTS
from taupet_bids.simulate.template import load_template

#: Where simulated training heads come from: the template anatomy (the shipped network's heads)
#: or the simulator's other anatomy with realistic heads.
HEAD_SOURCES = ("template", "other")

#: Off-target signal by tau tracer (SUVR ranges of the head layers, and factors on choroid plexus
#: and striatum): flortaucipir binds choroid plexus and basal ganglia; MK-6240 has strong
#: meningeal and skull signal and little choroid plexus; PI-2620 has less of both (DOMAIN.md;
#: Baker et al. 2019, Pascoal et al. 2018). Ranges are deliberately wide: what the network must
#: learn is that none of this tells it where the brain is.
TRACER_STYLES: dict[str, dict[str, tuple[float, float]]] = {
    "flortaucipir": {"meninges": (0.7, 1.3), "bone": (0.4, 0.9), "choroid": (1.0, 1.0),
                     "striatum": (1.0, 1.0)},
    "MK6240": {"meninges": (1.5, 3.0), "bone": (0.8, 1.8), "choroid": (0.5, 0.8),
               "striatum": (0.8, 0.95)},
    "PI2620": {"meninges": (0.8, 1.6), "bone": (0.5, 1.1), "choroid": (0.6, 0.9),
               "striatum": (0.85, 1.0)},
}  # fmt: skip
STRIATUM = ("putamen", "pallidum", "caudate")
#: Uptake-pattern augmentation: every tau-free regional level is multiplied by a factor drawn
#: log-uniformly within +-PATTERN_JITTER; with PATTERN_SWAP_P the brain is instead given a flat
#: or a cortex-bright (amyloid- or FDG-like) pattern, so the pattern says nothing about the pose.
PATTERN_JITTER = 0.3
PATTERN_SWAP_P = 0.3
CORTEX_BRIGHT = (1.5, 3.0)
#: Axial field of view (mm) of a realistic head, applied on top of the simulated scanner's.
AXIAL_FOV_MM = (150.0, 260.0)
#: Where the brain's intensity centre sits in that field of view (fraction from its bottom).
FOV_CENTRE_FRACTION = (0.35, 0.65)


@dataclass(frozen=True)
class Head:
    """A native PET (3-D, float32) with its affine and its target positions (3, 48, 56, 48);
    ``pattern`` says which uptake pattern the brain got (:func:`pattern_kind`)."""

    volume: np.ndarray
    affine: np.ndarray
    targets: np.ndarray
    name: str
    pattern: str = "tau"


def simulated_head(seed: int, source: str = "template") -> Head:
    """One simulated single-frame PET with its exact target positions.

    ``source`` is one of :data:`HEAD_SOURCES`: ``template`` draws the flortaucipir-like
    template-anatomy phantom the shipped network was trained on (unchanged, so that training is
    reproducible), ``other`` a realistic head (:func:`realistic_head`).
    """
    if source == "other":
        return realistic_head(seed)
    if source != "template":
        raise ValueError(f"heads come from one of {HEAD_SOURCES}, not {source!r}")
    template = load_template()
    rng = np.random.default_rng(seed)
    anatomy = anatomy_mod.random_anatomy(rng, template)
    profile = uptake.random_profile(rng)
    stage = int(rng.choice(len(STAGE_WEIGHTS), p=STAGE_WEIGHTS))
    amplitude = uptake.stage_amplitude(stage, rng.uniform(*uptake.AMPLITUDE_PER_STAGE))
    visit = Visit(f"train{seed}", None, 0, uptake.TauState(stage, amplitude), profile, template)
    pet = TauPET(n_frames=1).generate(anatomy, visit, rng)
    subject_points = anatomy.from_template(geometry.template_points())
    targets = apply_affine(np.linalg.inv(pet.truth["pet_to_t1w"]), subject_points)
    return Head(
        np.asarray(pet.image.dataobj, dtype=np.float32),
        pet.image.affine,
        targets.astype(np.float32),
        f"simulated seed {seed}, Braak {stage}",
    )


def tracer_profile(
    profile: uptake.UptakeProfile, tracer: str, rng: np.random.Generator
) -> uptake.UptakeProfile:
    """The profile with one tracer's off-target signal (:data:`TRACER_STYLES`)."""
    style = TRACER_STYLES[tracer]
    baseline = dict(profile.baseline)
    for name, regions in (("choroid", ("choroid-plexus",)), ("striatum", STRIATUM)):
        factor = rng.uniform(*style[name])
        for index in atlases.dk_indices(list(regions)):
            if index in baseline:
                baseline[index] *= float(factor)
    layers = dict(profile.head.layers)
    layers.update(meninges=float(rng.uniform(*style["meninges"])))
    layers.update(bone=float(rng.uniform(*style["bone"])))
    return replace(profile, baseline=baseline, head=replace(profile.head, layers=layers))


def scrambled_pattern(
    profile: uptake.UptakeProfile, rng: np.random.Generator
) -> uptake.UptakeProfile:
    """The uptake-pattern augmentation (:data:`PATTERN_JITTER`, :data:`PATTERN_SWAP_P`)."""
    cortex = {label.index for label in atlases.dk_labels() if label.tissue == "cortex"}
    if rng.random() < PATTERN_SWAP_P:
        bright = float(rng.uniform(*CORTEX_BRIGHT)) if rng.random() < 0.5 else 1.0
        baseline = {k: (bright if k in cortex else 1.0) for k in profile.baseline}
    else:
        factors = np.exp(rng.uniform(-PATTERN_JITTER, PATTERN_JITTER, len(profile.baseline)))
        baseline = {
            k: float(v * f) for (k, v), f in zip(profile.baseline.items(), factors, strict=True)
        }
    return replace(profile, baseline=baseline)


def pattern_kind(profile: uptake.UptakeProfile) -> str:
    """``flat``, ``cortex-bright`` (amyloid- or FDG-like) or ``tau``: what
    :func:`scrambled_pattern` gave the brain (benchmarks report tracer-independence by it)."""
    levels = set(profile.baseline.values())
    if levels == {1.0}:
        return "flat"
    if len(levels) == 2 and 1.0 in levels:
        return "cortex-bright"
    return "tau"


def axial_field_of_view(
    volume: np.ndarray, affine: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Zero the PET outside a random axial field of view (:data:`AXIAL_FOV_MM`) around the head."""
    length = rng.uniform(*AXIAL_FOV_MM)
    centre_z = geometry.intensity_centre(volume, affine)[2]
    bottom = centre_z - rng.uniform(*FOV_CENTRE_FRACTION) * length
    world_z = linear_coordinates(affine, volume.shape)[2]
    return np.where((world_z >= bottom) & (world_z <= bottom + length), volume, 0).astype(
        np.float32
    )


def realistic_head(seed: int) -> Head:
    """A realistic head of the simulator's other anatomy, one tracer's pattern, scrambled.

    The targets follow the anatomy: a template point is first carried to the same anatomical
    point of the other anatomy (MNI152NLin2009aSym brain) by the SyN registration that carried
    the template's labels over (:func:`other_anatomy.template_to_source`), then through the
    subject's deformation and the scanner pose.
    """
    other = source_anatomy("other")
    rng = np.random.default_rng([seed, 7])
    severity = anatomy_mod.atrophy_severity(rng, 3)
    anatomy = anatomy_mod.random_anatomy(rng, other, severity)
    tracer = sorted(TRACER_STYLES)[int(rng.integers(len(TRACER_STYLES)))]
    profile = uptake.random_profile(rng, realistic=True)
    profile = scrambled_pattern(tracer_profile(profile, tracer, rng), rng)
    stage = int(rng.choice(len(STAGE_WEIGHTS), p=STAGE_WEIGHTS))
    amplitude = uptake.stage_amplitude(stage, rng.uniform(*uptake.AMPLITUDE_PER_STAGE))
    visit = Visit(f"train{seed}", None, 0, uptake.TauState(stage, amplitude), profile, other)
    pet = TauPET(n_frames=1).generate(anatomy, visit, rng)
    source_points = template_to_source(geometry.template_points(), "other")
    subject_points = anatomy.from_template(source_points)
    targets = apply_affine(np.linalg.inv(pet.truth["pet_to_t1w"]), subject_points)
    volume = np.asarray(pet.image.dataobj, dtype=np.float32)
    volume = axial_field_of_view(volume, pet.image.affine, rng)
    return Head(
        volume,
        pet.image.affine,
        targets.astype(np.float32),
        f"realistic seed {seed}, {tracer}, Braak {stage}",
        pattern_kind(profile),
    )


def map_template_points(transforms: list[str], points: np.ndarray) -> np.ndarray:
    """Move template-world points (3, ...) through an ANTs transform list (ANTs order).

    ``transforms`` is the list that resamples an image into template space (e.g. T1w->template
    warp and affine, then PET->T1w): ANTs maps *points* of the fixed space through it to the
    moving space, so the result is the PET-world position of each template point.
    """
    return registration.transform_points(points, transforms)


def derivatives_transforms(pet_file: Path) -> list[str]:
    """The ANTs transform list (template <- T1w <- PET) of one scan of taupet-bids derivatives."""
    pet_file = Path(pet_file)
    stem = pet_file.name.split("_desc-preproc_pet")[0]
    pet2t1w = pet_file.with_name(f"{stem}_from-pet_to-T1w_mode-image_xfm.mat")
    warp, affine = naming.t1w_to_template(pet_file.parent.parent / "anat", stem)
    missing = [str(p) for p in (pet2t1w, warp, affine) if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{pet_file}: missing MR-based transforms {missing}")
    return [str(warp), str(affine), str(pet2t1w)]


def derivatives_head(pet_file: str | Path) -> Head:
    """A training example from taupet-bids' own MR-based derivatives of a real scan."""
    image = nib.load(pet_file)
    targets = map_template_points(
        derivatives_transforms(Path(pet_file)), geometry.template_points()
    )
    return Head(
        np.asarray(image.dataobj, dtype=np.float32), image.affine, targets, Path(pet_file).name
    )


def find_derivative_pets(derivatives: Path) -> list[Path]:
    """Every averaged native PET (``*_desc-preproc_pet.nii.gz``) under a derivatives folder."""
    return sorted(Path(derivatives).glob("sub-*/**/pet/*_desc-preproc_pet.nii.gz"))
