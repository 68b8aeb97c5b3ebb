"""Train the PET-MR harmoniser on simulated PET-MR / PET-CT pairs (:mod:`harmoniser_data`).

One stage of the shared loop (:mod:`taupet_bids.training.engine`). Loss: mean squared error of
the predicted log-ratio field against the smoothed target inside the template brain, plus
``ct_weight`` x the mean squared error of the pseudo-CT (HU / 1000) against the pair's CT
inside the CT's field of view (only pairs that have a CT). Batches are keyed by (seed, stage,
step); the only augmentation is white noise on the SUVR channel (SD up to
:data:`NOISE_SD_MAX`), since the attenuation bias is tied to the head's position in template
space.

Held-out metrics: the mean absolute log-ratio inside the brain before (the PET-MR as measured)
and after harmonisation, in percent. The regional benchmark with its baselines is
benchmarks/harmonisation.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from taupet_bids.errors import InputError
from taupet_bids.harmonisation import preprocessing
from taupet_bids.harmonisation.networks import BOUND, CHANNELS, HarmoniserNet
from taupet_bids.training import engine
from taupet_bids.training.harmoniser_data import (
    SETS,
    Example,
    Pair,
    find_pairs,
    load_example,
    split_participants,
)

NOISE_SD_MAX = 0.03
#: Seed reserved for this model's training (docs/models.md, section 10).
SEED = 32


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    out_dir: Path
    derivatives: list[Path]
    bids_dir: Path
    seed: int = SEED
    steps: int = 2000
    batch_size: int = 4
    learning_rate: float = 1e-3
    checkpoint_every: int = 50
    threads: int = 1
    channels: list[int] = field(default_factory=lambda: list(CHANNELS))
    bound: float = BOUND
    ct_weight: float = 0.1

    def to_json(self) -> dict:
        out = asdict(self)
        out.update(
            out_dir=str(self.out_dir),
            bids_dir=str(self.bids_dir),
            derivatives=[str(p) for p in self.derivatives],
        )
        return out

    def architecture(self) -> dict:
        return {"channels": list(self.channels), "bound": self.bound}

    def network(self) -> HarmoniserNet:
        return HarmoniserNet(self.channels, self.bound)


@dataclass(frozen=True)
class Examples:
    images: np.ndarray
    targets: np.ndarray
    cts: np.ndarray

    @staticmethod
    def stack(examples: list[Example]) -> Examples:
        shape = preprocessing.INPUT_SHAPE
        if not examples:
            empty = np.zeros((0, *shape), np.float32)
            return Examples(np.zeros((0, 2, *shape), np.float32), empty, empty)
        return Examples(
            *(np.stack([getattr(e, k) for e in examples]) for k in ("image", "target", "ct"))
        )


# Shared with the forked batch workers.
_POOL: Examples | None = None


def _batch(key: tuple[int, int, int], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(list(key))
    picks = rng.integers(len(_POOL.targets), size=size)
    images = _POOL.images[picks].copy()
    noise = rng.uniform(0.0, NOISE_SD_MAX, size)[:, None, None, None]
    images[:, 0] += (noise * rng.standard_normal(images[:, 0].shape)).astype(np.float32)
    images[:, 0] = np.clip(images[:, 0], 0.0, preprocessing.SUVR_MAX)
    return images, _POOL.targets[picks], _POOL.cts[picks]


def loss_terms(network: HarmoniserNet, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(field MSE in the brain, pseudo-CT MSE where a CT exists)."""
    images, targets, cts = (torch.from_numpy(np.ascontiguousarray(a)) for a in batch)
    field_pred, ct_pred = network(images)
    brain = torch.from_numpy(preprocessing.brain_mask_4mm())
    field_loss = ((field_pred[:, 0] - targets)[:, brain] ** 2).mean()
    has_ct = torch.isfinite(cts)
    ct_loss = (
        ((ct_pred[:, 0] - torch.nan_to_num(cts))[has_ct] ** 2).mean()
        if bool(has_ct.any())
        else torch.zeros(())
    )
    return field_loss, ct_loss


def predict(network: HarmoniserNet, images: np.ndarray) -> np.ndarray:
    """The 4 mm fields of a stack of inputs, one scan at a time."""
    with torch.no_grad():
        fields = [network.correction(torch.from_numpy(image[None]))[0, 0] for image in images]
    return torch.stack(fields).numpy()


def evaluate(network: HarmoniserNet, sets: dict[str, Examples]) -> dict:
    """Mean absolute residual log-ratio (percent) in the brain, before and after, per set."""
    brain = preprocessing.brain_mask_4mm()
    network.eval()
    out = {}
    for name, examples in sets.items():
        if not len(examples.targets):
            out[name] = {"pairs": 0, "before_percent": None, "after_percent": None}
            continue
        fields = predict(network, examples.images)
        before = np.abs(np.expm1(examples.targets[:, brain])).mean()
        after = np.abs(np.expm1(examples.targets[:, brain] - fields[:, brain])).mean()
        out[name] = {
            "pairs": len(examples.targets),
            "before_percent": round(100 * float(before), 4),
            "after_percent": round(100 * float(after), 4),
        }
    return out


def prepare_sets(config: TrainConfig, log: Callable[[str], None]) -> dict[str, Examples]:
    pairs = find_pairs(config.derivatives, config.bids_dir)
    if not pairs:
        raise InputError(
            config.derivatives[0],
            "no rec-mrac / rec-ctac template-space SUVR pairs found",
            "run taupet-bids participant on a taupet-bids-simulate --pet-mr dataset first",
        )
    assigned = split_participants(pairs, config.seed)
    rows = [
        {
            "participant_id": p.participant,
            "session_id": p.session or "n/a",
            "set": assigned[p.participant],
            "ct": "n/a" if p.ct is None else p.ct.name,
            "file": p.mrac.name,
        }
        for p in pairs
    ]
    pd.DataFrame(rows).to_csv(config.out_dir / "split.tsv", sep="\t", index=False)
    sets: dict[str, list[Pair]] = {name: [] for name in SETS}
    for pair in pairs:
        sets[assigned[pair.participant]].append(pair)
    log("pairs per set: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))
    if not sets["train"]:
        raise InputError(config.derivatives[0], "no training pair after the participant split")
    return {
        name: Examples.stack([load_example(p) for p in chosen]) for name, chosen in sets.items()
    }


def train(config: TrainConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) training; write weights, split and metrics to out_dir; return metrics."""
    global _POOL
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
    sets = prepare_sets(config, log)
    network = engine.seeded(config.network, config.seed, config.threads)
    _POOL = sets["train"]

    def step(batch) -> torch.Tensor:
        field_loss, ct_loss = loss_terms(network, batch)
        return field_loss + config.ct_weight * ct_loss

    stage = engine.Stage(
        "main",
        network,
        config.steps,
        partial(_batch, size=config.batch_size),
        step,
        config.learning_rate,
    )
    engine.Run(config.out_dir, config.seed, config.checkpoint_every, "loss", log).fit(
        network, [stage]
    )
    metrics = evaluate(network, sets)
    engine.save_weights(network, config.out_dir / "model.pt")
    (config.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(f"mean |log-ratio| in the brain, before -> after: {metrics}")
    return metrics
