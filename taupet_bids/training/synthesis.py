"""Train a synthesis network on a participant run's (input, SUVR) pairs: tau from T1w (U-Net),
tau from FDG (Dense-U-Net), TSPO from T1w (separable U-Net with attention).

What differs between tasks (network, seed, default loss, input reader) is in
:mod:`taupet_bids.training.synthesis_tasks`; the rest is shared.

One stage of the shared loop (:mod:`taupet_bids.training.engine`): masked L1 (or MSE) between
predicted and measured SUVR on the 4 mm grid, inside the template brain, Adam with a cosine
schedule. Batches are drawn from a generator keyed by (seed, stage, step), so a seed gives
bit-identical weights and a resumed run continues as the uninterrupted one would.

Augmentation, per example: the input (normalised T1w, or FDG SUVR) is scaled by a factor in
[0.9, 1.1] and gets white noise of SD up to 0.02 (scanner and bias-field differences the
median normalisation leaves; reference-region noise of an FDG SUVR). The target is never
changed.

Baseline (docs/models.md asks each model to show what it adds): the **cohort-mean image**, the
voxelwise mean SUVR of the training targets. A network that does not beat it has learned
nothing about the person.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from taupet_bids import templates
from taupet_bids.atlases.regions import region_groups
from taupet_bids.core import synthesis_metrics
from taupet_bids.core.images import load_3d
from taupet_bids.errors import InputError
from taupet_bids.synthesis import preprocessing
from taupet_bids.synthesis.networks import CHANNELS, RESIDUAL_UNITS, STRIDES, TASKS
from taupet_bids.training import engine
from taupet_bids.training.synthesis_data import SETS, Pair, find_pairs, split_participants
from taupet_bids.training.synthesis_tasks import DEFAULT_FEATURES, TRAINING

LOSSES = ("l1", "mse")
SCALE_RANGE = (0.9, 1.1)
NOISE_SD_MAX = 0.02


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    out_dir: Path
    derivatives: list[Path]
    task: str = "tau-from-t1w"
    #: Only target SUVR images with this ``rec-`` label (None: all).
    reconstruction: str | None = None
    #: None: the task's training seed and default loss (synthesis_tasks.TRAINING).
    seed: int | None = None
    steps: int = 2000
    batch_size: int = 4
    learning_rate: float = 1e-3
    loss: str | None = None
    checkpoint_every: int = 50
    threads: int = 1
    channels: list[int] = field(default_factory=lambda: list(CHANNELS))
    strides: list[int] = field(default_factory=lambda: list(STRIDES))
    num_res_units: int = RESIDUAL_UNITS
    #: Dense-U-Net and separable U-Net widths per level (None: the network's default).
    features: list[int] | None = None
    growth: int = 8
    layers: int = 2
    heads_channels: int = 16
    #: What the training images were, for the model card (empty: the card says to state it).
    data_statement: str = ""

    def __post_init__(self) -> None:
        if self.task not in TRAINING:
            raise InputError(None, f"--task {self.task}: no network for it (docs/synthesis.md)")
        if self.seed is None:
            self.seed = TRAINING[self.task].seed
        if self.loss is None:
            self.loss = TRAINING[self.task].loss

    def to_json(self) -> dict:
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        out["derivatives"] = [str(p) for p in self.derivatives]
        return out

    def architecture(self) -> dict:
        """The task's network keyword arguments (the bundle's ``architecture``)."""
        fields = {**self.to_json(), "features": self.features or DEFAULT_FEATURES.get(self.task)}
        return {key: fields[key] for key in TRAINING[self.task].architecture}

    def network(self) -> torch.nn.Module:
        return TRAINING[self.task].network(**self.architecture())


@dataclass(frozen=True)
class Examples:
    """Network inputs and targets (N, 48, 56, 48) of some pairs, and the pairs."""

    inputs: np.ndarray
    targets: np.ndarray
    pairs: tuple[Pair, ...]


# The training examples live in a module global so that forked batch workers share them.
_POOL: Examples | None = None


def load_examples(pairs: Sequence[Pair], task: str = "tau-from-t1w") -> Examples:
    """Read, check and downsample each pair (the input as ``task`` reads it)."""
    shape = (0, *preprocessing.INPUT_SHAPE)
    inputs = [TRAINING[task].read_source(pair.source) for pair in pairs]
    targets = [preprocessing.read_suvr(pair.suvr) for pair in pairs]
    return Examples(
        np.stack(inputs) if inputs else np.zeros(shape, np.float32),
        np.stack(targets) if targets else np.zeros(shape, np.float32),
        tuple(pairs),
    )


def _batch(key: tuple[int, int, int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch ``key`` = (seed, stage, step): random training pairs, inputs augmented."""
    rng = np.random.default_rng(list(key))
    picks = rng.integers(len(_POOL.pairs), size=size)
    inputs = []
    for index in picks:
        moved = _POOL.inputs[index] * rng.uniform(*SCALE_RANGE)
        moved = moved + rng.normal(0.0, rng.uniform(0.0, NOISE_SD_MAX), moved.shape)
        inputs.append(np.where(_POOL.inputs[index] > 0, moved, 0.0).astype(np.float32))
    return np.stack(inputs)[:, None], _POOL.targets[picks][:, None]


