"""A tiny labelled cohort for the classifier's tests: template-space SUVR images and diagnoses.

Every scan is SUVR 1 in the template brain plus noise; AD scans add :data:`AD_EXCESS` SUVR in
the Braak I-IV regions, MCI scans a third of that. Images are written where a participant-level
run writes them, and ``participants.tsv`` (plus a ``sessions.tsv`` for two-visit participants)
where a BIDS dataset has it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from taupet_bids import naming, templates
from taupet_bids.classification.bundle import CONFIGS
from taupet_bids.classification.networks import Conv5FC3
from taupet_bids.models.bundle import state_by_child
from taupet_bids.training import engine
from taupet_bids.training.classifier import TrainConfig

#: 6 CN, 6 AD and 2 MCI participants with one scan; two with two visits.
DIAGNOSES = {f"cn{i}": "CN" for i in range(6)} | {f"ad{i}": "AD" for i in range(6)}
DIAGNOSES |= {"mci0": "MCI", "mci1": "MCI"}
TWO_VISITS = {"conv": ("CN", "MCI"), "adtwo": ("AD", "AD")}
#: A network small enough to train in seconds.
TINY = {"channels": [4, 4, 4, 4, 4], "hidden": [8], "dropout": 0.0}
AD_EXCESS = 1.5
NOISE_SD = 0.05
TAU_STAGES = (1, 2, 3, 4)


@cache
def _masks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    brain = np.asarray(nib.load(templates.brain_mask_path()).dataobj) > 0
    braak = np.asarray(nib.load(templates.atlas_path("Braak")).dataobj)
    return brain, np.isin(braak, TAU_STAGES), nib.load(templates.t1w_path(2)).affine


def suvr_volume(diagnosis: str, rng: np.random.Generator) -> np.ndarray:
    """A template-grid SUVR image for one diagnosis (CN, MCI or AD)."""
    brain, tau, _ = _masks()
    excess = {"CN": 0.0, "MCI": AD_EXCESS / 3, "AD": AD_EXCESS}[diagnosis]
    volume = brain * 1.0 + tau * excess + rng.normal(0, NOISE_SD, brain.shape) * brain
    return volume.astype(np.float32)


def write_suvr(path: Path, volume: np.ndarray) -> Path:
    """Save a template-grid SUVR image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(volume, _masks()[2]), path)
    return path


def write_cohort(
    root: Path, diagnoses: dict[str, str], two_visits: dict[str, tuple[str, str]], seed: int = 5
) -> tuple[Path, Path]:
    """(derivatives, bids) folders: one scan per ``diagnoses`` participant (label -> diagnosis),
    two (ses-1, ses-2) with per-visit diagnoses for each ``two_visits`` participant."""
    rng = np.random.default_rng(seed)
    bids, derivatives = root / "bids", root / "derivatives"
    bids.mkdir(parents=True)
    rows = ["participant_id\tdiagnosis"]
    for label, diagnosis in diagnoses.items():
        rows.append(f"sub-{label}\t{diagnosis}")
        stem = f"sub-{label}_trc-AV1451"
        write_suvr(naming.suvr_image(derivatives, stem), suvr_volume(diagnosis, rng))
    for label, visits in two_visits.items():
        rows.append(f"sub-{label}\t{visits[0]}")
        table = ["session_id\tdiagnosis"]
        for session, diagnosis in zip(("1", "2"), visits, strict=True):
            table.append(f"ses-{session}\t{diagnosis}")
            stem = f"sub-{label}_ses-{session}_trc-AV1451"
            write_suvr(naming.suvr_image(derivatives, stem), suvr_volume(diagnosis, rng))
        folder = bids / f"sub-{label}"
        folder.mkdir()
        (folder / f"sub-{label}_sessions.tsv").write_text("\n".join(table) + "\n")
    (bids / "participants.tsv").write_text("\n".join(rows) + "\n")
    return derivatives, bids


def tiny_config(out: Path, cohort: tuple[Path, Path]) -> TrainConfig:
    """40 steps of the tiny network on a cohort from :func:`write_cohort`."""
    derivatives, bids = cohort
    return TrainConfig(
        out, [derivatives], bids, seed=3, steps=40, batch_size=6, learning_rate=1e-2,
        checkpoint_every=20, **TINY,
    )  # fmt: skip


def write_untrained_bundle(out_dir: Path, seed: int = 3) -> Path:
    """A bundle of the tiny network with its initial weights, written without training.

    It loads, predicts and draws its occlusion map like a trained bundle, in seconds, so it
    tests the pipeline's wiring; its P(AD) means nothing.
    """
    torch.manual_seed(seed)
    weights = Path(out_dir).with_name(f"{Path(out_dir).name}-weights.pt")
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_by_child(Conv5FC3(**TINY)), weights)
    metadata = {
        "version": "0.0.0-untrained",
        "name": "untrained tiny test classifier",
        "taupet_bids": {"architecture": TINY, "threshold": 0.5},
    }
    return engine.write_bundle(
        out_dir, weights, metadata, lambda _: "Untrained test bundle.\n", CONFIGS
    )
