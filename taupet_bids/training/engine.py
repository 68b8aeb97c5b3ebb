"""The training loop every taupet-bids model shares: seeded, checkpointed, exactly resumable.

A model's training module builds its network with :func:`seeded`, describes each optimisation
phase as a :class:`Stage` and calls :meth:`Run.fit`; when done, :func:`write_bundle` turns the
weights into a bundle the product loads (docs/models.md).

Why a small loop of our own and not MONAI's ``SupervisedTrainer``: the trainer needs
pytorch-ignite (not otherwise a dependency), a data loader per stage, and checkpoint, resume and
log handlers wired to Ignite's state; exact resume mid-stage also needs the batch order restored,
which Ignite leaves to the data loader. Here the batch of every step is a function of
(seed, stage, step), so resuming is loading one file, and the whole loop is shorter than the
handler configuration would be.

Determinism: the network's initial weights come from ``seed``; every batch is made by
``Stage.batch((seed, stage index, step))``, which must draw all its randomness from a generator
keyed by that tuple; the torch RNG state is stored with each checkpoint; torch runs with a fixed
number of threads and deterministic algorithms. The same seed therefore gives bit-identical
weights, and a run resumed from its checkpoint continues as the uninterrupted run would.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import platform
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

import monai
import numpy as np
import torch
from torch import nn

from taupet_bids import __version__
from taupet_bids.errors import InputError
from taupet_bids.models.bundle import CONFIG, METADATA, WEIGHTS, sha256, state_by_child

CHECKPOINT = "checkpoint.pt"
LOG = "training_log.tsv"
#: Batches made ahead of the training step by the worker process.
PREFETCH = 3
#: Steps between progress lines in the log callback.
REPORT_EVERY = 10
METADATA_SCHEMA = (
    "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/"
    "meta_schema_20220324.json"
)

Network = TypeVar("Network", bound=nn.Module)


def data_statement(statement: str | None) -> str:
    """The model card's sentence on what the training images were: ``--data-statement``, or a
    request to whoever publishes the bundle to state it."""
    return statement or (
        "Whether any real person's image was used depends on that dataset: say so when you "
        "publish a bundle."
    )


def seeded(make: Callable[[], Network], seed: int, threads: int) -> Network:
    """The network ``make`` builds, initialised from ``seed``, with torch on ``threads`` threads."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    return make()


@dataclass(frozen=True)
class Stage:
    """One optimisation phase: Adam on ``module``'s parameters, cosine schedule over ``steps``.

    ``batch`` runs in a forked worker process, so it must be picklable (a module-level function
    or a ``functools.partial`` of one) and return NumPy arrays, not tensors (tensors come back
    through shared memory, which can hang the pool); ``loss`` runs in the training process.
    """

    name: str
    module: nn.Module
    steps: int
    batch: Callable[[tuple[int, int, int]], Any]
    loss: Callable[[Any], torch.Tensor]
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-5