def masked_loss(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """L1 or MSE over the 4 mm brain voxels."""
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose from {LOSSES}")
    mask = torch.from_numpy(preprocessing.network_mask())

    def loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        difference = (predicted - target)[:, 0][:, mask]
        return difference.abs().mean() if kind == "l1" else (difference**2).mean()

    return loss


def training_stage(config: TrainConfig, network: torch.nn.Module) -> engine.Stage:
    """The one stage: masked loss on augmented training batches."""
    loss = masked_loss(config.loss)

    def step(batch: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
        inputs, targets = map(torch.from_numpy, batch)
        return loss(network(inputs), targets)

    return engine.Stage(
        "main",
        network,
        config.steps,
        partial(_batch, size=config.batch_size),
        step,
        config.learning_rate,
    )


def predict(network: torch.nn.Module, inputs: np.ndarray) -> list[np.ndarray]:
    """Synthetic SUVR on the 2 mm template grid for each 4 mm input, in eval mode."""
    network.eval()
    with torch.no_grad():
        return [
            preprocessing.to_template_grid(network(torch.from_numpy(x)[None, None])[0, 0].numpy())
            for x in inputs
        ]


def _atlases() -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    names = {atlas for atlas, _ in synthesis_metrics.COMPOSITES}
    images = {a: np.asarray(nib.load(templates.atlas_path(a)).dataobj) for a in names}
    return images, {a: region_groups(a) for a in names}


def score(predictions: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> dict:
    """Mean voxel metrics inside the template brain and regional r / MAPE per composite."""
    mask = preprocessing.brain_mask()
    pairs = zip(predictions, truths, strict=True)
    voxel = [synthesis_metrics.voxel_metrics(p, t, mask) for p, t in pairs]
    out = {key: float(np.mean([v[key] for v in voxel])) for key in ("mse", "psnr_db", "ssim")}
    images, groups = _atlases()
    predicted = [synthesis_metrics.composite_means(p, images, groups) for p in predictions]
    measured = [synthesis_metrics.composite_means(t, images, groups) for t in truths]
    out["regional"] = {
        name: synthesis_metrics.regional_agreement(
            [row[name] for row in predicted], [row[name] for row in measured]
        )
        for name in (predicted[0] if predicted else {})
    }
    out["n"] = len(voxel)
    return out


def truth_images(pairs: Sequence[Pair]) -> list[np.ndarray]:
    """The measured SUVR of each pair as the metrics see it: 2 mm, brain-masked, clipped."""
    return [preprocessing.clean_suvr(load_3d(pair.suvr, np.float32)) for pair in pairs]


def evaluate(network: torch.nn.Module, sets: dict[str, Examples]) -> dict:
    """Network and cohort-mean baseline on the validation and test sets."""
    train_truth = truth_images(sets["train"].pairs)
    cohort_mean = np.mean(train_truth, axis=0).astype(np.float32)
    metrics: dict = {}
    for name in ("validation", "test"):
        if not sets[name].pairs:
            metrics[name] = metrics[f"{name}_baseline"] = None
            continue
        truth = truth_images(sets[name].pairs)
        metrics[name] = score(predict(network, sets[name].inputs), truth)
        metrics[f"{name}_baseline"] = score([cohort_mean] * len(truth), truth)
    return metrics


def _refuse_empty(config: TrainConfig) -> InputError:
    task = TASKS[config.task]
    if task.source == "FDG":
        what = "no template-space tau SUVR image with an FDG SUVR image of the same session"
        hint = "give the derivatives of a participant-level run over tau and FDG PET (--tracer)"
    else:
        what = f"no template-space {task.target} SUVR image with a T1w of the same session"
        hint = "give the derivatives of an MR-based participant-level run"
        if task.target != "tau":
            hint += f" over {task.target} PET (--tracer)"
    return InputError(config.derivatives[0], f"{what}: nothing to train for {task.name}", hint)


def prepare_sets(config: TrainConfig, log: Callable[[str], None]) -> tuple[dict, dict]:
    """Find and split the pairs; read each set; say what was left out."""
    source = TASKS[config.task].source
    pairs, without = find_pairs(config.derivatives, config.out_dir / "t1w_template_space",
                                config.task, config.reconstruction)  # fmt: skip
    if without:
        log(f"left out (no {source} of the same session): {len(without)} SUVR image(s)")
    if not pairs:
        raise _refuse_empty(config)
    tracers = sorted({pair.tracer or "n/a" for pair in pairs})
    if len(tracers) > 1:
        raise InputError(
            config.derivatives[0],
            f"SUVR images of several tracers ({', '.join(tracers)}): one model imitates one tracer",
            "give the derivatives of one tracer",
        )
    assigned = split_participants(pairs, config.seed)
    rows = [
        f"{p.participant}\t{p.session or 'n/a'}\t{assigned[p.participant]}\t{p.suvr.name}"
        f"\t{p.source.name}"
        for p in pairs
    ]
    (config.out_dir / "split.tsv").write_text(
        "participant_id\tsession_id\tset\tfile\tinput\n" + "\n".join(rows) + "\n"
    )
    sets = {
        name: load_examples([p for p in pairs if assigned[p.participant] == name], config.task)
        for name in SETS
    }
    counts = {name: len(examples.pairs) for name, examples in sets.items()}
    log("scans per set: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    return sets, {"scans": counts, "left_out_without_input": len(without), "tracer": tracers[0]}


def target_fields(pairs: Sequence[Pair]) -> dict:
    """Tracer and reference region of the training targets, from their sidecars."""
    meta = _sidecar(pairs[0].suvr)
    return {
        "tracer": pairs[0].tracer or "unknown",
        "tracer_name": meta.get("TracerName"),
        "reference_region": meta.get("ReferenceRegion"),
    }


def source_fields(pairs: Sequence[Pair], task: str) -> dict:
    """What the inputs were: modality and, for an FDG SUVR input, its reference regions (a
    network trained on pons-referenced FDG expects pons-referenced FDG)."""
    fields: dict = {"modality": TASKS[task].source}
    if TASKS[task].source != "T1w":
        found = {_sidecar(pair.source).get("ReferenceRegion") for pair in pairs}
        fields["reference_regions"] = sorted(str(region) for region in found if region)
    return fields


def _sidecar(image: Path) -> dict:
    sidecar = image.with_name(image.name.replace(".nii.gz", ".json"))
    try:
        meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def train(config: TrainConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) training; write weights, split and metrics to out_dir; return metrics."""
    global _POOL
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
    sets, counts = prepare_sets(config, log)
    network = engine.seeded(config.network, config.seed, config.threads)
    _POOL = sets["train"]
    run = engine.Run(config.out_dir, config.seed, config.checkpoint_every, config.loss, log)
    run.fit(network, [training_stage(config, network)])
    metrics = {
        **evaluate(network, sets),
        **counts,
        **data_fields(sets["train"].pairs, config.task),
    }
    return save_run(network, metrics, config.out_dir, log)


def data_fields(pairs: Sequence[Pair], task: str) -> dict:
    """The metrics' description of the training data, which the model card renders: the targets'
    tracer and reference, the inputs' modality (every synthesis trainer records both)."""
    return {"target": target_fields(pairs), "source": source_fields(pairs, task)}


def save_run(
    network: torch.nn.Module, metrics: dict, out_dir: Path, log: Callable[[str], None]
) -> dict:
    """The end every synthesis trainer shares: weights, ``metrics.json``, one log line."""
    engine.save_weights(network, out_dir / "model.pt")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(f"test: {metrics['test']}; cohort-mean baseline: {metrics['test_baseline']}")
    return metrics
