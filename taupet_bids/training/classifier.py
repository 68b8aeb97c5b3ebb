"""Train the AD-vs-CN classifier on a participant-level run's template-space SUVR images.

One stage of the shared loop (:mod:`taupet_bids.training.engine`): class-weighted cross-entropy
(each class weighs as much as the other, however imbalanced the cohort), Adam with a cosine
schedule. Every batch is drawn from a generator keyed by (seed, stage, step), so a seed gives
bit-identical weights and a resumed run continues as the uninterrupted one would.

Augmentation, drawn per example: a global SUVR scale in [0.9, 1.1] (reference-region error),
white noise of SD up to 0.03 SUVR, a rotation up to 5 degrees about each axis and a shift up to
4 mm (residual misregistration). Validation and test scans are never augmented.

Baseline (docs/models.md asks each model to show what it adds): the meta-temporal SUVR of each
scan with the cut-point that best separates the training scans (balanced accuracy).
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
from scipy import ndimage
from torch import nn
from torch.nn import functional

from taupet_bids import templates
from taupet_bids.classification import preprocessing
from taupet_bids.classification.networks import (
    CHANNELS,
    CLASSES,
    DENSENET,
    DROPOUT,
    HIDDEN,
    ad_probability,
    build_network,
)
from taupet_bids.core.classification_metrics import METRICS, weighted_metrics
from taupet_bids.core.images import load_3d
from taupet_bids.errors import InputError
from taupet_bids.training import engine
from taupet_bids.training.classifier_data import (
    SETS,
    Scan,
    find_scans,
    labelled,
    split_participants,
    split_table,
)

#: P(AD) at or above which a scan is labelled AD (written into the bundle).
THRESHOLD = 0.5
SCALE_RANGE = (0.9, 1.1)
NOISE_SD_MAX = 0.03
MAX_ROTATION_DEG = 5.0
MAX_SHIFT_MM = 4.0


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    out_dir: Path
    derivatives: list[Path]
    bids_dir: Path
    seed: int = 30
    steps: int = 3000
    batch_size: int = 8
    learning_rate: float = 1e-4
    checkpoint_every: int = 50
    threads: int = 1
    #: "conv5fc3" (channels, hidden, dropout) or "densenet" (MONAI's, with ``densenet``).
    architecture_name: str = "conv5fc3"
    densenet: dict = field(default_factory=lambda: dict(DENSENET))
    channels: list[int] = field(default_factory=lambda: list(CHANNELS))
    hidden: list[int] = field(default_factory=lambda: list(HIDDEN))
    dropout: float = DROPOUT
    #: Cross-entropy label smoothing: keeps P(AD) off 0 and 1 on training-like scans, so that
    #: occluding one region can move it (with 0, P saturated within 100 steps and the maps
    #: were flat; docs/classification.md).
    label_smoothing: float = 0.0
    threshold: float = THRESHOLD
    #: What the training images were (for the model card), e.g. "simulated phantoms only".
    data_statement: str = ""

    def to_json(self) -> dict:
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        out["bids_dir"] = str(self.bids_dir)
        out["derivatives"] = [str(p) for p in self.derivatives]
        return out

    def architecture(self) -> dict:
        """The bundle's ``architecture`` entry (:func:`build_network` reads it back)."""
        if self.architecture_name == "densenet":
            return {"name": "densenet", **self.densenet}
        return {"channels": self.channels, "hidden": self.hidden, "dropout": self.dropout}

    def network(self) -> nn.Module:
        return build_network(self.architecture())


@dataclass(frozen=True)
class Examples:
    """Network inputs (N, 46, 55, 46), targets (N,) and meta-temporal SUVR (N,) of some scans."""

    images: np.ndarray
    targets: np.ndarray
    metatemporal: np.ndarray


# The training examples live in a module global so that forked batch workers share them.
_POOL: Examples | None = None


def load_examples(scans: Sequence[Scan]) -> Examples:
    """Read, check and downsample each scan; its meta-temporal SUVR for the baseline."""
    atlas = np.asarray(nib.load(templates.atlas_path("MetaTemporal")).dataobj) > 0
    images, meta = [], []
    for scan in scans:
        preprocessing.check_template_grid(scan.path)
        suvr = load_3d(scan.path, np.float32)
        images.append(preprocessing.network_input(suvr))
        meta.append(float(np.nanmean(suvr[atlas])))
    shape = (0, *preprocessing.INPUT_SHAPE)
    return Examples(
        np.stack(images) if images else np.zeros(shape, np.float32),
        np.array([scan.target for scan in scans], dtype=np.int64),
        np.array(meta, dtype=np.float64),
    )


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A randomly scaled, noised, rotated and shifted copy of a 4 mm input (see module doc)."""
    angles = np.deg2rad(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, 3))
    rotation = np.eye(3)
    for axis, angle in enumerate(angles):
        i, j = [(1, 2), (0, 2), (0, 1)][axis]
        turn = np.eye(3)
        turn[i, i] = turn[j, j] = np.cos(angle)
        turn[i, j], turn[j, i] = -np.sin(angle), np.sin(angle)
        rotation = rotation @ turn
    voxel_mm = preprocessing.POOL * templates.WORKING_RESOLUTION
    shift = rng.uniform(-MAX_SHIFT_MM, MAX_SHIFT_MM, 3) / voxel_mm
    centre = (np.array(image.shape) - 1) / 2
    moved = ndimage.affine_transform(
        image, rotation, offset=centre - rotation @ centre + shift, order=1, mode="constant"
    )
    moved *= rng.uniform(*SCALE_RANGE)
    moved += rng.normal(0.0, rng.uniform(0.0, NOISE_SD_MAX), moved.shape)
    return np.clip(moved, 0.0, preprocessing.SUVR_MAX).astype(np.float32)


def _batch(key: tuple[int, int, int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch ``key`` = (seed, stage, step): random training scans, augmented (NumPy arrays)."""
    rng = np.random.default_rng(list(key))
    picks = rng.integers(len(_POOL.targets), size=size)
    images = np.stack([augment(_POOL.images[i], rng) for i in picks])[:, None]
    return images, _POOL.targets[picks]


