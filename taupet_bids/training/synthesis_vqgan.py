"""Train MCR-VQGAN (T1w -> tau SUVR on axial slices) on a participant run's (T1w, SUVR) pairs.

Two stages of the shared loop (:mod:`taupet_bids.training.engine`), on the pairs, split and
held-out evaluation of the 3-D U-Net (:mod:`taupet_bids.training.synthesis`):

1. ``features``: the perceptual feature autoencoder learns to reconstruct training SUVR slices
   (masked L1). No pretrained network can be downloaded, so the perceptual term compares the
   activations of this encoder, frozen afterwards.
2. ``gan``: generator and discriminator together. Each step's loss is the generator's
   (masked L1 + perceptual + adversarial + VQ commitment) plus the discriminator's (binary
   cross-entropy, real labels smoothed to [0.9, 1] as in the paper); the generator's
   adversarial and perceptual terms read the discriminator and the encoder through detached
   weights, and the discriminator reads a detached synthetic slice, so one Adam step moves
   each network only by its own loss (simultaneous rather than alternating updates). The
   codebook moves only by its EMA, during the generator's forward pass.

Batches are axial slices of random training volumes (slices with brain only), drawn from a
generator keyed by (seed, stage, step), so a seed gives bit-identical weights and a resumed run
continues as the uninterrupted one would. The T1w is augmented as for the U-Net.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional

from taupet_bids.errors import InputError
from taupet_bids.synthesis import preprocessing, vqgan
from taupet_bids.training import engine
from taupet_bids.training.synthesis import (
    NOISE_SD_MAX,
    SCALE_RANGE,
    Examples,
    data_fields,
    evaluate,
    prepare_sets,
    save_run,
)
from taupet_bids.training.synthesis_tasks import TRAINING

#: The loss weights of the generator (ours; the paper's were tuned for its scale).
WEIGHTS = {"l1": 10.0, "perceptual": 1.0, "adversarial": 0.1, "vq": 1.0}
#: One-sided label smoothing of real slices (the paper's range).
REAL_LABEL = (0.9, 1.0)


@dataclass
class VQGANConfig:
    """Everything that defines a training run."""

    out_dir: Path
    derivatives: list[Path]
    task: str = "tau-from-t1w"
    #: Only target SUVR images with this ``rec-`` label (None: all).
    reconstruction: str | None = None
    #: None (what the shared CLI passes without --seed): the task's training seed.
    seed: int | None = None
    steps: int = 2000
    feature_steps: int = 200
    batch_size: int = 4
    learning_rate: float = 1e-3
    checkpoint_every: int = 50
    threads: int = 1
    channels: list[int] = field(default_factory=lambda: list(vqgan.CHANNELS))
    res_blocks: int = vqgan.RES_BLOCKS
    codebook_size: int = vqgan.CODEBOOK_SIZE
    embedding_dim: int = vqgan.EMBEDDING_DIM
    decay: float = vqgan.DECAY
    discriminator_channels: int = vqgan.DISCRIMINATOR_CHANNELS
    feature_channels: list[int] = field(default_factory=lambda: list(vqgan.FEATURE_CHANNELS))
    weights: dict[str, float] = field(default_factory=lambda: dict(WEIGHTS))
    #: What the training images were, for the model card (empty: the card says to state it).
    data_statement: str = ""

    def __post_init__(self) -> None:
        if self.seed is None:
            self.seed = TRAINING[self.task].seed

    def to_json(self) -> dict:
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        out["derivatives"] = [str(p) for p in self.derivatives]
        return out

    def architecture(self) -> dict:
        keys = ("channels", "res_blocks", "codebook_size", "embedding_dim", "decay",
                "discriminator_channels", "feature_channels")  # fmt: skip
        return {key: getattr(self, key) for key in keys}

    def network(self) -> vqgan.MCRVQGAN:
        return vqgan.MCRVQGAN(**self.architecture())


# The training volumes live in a module global so that forked batch workers share them.
_POOL: Examples | None = None


def brain_slices() -> np.ndarray:
    """Indices of the axial slices of the 4 mm grid that hold brain voxels."""
    return np.flatnonzero(preprocessing.network_mask().any(axis=(0, 1)))


def _batch(key: tuple[int, int, int], size: int) -> tuple[np.ndarray, ...]:
    """Batch ``key``: (T1w, SUVR, brain mask, real label) of random axial brain slices."""
    rng = np.random.default_rng(list(key))
    volumes = rng.integers(len(_POOL.pairs), size=size)
    slices = rng.choice(brain_slices(), size=size)
    mask = preprocessing.network_mask()
    inputs = []
    for volume, z in zip(volumes, slices, strict=True):
        t1w = _POOL.inputs[volume][:, :, z]
        moved = t1w * rng.uniform(*SCALE_RANGE)
        moved = moved + rng.normal(0.0, rng.uniform(0.0, NOISE_SD_MAX), moved.shape)
        inputs.append(np.where(t1w > 0, moved, 0.0))
    targets = _POOL.targets[volumes, :, :, slices]
    labels = rng.uniform(*REAL_LABEL, size=size)
    return (
        np.stack(inputs)[:, None].astype(np.float32),
        targets[:, None].astype(np.float32),
        mask[:, :, slices].transpose(2, 0, 1)[:, None],
        labels.astype(np.float32),
    )


def _tensors(batch: tuple[np.ndarray, ...]) -> list[torch.Tensor]:
    return [torch.from_numpy(array) for array in batch]


def masked_l1(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (predicted - target).abs()[mask].mean()


def frozen(module: nn.Module, *args) -> torch.Tensor | list:
    """``module(*args)`` with its weights detached: gradients reach the input, not the module."""
    weights = {name: value.detach() for name, value in module.state_dict().items()}
    return functional_call(module, weights, args)


def _logits(outputs: list[torch.Tensor]) -> torch.Tensor:
    """PatchDiscriminator returns every layer's output; the last is the patch logits."""
    return outputs[-1]