@dataclass
class Run:
    """A training run in ``out_dir``: ``checkpoint.pt`` every ``checkpoint_every`` steps and at
    the end of each stage, one row per step in ``training_log.tsv``."""

    out_dir: Path
    seed: int
    checkpoint_every: int = 50
    loss_name: str = "loss"
    log: Callable[[str], None] = print

    def fit(self, network: nn.Module, stages: Sequence[Stage]) -> None:
        """Train stage after stage, resuming from the checkpoint in ``out_dir`` if there is one."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = self._resume(network)
        first = [stage.name for stage in stages].index(state["stage"]) if state else 0
        with _deterministic(), self._log_file(state) as rows:
            for index in range(first, len(stages)):
                self.log(f"training the {stages[index].name} stage")
                resumed = state if index == first else {}
                self._fit_stage(network, index, stages[index], resumed, rows)
        network.eval()

    def _resume(self, network: nn.Module) -> dict:
        path = self.out_dir / CHECKPOINT
        if not path.exists():
            return {}
        state = torch.load(path, weights_only=False)
        network.load_state_dict(state["network"])
        torch.set_rng_state(state["torch_rng"])
        self.log(f"resuming from {path}: stage {state['stage']}, step {state['step']}")
        return state

    @contextmanager
    def _log_file(self, state: dict) -> Iterator[TextIO]:
        """The TSV log, cut after the checkpoint's step when resuming (later rows are redone)."""
        path = self.out_dir / LOG
        rows = [f"stage\tstep\t{self.loss_name}\tseconds\n"]
        if state and path.exists():
            rows = path.read_text().splitlines(keepends=True)
            mark = f"{state['stage']}\t{state['step']}\t"
            ends = [i for i, row in enumerate(rows) if row.startswith(mark)]
            rows = rows[: ends[0] + 1] if ends else rows
        with open(path, "w") as handle:
            handle.writelines(rows)
            handle.flush()
            yield handle

    def _fit_stage(
        self, network: nn.Module, index: int, stage: Stage, state: dict, rows: TextIO
    ) -> None:
        optimiser = torch.optim.Adam(stage.module.parameters(), lr=stage.learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimiser, max(1, stage.steps), eta_min=stage.final_learning_rate
        )
        start = 0
        if state:
            self._check_steps(stage, state)
            optimiser.load_state_dict(state["optimiser"])
            schedule.load_state_dict(state["schedule"])
            start = state["step"]
        network.eval()
        stage.module.train()
        keys = [(self.seed, index, step) for step in range(start, stage.steps)]
        begin = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(1) as workers:
            batches = _prefetch(workers, stage.batch, keys)
            for step, batch in zip(range(start + 1, stage.steps + 1), batches, strict=True):
                loss = stage.loss(batch)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                seconds = time.perf_counter() - begin
                rows.write(f"{stage.name}\t{step}\t{loss.item():.5f}\t{seconds:.1f}\n")
                rows.flush()
                if step % REPORT_EVERY == 0:
                    done = f"{stage.name} step {step}/{stage.steps}"
                    self.log(f"  {done}: {self.loss_name} {loss.item():.3f}, {seconds:.0f} s")
                if step % self.checkpoint_every == 0 or step == stage.steps:
                    self._checkpoint(network, stage.name, step, optimiser, schedule)

    def _check_steps(self, stage: Stage, state: dict) -> None:
        """Refuse to resume a stage with another step count: its cosine schedule was laid out
        over the checkpoint's count, and continued past its end it would raise the learning rate
        again (a finished run "extended" that way trains a different, worse model)."""
        planned = state["schedule"]["T_max"]
        if planned != max(1, stage.steps):
            raise InputError(
                self.out_dir / CHECKPOINT,
                f"written by a run of {planned} {stage.name} steps, and this run asks for "
                f"{stage.steps}",
                "resume with the same step counts, or train in a new --out folder",
            )

    def _checkpoint(self, network, stage: str, step: int, optimiser, schedule) -> None:
        path = self.out_dir / CHECKPOINT
        state = {
            "stage": stage,
            "step": step,
            "network": network.state_dict(),
            "optimiser": optimiser.state_dict(),
            "schedule": schedule.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        torch.save(state, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
        self.log(f"  checkpoint: {stage} step {step}")


@contextmanager
def _deterministic() -> Iterator[None]:
    """Deterministic torch algorithms while training; the caller's setting afterwards."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def _prefetch(workers, make: Callable, keys: list, ahead: int = PREFETCH) -> Iterator:
    """Batches made by ``workers`` in order, at most ``ahead`` ahead of the training loop.

    (``Pool.imap`` would make all of them as fast as it can and keep them in memory.)
    """
    pending = [workers.apply_async(make, (key,)) for key in keys[:ahead]]
    for index in range(len(keys)):
        batch = pending.pop(0).get()
        if index + ahead < len(keys):
            pending.append(workers.apply_async(make, (keys[index + ahead],)))
        yield batch


def save_weights(network: nn.Module, path: Path) -> Path:
    """The trained weights in the bundle's layout (read by ``models.bundle.load_weights``)."""
    torch.save(state_by_child(network), path)
    return path


def write_bundle(
    out_dir: Path,
    weights: Path,
    metadata: dict,
    model_card: Callable[[dict], str],
    configs_from: Path,
) -> Path:
    """A bundle folder: weights, metadata with checksum, versions and machine, and model card.

    ``model_card`` renders the card from the final metadata. ``configs_from`` is the shipped
    bundle's ``configs`` folder: its ``inference.json`` (and ``logging.conf``) are copied, so a
    retrained bundle runs exactly like the shipped one.
    """
    out_dir = Path(out_dir)
    for folder in ("configs", "models", "docs"):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, out_dir / WEIGHTS)
    for config in sorted(Path(configs_from).glob("*")):
        if config.name != METADATA.name:
            shutil.copyfile(config, out_dir / CONFIG.parent / config.name)
    metadata = {
        "schema": METADATA_SCHEMA,
        **metadata,
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "required_packages_version": {"taupet-bids": __version__},
        "taupet_bids": {
            **metadata.get("taupet_bids", {}),
            "trained": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()} CPU, PyTorch threads: {torch.get_num_threads()}",
            "model_sha256": sha256(out_dir / WEIGHTS),
        },
    }
    (out_dir / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
    (out_dir / "docs" / "README.md").write_text(model_card(metadata))
    return out_dir
