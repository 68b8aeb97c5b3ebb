"""Train the two-stage MR-less normaliser: the affine stage first, then the deformable stage.

Deterministic for a seed: the pool of heads, every batch (its generator is keyed by seed, stage and
step) and the network initialisation come from the seed, so an interrupted run resumed from its
checkpoint continues exactly as the uninterrupted run would have.
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
from taupet_bids.normalisation.networks import (
    AffineNet,
    DeformNet,
    canvas_positions,
    sample_canvas,
)
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
STAGES = ("affine", "deform")


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

    def to_json(self) -> dict:
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        out["derivatives"] = [str(p) for p in self.derivatives]
        return out


# Heads live in a module global so that forked batch workers share them without copying.
_POOL: list[Head] = []
_SEED = 0


def _build_simulated(seeds: Sequence[int], jobs: int, log: Callable[[str], None]) -> list[Head]:
    heads: list[Head] = []
    start = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max(1, jobs), mp_context=context) as pool:
        for i, head in enumerate(pool.map(simulated_head, seeds), 1):
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
    log(f"simulating {config.n_heads} training + {config.n_validation} validation heads")
    train = _build_simulated(range(base, base + config.n_heads), config.jobs, log)
    val_base = base + VALIDATION_OFFSET
    val = _build_simulated(range(val_base, val_base + config.n_validation), config.jobs, log)
    return train, val


def _batch(key: tuple[int, int, int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch ``key`` = (seed, stage, step): random heads from the pool, randomly augmented."""
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
    affine_net: AffineNet, canvas: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(PET on the template grid after the affine, true residual displacement, affine)."""
    with torch.no_grad():
        affine = affine_net(canvas)
        points = torch.from_numpy(geometry.template_points())[None].expand(
            canvas.shape[0], -1, -1, -1, -1
        )
        image = sample_canvas(canvas, canvas_positions(affine, points))
        flat = targets.reshape(targets.shape[0], 3, -1)
        mapped = (affine[:, :, :3] @ flat + affine[:, :, 3:]).reshape(targets.shape)
        residual = mapped - points
    return image, residual, affine


def deform_loss(
    predicted: torch.Tensor, residual: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean distance (mm) between predicted and true residual displacement inside ``mask``."""
    return torch.linalg.norm(predicted - residual, dim=1)[:, mask].mean()


def pet_space_errors(
    affine_net: AffineNet, deform_net: DeformNet, examples: list, mask: np.ndarray
) -> dict[str, list[float]]:
    """Per-example mean error (mm, PET world) of the affine-only and full mappings in the brain."""
    errors: dict[str, list[float]] = {"affine_mm": [], "full_mm": []}
    with torch.no_grad():
        for canvas, targets in examples:
            canvas_t, targets_t = torch.from_numpy(canvas[None]), torch.from_numpy(targets[None])
            image, _, affine = deform_inputs(affine_net, canvas_t, targets_t)
            points = torch.from_numpy(geometry.template_points())[None]
            displacement = deform_net(image)
            for key, shift in (("affine_mm", 0.0), ("full_mm", displacement)):
                positions = canvas_positions(affine, points + shift)
                error = torch.linalg.norm(positions - targets_t, dim=1)[0][torch.from_numpy(mask)]
                errors[key].append(float(error.mean()))
    return errors


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _run_stage(
    stage: str,
    config: TrainConfig,
    nets: dict[str, torch.nn.Module],
    state: dict,
    log: Callable[[str], None],
    log_file,
) -> None:
    steps = config.affine_steps if stage == "affine" else config.deform_steps
    net = nets[stage]
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, steps), eta_min=1e-5)
    start_step = 0
    if state.get("stage") == stage:
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        start_step = state["step"]
    elif state.get("stage") == "deform" and stage == "affine":
        return
    if start_step >= steps:
        return
    landmarks = torch.from_numpy(landmark_indices())
    mask = deform_mask()
    stage_id = STAGES.index(stage)
    keys = [(config.seed, stage_id, step) for step in range(start_step, steps)]
    context = multiprocessing.get_context("fork")
    net.train()
    begin = time.perf_counter()
    with context.Pool(1) as workers:
        batches = _prefetch(workers, partial(_batch, size=config.batch_size), keys)
        for step, (canvas, targets) in zip(range(start_step, steps), batches, strict=True):
            canvas_t, targets_t = torch.from_numpy(canvas), torch.from_numpy(targets)
            if stage == "affine":
                loss = affine_loss(net(canvas_t), targets_t, landmarks)
            else:
                image, residual, _ = deform_inputs(nets["affine"], canvas_t, targets_t)
                loss = deform_loss(net(image), residual, mask)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            elapsed = time.perf_counter() - begin
            log_file.write(f"{stage}\t{step + 1}\t{loss.item():.5f}\t{elapsed:.1f}\n")
            log_file.flush()
            if (step + 1) % 10 == 0:
                done = f"{stage} step {step + 1}/{steps}"
                log(f"  {done}: loss {loss.item():.3f} mm, {elapsed:.0f} s")
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == steps:
                _save(
                    config.out_dir / "checkpoint.pt",
                    {
                        "stage": stage,
                        "step": step + 1,
                        "nets": {k: v.state_dict() for k, v in nets.items()},
                        "optimiser": optimiser.state_dict(),
                        "schedule": schedule.state_dict(),
                    },
                )
                log(f"  checkpoint: {stage} step {step + 1}")
    nets["affine"].eval()


