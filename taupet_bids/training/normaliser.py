"""Train the two-stage MR-less normaliser: the affine stage first, then the deformable stage.

Deterministic for a seed: the pool of heads, every batch (its generator is keyed by seed, stage and
step) and the network initialisation come from the seed, and the shared loop
(:mod:`taupet_bids.training.engine`) checkpoints and resumes, so an interrupted run resumed from
its checkpoint continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from taupet_bids.normalisation import geometry
from taupet_bids.normalisation.networks import NormaliserNet, canvas_positions
from taupet_bids.training import engine
from taupet_bids.training.examples import make_example
from taupet_bids.training.heads import (
    Head,
    derivatives_head,
    find_derivative_pets,
    simulated_head,
)

#: Offsets that keep training and validation heads of one seed apart.
VALIDATION_OFFSET = 50_000
SEED_STRIDE = 100_000


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    out_dir: Path
    seed: int = 1
    n_heads: int = 160
    n_validation: int = 24
    affine_steps: int = 600
    deform_steps: int = 300
    batch_size: int = 8
    learning_rate: float = 1e-3
    checkpoint_every: int = 50
    threads: int = 2
    jobs: int = 2
    derivatives: list[Path] = field(default_factory=list)
    #: Simulated heads from the template anatomy (the shipped bundle) or realistic other-anatomy
    #: heads (training.heads.HEAD_SOURCES).
    heads_from: str = "template"

    def to_json(self) -> dict:
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        out["derivatives"] = [str(p) for p in self.derivatives]
        return out


# Heads live in a module global so that forked batch workers share them without copying.
_POOL: list[Head] = []


def _build_simulated(
    seeds: Sequence[int], jobs: int, log: Callable[[str], None], source: str = "template"
) -> list[Head]:
    heads: list[Head] = []
    start = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max(1, jobs), mp_context=context) as pool:
        for i, head in enumerate(pool.map(partial(simulated_head, source=source), seeds), 1):
            heads.append(head)
            if i % 20 == 0 or i == len(seeds):
                log(f"  simulated {i}/{len(seeds)} heads ({time.perf_counter() - start:.0f} s)")
    return heads


def build_heads(config: TrainConfig, log: Callable[[str], None]) -> tuple[list[Head], list[Head]]:
    """Training and validation heads: simulated from the seed, or from MR-based derivatives."""
    if config.derivatives:
        files = [p for d in config.derivatives for p in find_derivative_pets(Path(d))]
        if len(files) < 2:
            raise ValueError(f"need at least 2 processed PET scans in {config.derivatives}")
        order = np.random.default_rng(config.seed).permutation(len(files))
        n_val = max(1, round(len(files) * 0.1))
        log(f"reading {len(files)} scans from MR-based derivatives ({n_val} for validation)")
        heads = [derivatives_head(files[i]) for i in order]
        return heads[n_val:], heads[:n_val]
    base = config.seed * SEED_STRIDE
    source = config.heads_from
    log(f"simulating {config.n_heads} training + {config.n_validation} validation heads ({source})")
    train = _build_simulated(range(base, base + config.n_heads), config.jobs, log, source)
    val_base = base + VALIDATION_OFFSET
    val_seeds = range(val_base, val_base + config.n_validation)
    val = _build_simulated(val_seeds, config.jobs, log, source)
    return train, val


def _batch(key: tuple[int, int, int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch ``key`` = (seed, stage, step): random heads from the pool, randomly augmented.

    NumPy arrays, not tensors: tensors sent back from a forked worker go through shared memory
    and can hang the pool.
    """
    rng = np.random.default_rng(list(key))
    examples = [make_example(_POOL[int(rng.integers(len(_POOL)))], rng) for _ in range(size)]
    return np.stack([e.canvas for e in examples]), np.stack([e.targets for e in examples])


def landmark_indices(stride: int = 2) -> np.ndarray:
    """Flat indices of template-grid brain voxels used as landmarks by the affine loss."""
    mask = np.zeros(geometry.TEMPLATE_SHAPE, bool)
    mask[::stride, ::stride, ::stride] = True
    return np.flatnonzero(mask & geometry.template_brain_mask())


def deform_mask() -> torch.Tensor:
    """Where the deformable stage is supervised: the template brain, dilated by 8 mm."""
    mask = ndimage.binary_dilation(geometry.template_brain_mask(), iterations=2)
    return torch.from_numpy(mask)


