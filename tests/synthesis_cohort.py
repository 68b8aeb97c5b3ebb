"""A tiny paired cohort for the synthesis tests: template-space T1w and tau SUVR per scan.

Each participant has a tau load ``a`` in [0, 1.5]: SUVR is 1 in the template brain plus ``a`` in
the Braak I-IV regions, and the T1w is the template T1w darkened there by ``ATROPHY * a``
(atrophy that follows tau), plus noise. The T1w therefore tells a network where and how much
tau there is, so a few steps of a tiny network learn something. Files are written where a
participant-level run with ``--synthesize`` writes them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import nibabel as nib
import numpy as np

from taupet_bids import naming, templates
from taupet_bids.synthesis import diffusion_inference
from taupet_bids.training.synthesis import TrainConfig

#: A network small enough to train in seconds.
TINY = {"channels": [4, 8], "strides": [2], "num_res_units": 0}
TRACER = "AV1451"
ATROPHY = 0.25
TAU_STAGES = (1, 2, 3, 4)
PARTICIPANTS = 8


@cache
def _template() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    brain = np.asarray(nib.load(templates.brain_mask_path()).dataobj) > 0
    braak = np.isin(np.asarray(nib.load(templates.atlas_path("Braak")).dataobj), TAU_STAGES)
    t1w = nib.load(templates.t1w_path(2))
    return brain, braak, np.asarray(t1w.dataobj, np.float32), t1w.affine


def _save(path: Path, volume: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(volume.astype(np.float32), _template()[3]), path)
    return path


def write_pair(
    derivatives: Path, label: str, load: float, rng: np.random.Generator, atrophy: float = ATROPHY
) -> Path:
    """One scan's template-space T1w and SUVR (with a sidecar); returns the T1w's path.
    ``atrophy`` 0 gives every scan the same anatomy (only the noise differs)."""
    brain, braak, t1w, _ = _template()
    stem = f"sub-{label}_trc-{TRACER}"
    suvr = brain * 1.0 + braak * load + rng.normal(0, 0.03, brain.shape) * brain
    image = naming.suvr_image(derivatives, stem)
    _save(image, suvr)
    sidecar = {"TracerName": "flortaucipir", "ReferenceRegion": "InfCerebGrey", "Units": "unitless"}
    image.with_name(image.name.replace(".nii.gz", ".json")).write_text(json.dumps(sidecar))
    anatomy = t1w * (1 - atrophy * load * braak) + rng.normal(0, 5.0, t1w.shape)
    anat = derivatives / f"sub-{label}" / "anat"
    return _save(anat / f"sub-{label}_{naming.SPACE}_desc-preproc_T1w.nii.gz", anatomy)


#: Other PET the cohort can carry: (trc- label, TracerName, reference, change per tau load in
#: the Braak I-IV regions). FDG falls where tau is; TSPO rises.
OTHER_PET = {
    "fdg": ("18FFDG", "FDG", "Pons", -0.2),
    "tspo": ("11CPBR28", "PBR28", "WholeCereb", 0.3),
}


def write_other_pet(
    derivatives: Path, label: str, load: float, kind: str, rng: np.random.Generator
) -> Path:
    """One participant's template-space FDG or TSPO SUVR image (with a sidecar), where a run
    with ``--tracer`` writes it."""
    brain, braak, _, _ = _template()
    trc, name, reference, per_load = OTHER_PET[kind]
    suvr = brain * 1.0 + braak * per_load * load + rng.normal(0, 0.03, brain.shape) * brain
    image = naming.suvr_image(derivatives, f"sub-{label}_trc-{trc}")
    _save(image, suvr)
    sidecar = {"TracerName": name, "ReferenceRegion": reference, "Units": "unitless"}
    image.with_name(image.name.replace(".nii.gz", ".json")).write_text(json.dumps(sidecar))
    return image


def write_cohort(
    root: Path, n: int = PARTICIPANTS, seed: int = 5, other: tuple[str, ...] = (),
    atrophy: float = ATROPHY,
) -> Path:  # fmt: skip
    """A derivatives folder with ``n`` participants, tau loads spread over [0, 1.5], and the
    ``other`` PET (``fdg``, ``tspo``) of each."""
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng(seed + 1)
    derivatives = root / "derivatives"
    for index, load in enumerate(np.linspace(0.0, 1.5, n)):
        write_pair(derivatives, f"p{index}", float(load), rng, atrophy)
        for kind in other:
            write_other_pet(derivatives, f"p{index}", float(load), kind, extra)
    return derivatives


def tiny_config(out: Path, derivatives: Path, steps: int = 12) -> TrainConfig:
    """A few steps of the tiny network on a cohort from :func:`write_cohort`."""
    return TrainConfig(
        out, [derivatives], seed=3, steps=steps, batch_size=2, learning_rate=1e-2,
        checkpoint_every=6, **TINY,
    )  # fmt: skip


def braak_suvr_of_sample(network, image, mmse: int, seed: int, guidance: float) -> float:
    """Braak I-IV SUVR of one diffusion sample (DDIM 10 steps) of a T1w tensor at ``mmse`` and
    the constructed cohort's age: what the direction test asserts on and its fixture's script
    records."""
    made = diffusion_inference.sample(
        network, image, [f"mmse={mmse}", "age=70"], seed=seed, steps=10, guidance=guidance
    )
    return float(made.mean[_template()[1]].mean())
