"""``taupet-bids-train synthesis``: train a synthesis network and write its MONAI bundle."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from taupet_bids.errors import TaupetError
from taupet_bids.synthesis.networks import CHANNELS, RESIDUAL_UNITS, STRIDES, TASKS
from taupet_bids.training.synthesis import LOSSES, TrainConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taupet-bids-train synthesis",
        description="Train a synthesis network on the (T1w, template-space SUVR) pairs of "
        "taupet-bids MR-based participant-level runs. Splits 80/10/10 by participant, then "
        "writes a MONAI bundle. Deterministic for --seed; re-running with the same --out "
        "resumes. Only --task tau-from-t1w has a network yet (docs/synthesis.md).",
    )
    parser.add_argument(
        "derivatives", type=Path, nargs="+", help="taupet-bids derivatives folder(s)"
    )
    parser.add_argument("--task", choices=sorted(TASKS), default="tau-from-t1w")
    parser.add_argument(
        "--out", type=Path, required=True, help="working folder (checkpoints, logs)"
    )
    parser.add_argument(
        "--bundle", type=Path, help="write the trained bundle here (default: OUT/bundle)"
    )
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--loss", choices=LOSSES, default=TrainConfig.loss, help="masked loss")
    parser.add_argument("--checkpoint-every", type=int, default=TrainConfig.checkpoint_every)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads, help="PyTorch threads")
    parser.add_argument("--channels", type=int, nargs="+", default=list(CHANNELS))
    parser.add_argument("--strides", type=int, nargs="+", default=list(STRIDES))
    parser.add_argument("--num-res-units", type=int, default=RESIDUAL_UNITS)
    return parser


def main(argv: Sequence[str]) -> int:
    from taupet_bids.training.synthesis import train
    from taupet_bids.training.synthesis_card import export_trained_bundle

    args = build_parser().parse_args(argv)
    config = TrainConfig(
        out_dir=args.out,
        derivatives=list(args.derivatives),
        task=args.task,
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        loss=args.loss,
        checkpoint_every=args.checkpoint_every,
        threads=args.threads,
        channels=list(args.channels),
        strides=list(args.strides),
        num_res_units=args.num_res_units,
    )
    try:
        metrics = train(config, log=lambda line: print(line, flush=True))
    except TaupetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    bundle = export_trained_bundle(config, metrics, args.bundle or args.out / "bundle")
    print(f"bundle written to {bundle}")
    return 0