def _prefetch(workers, make, keys, ahead: int = 3):
    """Batches made by ``workers`` in order, at most ``ahead`` ahead of the training loop.

    (``Pool.imap`` would make all of them as fast as it can and keep them in memory.)
    """
    pending = [workers.apply_async(make, (key,)) for key in keys[:ahead]]
    for index in range(len(keys)):
        batch = pending.pop(0).get()
        if index + ahead < len(keys):
            pending.append(workers.apply_async(make, (keys[index + ahead],)))
        yield batch


def train(config: TrainConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) training; write weights and validation metrics to out_dir; return them."""
    global _POOL
    config.out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    nets = {"affine": AffineNet(), "deform": DeformNet()}
    checkpoint = config.out_dir / "checkpoint.pt"
    state: dict = {}
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        for key, net in nets.items():
            net.load_state_dict(state["nets"][key])
        log(f"resuming from {checkpoint}: stage {state['stage']}, step {state['step']}")
    (config.out_dir / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
    train_heads, val_heads = build_heads(config, log)
    _POOL = train_heads
    log_path = config.out_dir / "training_log.tsv"
    fresh = not log_path.exists() or not state
    with open(log_path, "w" if fresh else "a") as log_file:
        if fresh:
            log_file.write("stage\tstep\tloss_mm\tseconds\n")
        for stage in STAGES:
            log(f"training the {stage} stage")
            _run_stage(stage, config, nets, state, log, log_file)
            state = {}
    for net in nets.values():
        net.eval()
    rng = np.random.default_rng([config.seed, 99])
    val_examples = [make_example(h, rng) for h in val_heads]
    val_examples = [(e.canvas, e.targets) for e in val_examples]
    errors = pet_space_errors(
        nets["affine"], nets["deform"], val_examples, geometry.template_brain_mask()
    )
    metrics = {
        key: {
            "mean": float(np.mean(v)),
            "p95": float(np.percentile(v, 95)),
            "max": float(np.max(v)),
        }
        for key, v in errors.items()
    }
    metrics["n_validation"] = len(val_examples)
    torch.save({k: v.state_dict() for k, v in nets.items()}, config.out_dir / "model.pt")
    (config.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(
        f"validation: affine {metrics['affine_mm']['mean']:.2f} mm, "
        f"affine+deformable {metrics['full_mm']['mean']:.2f} mm (mean PET-space error)"
    )
    return metrics