def feature_stage(config: VQGANConfig, network: vqgan.MCRVQGAN) -> engine.Stage:
    """Stage 1: the perceptual encoder learns SUVR slices by reconstructing them."""

    def step(batch) -> torch.Tensor:
        _, targets, mask, _ = _tensors(batch)
        return masked_l1(network.features(targets), targets, mask)

    return engine.Stage(
        "features", network.features, config.feature_steps,
        partial(_batch, size=config.batch_size), step, config.learning_rate,
    )  # fmt: skip


def gan_stage(config: VQGANConfig, network: vqgan.MCRVQGAN) -> engine.Stage:
    """Stage 2: generator and discriminator, each moved by its own loss in one step."""
    weights = config.weights

    def perceptual(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = network.features.encoder(real)
        made = frozen(network.features.encoder, fake)
        return torch.stack([(m - w).abs().mean() for m, w in zip(made, wanted, strict=True)]).mean()

    def step(batch) -> torch.Tensor:
        inputs, targets, mask, labels = _tensors(batch)
        fake, commitment = network.generator(inputs)
        fooled = _logits(frozen(network.discriminator, fake))
        generator_loss = (
            weights["l1"] * masked_l1(fake, targets, mask)
            + weights["perceptual"] * perceptual(fake, targets)
            + weights["adversarial"]
            * functional.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
            + weights["vq"] * commitment
        )
        real = _logits(network.discriminator(targets))
        made = _logits(network.discriminator(fake.detach()))
        smoothed = labels[:, None, None, None].expand_as(real)
        discriminator_loss = functional.binary_cross_entropy_with_logits(
            real, smoothed
        ) + functional.binary_cross_entropy_with_logits(made, torch.zeros_like(made))
        return generator_loss + discriminator_loss

    return engine.Stage(
        "gan", nn.ModuleList([network.generator, network.discriminator]), config.steps,
        partial(_batch, size=config.batch_size), step, config.learning_rate,
    )  # fmt: skip


def train(config: VQGANConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) training; write weights, split and metrics to out_dir; return metrics."""
    global _POOL
    if config.task != "tau-from-t1w":
        raise InputError(None, f"--task {config.task}: MCR-VQGAN synthesises tau from T1w only")
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
    sets, counts = prepare_sets(config, log)
    network = engine.seeded(config.network, config.seed, config.threads)
    _POOL = sets["train"]
    run = engine.Run(config.out_dir, config.seed, config.checkpoint_every, "loss", log)
    run.fit(network, [feature_stage(config, network), gan_stage(config, network)])
    metrics = {**evaluate(network, sets), **counts, **data_fields(sets["train"].pairs, config.task)}
    return save_run(network, metrics, config.out_dir, log)
