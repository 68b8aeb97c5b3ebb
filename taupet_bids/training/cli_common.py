"""What every model's ``taupet-bids-train`` command shares: its run arguments and its ending.

Each model's ``*_cli.py`` adds only its own options (architecture, loss, labels), so the same
option means the same thing in every command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taupet_bids.errors import TaupetError


def add_run_arguments(parser: argparse.ArgumentParser, defaults: Any) -> None:
    """Derivatives, run and bundle folders, seed, steps, batch, learning rate, checkpoints,
    threads; ``defaults`` is the model's ``TrainConfig`` class."""
    parser.add_argument(
        "derivatives", type=Path, nargs="+", help="taupet-bids derivatives folder(s)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="working folder (checkpoints, logs)"
    )
    parser.add_argument(
        "--bundle", type=Path, help="write the trained bundle here (default: OUT/bundle)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--threads", type=int, default=defaults.threads, help="PyTorch threads")


def add_data_statement_argument(parser: argparse.ArgumentParser) -> None:
    """``--data-statement``: what the training images were, for the model card."""
    parser.add_argument(
        "--data-statement",
        default="",
        help="what the training images were, for the model card (e.g. 'Simulated phantoms "
        "only: no image of a real person was used.')",
    )


def run_fields(args: argparse.Namespace) -> dict:
    """The ``TrainConfig`` fields that :func:`add_run_arguments` sets."""
    return {
        "out_dir": args.out,
        "derivatives": list(args.derivatives),
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "checkpoint_every": args.checkpoint_every,
        "threads": args.threads,
    }


def train_and_export(
    config: Any,
    args: argparse.Namespace,
    train: Callable[..., dict],
    export: Callable[[Any, dict, Path], Path],
    errors: tuple[type[Exception], ...] = (TaupetError,),
) -> int:
    """Train (or resume), write the bundle, say where; a refused input ends with status 1."""
    try:
        metrics = train(config, log=lambda line: print(line, flush=True))
    except errors as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    bundle = export(config, metrics, args.bundle or args.out / "bundle")
    print(f"bundle written to {bundle}")
    return 0