def class_weights(targets: np.ndarray) -> torch.Tensor:
    """Cross-entropy weights that make both classes weigh the same in total."""
    counts = np.bincount(targets, minlength=2).astype(np.float64)
    if (counts == 0).any():
        raise ValueError("the training set needs scans of both AD and CN")
    return torch.tensor(counts.sum() / (2 * counts), dtype=torch.float32)


def binary_metrics(scores: np.ndarray, targets: np.ndarray, threshold: float) -> dict:
    """Accuracy, sensitivity (AD), specificity (CN) at ``threshold``, ROC AUC and counts.

    The group level's formulas (:func:`~taupet_bids.core.classification_metrics.weighted_metrics`,
    every scan weighing 1); a metric whose class is absent is None.
    """
    is_ad = np.asarray(targets) == 1
    found = weighted_metrics(scores, np.asarray(scores) >= threshold, is_ad, np.ones(len(is_ad)))
    values = {name: float(found[name][0]) for name in METRICS}
    metrics = {name: None if np.isnan(v) else v for name, v in values.items()}
    metrics["auc"] = metrics.pop("roc_auc")
    return {**metrics, "n_AD": int(is_ad.sum()), "n_CN": int((~is_ad).sum())}


def predict(network: nn.Module, images: np.ndarray, batch: int = 8) -> np.ndarray:
    """P(AD) of each 4 mm input, in eval mode."""
    network.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            chunk = torch.from_numpy(images[start : start + batch][:, None])
            out.append(ad_probability(network(chunk)).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def best_cutpoint(values: np.ndarray, targets: np.ndarray) -> float:
    """The cut-point whose ``>=`` rule best separates the classes (balanced accuracy).

    Candidates are midway between neighbouring values, so a held-out scan just below the
    lowest training AD value is not called CN for want of a margin.
    """
    ordered = np.unique(values)
    candidates = np.concatenate([ordered[:1], (ordered[1:] + ordered[:-1]) / 2, ordered[-1:]])
    best, cut = -1.0, float(np.median(values))
    for candidate in candidates:
        called = values >= candidate
        score = (called[targets == 1].mean() + (~called)[targets == 0].mean()) / 2
        if score > best:
            best, cut = score, float(candidate)
    return cut


def evaluate(network: nn.Module, sets: dict[str, Examples], threshold: float) -> dict:
    """Network and meta-temporal baseline metrics on the validation and test sets."""
    cut = best_cutpoint(sets["train"].metatemporal, sets["train"].targets)
    metrics: dict = {"metatemporal_cutpoint": round(cut, 4)}
    for name in ("validation", "test"):
        examples = sets[name]
        metrics[name] = binary_metrics(
            predict(network, examples.images), examples.targets, threshold
        )
        metrics[f"{name}_baseline"] = binary_metrics(examples.metatemporal, examples.targets, cut)
    return metrics


def training_stage(config: TrainConfig, network: nn.Module, targets: np.ndarray) -> engine.Stage:
    """The one stage: weighted cross-entropy on augmented training batches."""
    weights = class_weights(targets)

    def step(batch: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
        images, labels = map(torch.from_numpy, batch)
        return functional.cross_entropy(
            network(images), labels, weight=weights, label_smoothing=config.label_smoothing
        )

    return engine.Stage(
        "main",
        network,
        config.steps,
        partial(_batch, size=config.batch_size),
        step,
        config.learning_rate,
    )


def prepare_sets(
    config: TrainConfig, log: Callable[[str], None]
) -> tuple[dict[str, Examples], dict]:
    """Find, label and split the scans; read each set; say what was left out."""
    scans, left_out = labelled(find_scans(config.derivatives, config.bids_dir))
    if left_out:
        log("left out (not AD or CN): " + ", ".join(f"{n} {d}" for d, n in left_out.items()))
    if not scans:
        raise InputError(
            config.bids_dir, "no AD or CN scan with a template-space SUVR image: nothing to train"
        )
    assigned = split_participants(scans, config.seed)
    table = split_table(scans, assigned)
    table.to_csv(config.out_dir / "split.tsv", sep="\t", index=False)
    sets = {
        name: load_examples([s for s in scans if assigned[s.participant] == name]) for name in SETS
    }
    missing = [c for i, c in enumerate(CLASSES) if not (sets["train"].targets == i).any()]
    if missing:
        raise InputError(
            config.bids_dir,
            f"the training participants have no {' or '.join(missing)} scan: nothing to learn",
            "label more participants AD and CN",
        )
    counts = {name: int(len(examples.targets)) for name, examples in sets.items()}
    log("scans per set: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    return sets, {"scans": counts, "left_out": dict(left_out)}


def train(config: TrainConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) training; write weights, split and metrics to out_dir; return metrics."""
    global _POOL
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
    sets, counts = prepare_sets(config, log)
    network = engine.seeded(config.network, config.seed, config.threads)
    _POOL = sets["train"]
    run = engine.Run(config.out_dir, config.seed, config.checkpoint_every, "cross_entropy", log)
    run.fit(network, [training_stage(config, network, sets["train"].targets)])
    metrics = {**evaluate(network, sets, config.threshold), **counts}
    engine.save_weights(network, config.out_dir / "model.pt")
    (config.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(f"test: {metrics['test']}; meta-temporal baseline: {metrics['test_baseline']}")
    return metrics
