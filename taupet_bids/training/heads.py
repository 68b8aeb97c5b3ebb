"""Training examples for the MR-less normaliser: a native PET and where template points fall in it.

A :class:`Head` is one averaged PET in its own scanner world plus its *target*: the PET-world
position (mm) of every voxel of the 4 mm template grid (:mod:`taupet_bids.normalisation.geometry`).
Two sources make them:

- :func:`simulated_head` draws a fresh digital phantom with the simulator (random anatomy, Braak
  stage, scanner, PSF, noise, position); the target is the simulator's exact inverse warp;
- :func:`derivatives_head` reads a real scan processed by taupet-bids' MR-based pipeline: the
  averaged PET (``desc-preproc_pet``) and its PET->T1w and T1w->template transforms, which give
  the target (the recipe of seed 000: the MR path provides the ground-truth transform).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from taupet_bids import naming
from taupet_bids.core.grids import apply_affine
from taupet_bids.normalisation import geometry
from taupet_bids.simulate import anatomy as anatomy_mod
from taupet_bids.simulate import uptake
from taupet_bids.simulate.modalities import TauPET, Visit
from taupet_bids.simulate.population import STAGE_WEIGHTS
from taupet_bids.simulate.template import load_template


@dataclass(frozen=True)
class Head:
    """A native PET (3-D, float32) with its affine and its target positions (3, 48, 56, 48)."""

    volume: np.ndarray
    affine: np.ndarray
    targets: np.ndarray
    name: str


def simulated_head(seed: int) -> Head:
    """One simulated single-frame flortaucipir-like PET with its exact target positions."""
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


def _ras_to_lps(points: np.ndarray) -> np.ndarray:
    return points * np.array([-1.0, -1.0, 1.0])[:, None]


def map_template_points(transforms: list[str], points: np.ndarray) -> np.ndarray:
    """Move template-world points (3, ...) through an ANTs transform list (ANTs order).

    ``transforms`` is the list that resamples an image into template space (e.g. T1w->template
    warp and affine, then PET->T1w): ANTs maps *points* of the fixed space through it to the
    moving space, so the result is the PET-world position of each template point.
    """
    import ants
    import pandas as pd

    flat = _ras_to_lps(points.reshape(3, -1).astype(np.float64))
    table = pd.DataFrame({"x": flat[0], "y": flat[1], "z": flat[2]})
    moved = ants.apply_transforms_to_points(3, table, list(transforms))
    out = _ras_to_lps(moved[["x", "y", "z"]].to_numpy().T)
    return out.reshape(points.shape).astype(np.float32)


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
