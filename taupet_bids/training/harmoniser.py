"""Train the PET-MR harmoniser on simulated PET-MR / PET-CT pairs (:mod:`harmoniser_data`).

One stage of the shared loop (:mod:`taupet_bids.training.engine`). Loss: mean squared error of
the predicted log-ratio field against the smoothed target inside the template brain, plus
``region_weight`` x the mean squared error of the regional log-ratios
(:mod:`harmoniser_regions`), plus ``ct_weight`` x the mean squared error of the pseudo-CT
(HU / 1000) against the pair's CT inside the CT's field of view (only pairs that have a CT).
Batches are keyed by (seed, stage, step); the only augmentation is white noise on the SUVR
channel (SD up to :data:`NOISE_SD_MAX`), since the attenuation bias is tied to the head's
position in template space.

**The AC method** (``conditioning``, since 0.3.0; :mod:`networks`): each PET/MR example is given
its scan's method as the sidecar names it, except (for ``method``) a share
:data:`UNNAMED_FRACTION` given as ``mr`` (a method the sidecar does not name), so that output
learns the pooled correction.

A share ``identity_fraction`` of the examples in each batch is the pair's PET-CT image with a
zero target (given as ``ct``: for a conditioned network that output is zero by construction, so
these examples teach it nothing; they are for the unconditioned design). Not told the method,
the network can only read the AC from the image, which does not show it: the first benchmark's
unconditioned network, never shown a PET-CT image, moved one by 2.7 %; shown them, it hedged its
correction on every scan (docs/harmonisation.md).

Held-out metrics (:func:`evaluate`): the mean absolute log-ratio inside the brain and over the
regions before (the PET-MR as measured) and after harmonisation (told each scan's method, and
told ``mr``), and how much the network moves the PET-CT images (told ``ct``, and told ``mr`` as a
scan whose sidecar wrongly says MR-based AC would be), in percent. The regional benchmark with
its baselines is benchmarks/harmonisation.py.
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
from taupet_bids.harmonisation.networks import BOUND, CHANNELS, HarmoniserNet, method_index
from taupet_bids.training import engine, harmoniser_regions
from taupet_bids.training.harmoniser_data import (
    SETS,
    Example,
    Pair,
    find_pairs,
    load_example,
    split_participants,
)

NOISE_SD_MAX = 0.03
#: Default share of PET-CT inputs (target: zero field) in a batch: none, since the conditioned
#: network's PET-CT output is zero by construction (0.2.0, unconditioned: 0.5).
IDENTITY_FRACTION = 0.0
#: Share of PET/MR examples given as ``mr``, the method their sidecar does not name.
UNNAMED_FRACTION = 0.25
CT, UNNAMED = method_index("ct"), method_index("mr")
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
    region_weight: float = 1.0
    identity_fraction: float = IDENTITY_FRACTION
    #: How much of the AC method the network is told (``networks.CONDITIONINGS``): ``ct``
    #: (only whether it was CT-based; the default, chosen by the benchmark), ``method``, ``none``.
    conditioning: str = "ct"

    def to_json(self) -> dict:
        out = asdict(self)
        out.update(
            out_dir=str(self.out_dir),
            bids_dir=str(self.bids_dir),
            derivatives=[str(p) for p in self.derivatives],
        )
        return out

    def architecture(self) -> dict:
        return {
            "channels": list(self.channels),
            "bound": self.bound,
            "conditioning": self.conditioning,
        }

    def network(self) -> HarmoniserNet:
        return HarmoniserNet(**self.architecture())


@dataclass(frozen=True)
class Examples:
    images: np.ndarray
    targets: np.ndarray
    cts: np.ndarray
    identity_images: np.ndarray
    regional_targets: np.ndarray
    methods: np.ndarray

    @staticmethod
    def stack(examples: list[Example]) -> Examples:
        shape = preprocessing.INPUT_SHAPE
        if not examples:
            empty = np.zeros((0, *shape), np.float32)
            inputs = np.zeros((0, 2, *shape), np.float32)
            regions = np.zeros((0, len(harmoniser_regions.region_weights()[0])), np.float32)
            return Examples(inputs, empty, empty, inputs, regions, np.zeros(0, np.int64))
        fields = ("image", "target", "ct", "identity_image", "regional_target")
        stacked = (np.stack([getattr(e, k) for e in examples]) for k in fields)
        return Examples(*stacked, np.array([e.method for e in examples], np.int64))


# Shared with the forked batch workers.
_POOL: Examples | None = None


def _batch(
    key: tuple[int, int, int], size: int, identity_fraction: float = 0.0
) -> tuple[np.ndarray, ...]:
    """(inputs, voxel targets, CTs, regional targets, AC method indices) of one step's
    examples."""
    rng = np.random.default_rng(list(key))
    picks = rng.integers(len(_POOL.targets), size=size)
    identity = rng.random(size) < identity_fraction
    unnamed = rng.random(size) < UNNAMED_FRACTION
    methods = np.where(identity, CT, np.where(unnamed, UNNAMED, _POOL.methods[picks]))
    images = np.where(
        identity[:, None, None, None, None], _POOL.identity_images[picks], _POOL.images[picks]
    )
    targets = np.where(identity[:, None, None, None], np.float32(0.0), _POOL.targets[picks])
    regional = np.where(identity[:, None], np.float32(0.0), _POOL.regional_targets[picks])
    noise = rng.uniform(0.0, NOISE_SD_MAX, size)[:, None, None, None]
    images[:, 0] += (noise * rng.standard_normal(images[:, 0].shape)).astype(np.float32)
    images[:, 0] = np.clip(images[:, 0], 0.0, preprocessing.SUVR_MAX)
    return images, targets, _POOL.cts[picks], regional, methods


def _region_weights() -> torch.Tensor:
    return torch.from_numpy(harmoniser_regions.region_weights()[1])


def regional_residual(
    network_field: torch.Tensor, images: torch.Tensor, regional_targets: torch.Tensor
) -> torch.Tensor:
    """(batch, regions) target minus predicted regional log-ratio; NaN where no target."""
    guess = harmoniser_regions.predicted(images[:, 0], network_field[:, 0], _region_weights())
    return regional_targets - guess


def loss_terms(network: HarmoniserNet, batch) -> tuple[torch.Tensor, ...]:
    """(field MSE in the brain, regional MSE, pseudo-CT MSE where a CT exists)."""
    images, targets, cts, regional, methods = (
        torch.from_numpy(np.ascontiguousarray(a)) for a in batch
    )
    field_pred, ct_pred = network(images, methods)
    brain = torch.from_numpy(preprocessing.brain_mask_4mm())
    field_loss = ((field_pred[:, 0] - targets)[:, brain] ** 2).mean()
    error = regional_residual(field_pred, images, regional)
    known = torch.isfinite(error)
    region_loss = (error[known] ** 2).mean() if bool(known.any()) else torch.zeros(())
    has_ct = torch.isfinite(cts)
    ct_loss = (
        ((ct_pred[:, 0] - torch.nan_to_num(cts))[has_ct] ** 2).mean()
        if bool(has_ct.any())
        else torch.zeros(())
    )
    return field_loss, region_loss, ct_loss


def predict(network: HarmoniserNet, images: np.ndarray, methods: np.ndarray) -> np.ndarray:
    """The 4 mm fields of a stack of inputs, one scan at a time, each told its AC method."""
    with torch.no_grad():
        fields = [
            network.correction(torch.from_numpy(image[None]), torch.tensor([int(method)]))[0, 0]
            for image, method in zip(images, methods, strict=True)
        ]
    return torch.stack(fields).numpy()


METRICS = (
    "before_percent",
    "after_percent",
    "regional_before_percent",
    "regional_after_percent",
    "regional_after_unnamed_percent",
    "petct_moved_percent",
    "petct_as_mr_moved_percent",
)


def _regional_error(fields: np.ndarray, examples: Examples) -> float:
    with torch.no_grad():
        residual = regional_residual(
            torch.from_numpy(fields[:, None]),
            torch.from_numpy(examples.images),
            torch.from_numpy(examples.regional_targets),
        ).numpy()
    return np.abs(np.expm1(residual[np.isfinite(residual)])).mean()


def _moved(network: HarmoniserNet, examples: Examples, method: int) -> float:
    """Mean |exp(field) - 1| inside the brain of the PET-CT inputs told ``method``."""
    told = np.full(len(examples.targets), method)
    through = predict(network, examples.identity_images, told)
    return np.abs(np.expm1(through[:, preprocessing.brain_mask_4mm()])).mean()


def evaluate(network: HarmoniserNet, sets: dict[str, Examples]) -> dict:
    """Per set, in percent: the mean absolute residual log-ratio inside the brain and over the
    regions' means (:mod:`harmoniser_regions`), before and after (each scan told its AC method;
    and all told ``mr``), and how much the network moves the PET-CT images inside the brain
    (mean |exp(field) - 1|; told ``ct``, and told ``mr``)."""
    brain = preprocessing.brain_mask_4mm()
    network.eval()
    out = {}
    for name, examples in sets.items():
        if not len(examples.targets):
            out[name] = {"pairs": 0, **dict.fromkeys(METRICS, None)}
            continue
        count = len(examples.targets)
        fields = predict(network, examples.images, examples.methods)
        unnamed = predict(network, examples.images, np.full(count, UNNAMED))
        known = np.isfinite(examples.regional_targets)

        values = (
            np.abs(np.expm1(examples.targets[:, brain])).mean(),
            np.abs(np.expm1(examples.targets[:, brain] - fields[:, brain])).mean(),
            np.abs(np.expm1(examples.regional_targets[known])).mean(),
            _regional_error(fields, examples),
            _regional_error(unnamed, examples),
            _moved(network, examples, CT),
            _moved(network, examples, UNNAMED),
        )
        out[name] = {
            "pairs": count,
            **{key: round(100 * float(v), 4) for key, v in zip(METRICS, values, strict=True)},
        }
    return out


def prepare_sets(config: TrainConfig, log: Callable[[str], None]) -> dict[str, Examples]:
    skipped: list[str] = []
    pairs = find_pairs(config.derivatives, config.bids_dir, skipped)
    for reason in skipped:
        log(f"pair left out: {reason}")
    if not pairs:
        raise InputError(
            config.derivatives[0],
            "no rec-mrac / rec-ctac template-space SUVR pairs found"
            + (f" ({len(skipped)} left out without a T1w)" if skipped else ""),
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
        field_loss, region_loss, ct_loss = loss_terms(network, batch)
        return field_loss + config.region_weight * region_loss + config.ct_weight * ct_loss

    stage = engine.Stage(
        "main",
        network,
        config.steps,
        partial(_batch, size=config.batch_size, identity_fraction=config.identity_fraction),
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