def affine_loss(
    affine: torch.Tensor, targets: torch.Tensor, landmarks: torch.Tensor
) -> torch.Tensor:
    """Mean distance (mm, template space) between mapped and true template landmarks."""
    points = torch.from_numpy(geometry.template_points()).reshape(3, -1)[:, landmarks]
    canvas = targets.reshape(targets.shape[0], 3, -1)[:, :, landmarks]
    mapped = affine[:, :, :3] @ canvas + affine[:, :, 3:]
    return torch.linalg.norm(mapped - points[None], dim=1).mean()


def deform_inputs(
    network: NormaliserNet, canvas: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(PET on the template grid after the affine stage, true residual displacement)."""
    with torch.no_grad():
        affine = network.affine(canvas)
        image = network.template_view(canvas, affine)
        flat = targets.reshape(targets.shape[0], 3, -1)
        mapped = (affine[:, :, :3] @ flat + affine[:, :, 3:]).reshape(targets.shape)
    return image, mapped - network.template_points


def deform_loss(
    predicted: torch.Tensor, residual: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean distance (mm) between predicted and true residual displacement inside ``mask``."""
    return torch.linalg.norm(predicted - residual, dim=1)[:, mask].mean()


def pet_space_errors(
    network: NormaliserNet, examples: list, mask: np.ndarray
) -> dict[str, list[float]]:
    """Per-example mean error (mm, PET world) of the affine-only and full mappings in the brain.

    The affine-only error is the baseline that shows what the deformable stage adds.
    """
    errors: dict[str, list[float]] = {"affine_mm": [], "full_mm": []}
    points = network.template_points
    with torch.no_grad():
        for canvas, targets in examples:
            canvas_t, targets_t = torch.from_numpy(canvas[None]), torch.from_numpy(targets[None])
            affine, displacement = network(canvas_t)
            for key, shift in (("affine_mm", 0.0), ("full_mm", displacement)):
                positions = canvas_positions(affine, points + shift)
                error = torch.linalg.norm(positions - targets_t, dim=1)[0][torch.from_numpy(mask)]
                errors[key].append(float(error.mean()))
    return errors


def stages(config: TrainConfig, network: NormaliserNet) -> list[engine.Stage]:
    """The affine stage, then the deformable stage with the affine stage frozen."""
    landmarks = torch.from_numpy(landmark_indices())
    mask = deform_mask()
    batch = partial(_batch, size=config.batch_size)

    def affine_step(batch: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
        canvas, targets = map(torch.from_numpy, batch)
        return affine_loss(network.affine(canvas), targets, landmarks)

    def deform_step(batch: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
        image, residual = deform_inputs(network, *map(torch.from_numpy, batch))
        return deform_loss(network.deform(image), residual, mask)

    rate = config.learning_rate
    return [
        engine.Stage("affine", network.affine, config.affine_steps, batch, affine_step, rate),
        engine.Stage("deform", network.deform, config.deform_steps, batch, deform_step, rate),
    ]


def validate(network: NormaliserNet, heads: list[Head], seed: int) -> dict:
    """Mean, 95th percentile and worst PET-space error over augmented validation heads."""
    rng = np.random.default_rng([seed, 99])
    examples = [make_example(head, rng) for head in heads]
    errors = pet_space_errors(
        network, [(e.canvas, e.targets) for e in examples], geometry.template_brain_mask()
    )
    metrics: dict = {
        key: {
            "mean": float(np.mean(v)),
            "p95": float(np.percentile(v, 95)),
            "max": float(np.max(v)),
        }
        for key, v in errors.items()
    }
    metrics["n_validation"] = len(examples)
    return metrics


def train(config: TrainConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) training; write weights and validation metrics to out_dir; return them."""
    global _POOL
    config.out_dir.mkdir(parents=True, exist_ok=True)
    network = engine.seeded(NormaliserNet, config.seed, config.threads)
    (config.out_dir / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
    train_heads, val_heads = build_heads(config, log)
    _POOL = train_heads
    run = engine.Run(config.out_dir, config.seed, config.checkpoint_every, "loss_mm", log)
    run.fit(network, stages(config, network))
    metrics = validate(network, val_heads, config.seed)
    engine.save_weights(network, config.out_dir / "model.pt")
    (config.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(
        f"validation: affine {metrics['affine_mm']['mean']:.2f} mm, "
        f"affine+deformable {metrics['full_mm']['mean']:.2f} mm (mean PET-space error)"
    )
    return metrics
