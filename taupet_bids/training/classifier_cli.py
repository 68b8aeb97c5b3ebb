"""``taupet-bids-train classifier``: train the AD-vs-CN classifier and write its MONAI bundle."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from taupet_bids.classification.networks import CHANNELS, DROPOUT, HIDDEN
from taupet_bids.errors import TaupetError
from taupet_bids.group import UnusableFile
from taupet_bids.training.classifier import TrainConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taupet-bids-train classifier",
        description="Train the AD vs CN classifier (Conv5_FC3-style 3-D CNN) on the "
        "template-space SUVR images of taupet-bids participant-level runs, labelled by the "
        "diagnosis column of the BIDS dataset's participants.tsv (or sessions.tsv); MCI and "
        "other diagnoses are left out. Splits 80/10/10 by participant, then writes a MONAI "
        "bundle. Deterministic for --seed; re-running with the same --out resumes.",
    )
    parser.add_argument(
        "derivatives", type=Path, nargs="+", help="taupet-bids derivatives folder(s)"
    )
    parser.add_argument(
        "--bids-dir", type=Path, required=True, help="the BIDS dataset (participants.tsv)"
    )
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
    parser.add_argument("--threads", type=int, default=TrainConfig.threads, help="PyTorch threads")
    parser.add_argument(
        "--channels", type=int, nargs=5, default=list(CHANNELS), help="channels of the 5 blocks"
    )
    parser.add_argument(
        "--hidden", type=int, nargs="*", default=list(HIDDEN), help="fully connected widths"
    )
    parser.add_argument("--dropout", type=float, default=DROPOUT)
    parser.add_argument(
        "--data-statement",
        default="",
        help="what the training images were, for the model card (e.g. 'Simulated phantoms "
        "only: no image of a real person was used.')",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    from taupet_bids.training.classifier import train
    from taupet_bids.training.classifier_card import export_trained_bundle

    args = build_parser().parse_args(argv)
    config = TrainConfig(
        out_dir=args.out,
        derivatives=list(args.derivatives),
        bids_dir=args.bids_dir,
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        threads=args.threads,
        channels=list(args.channels),
        hidden=list(args.hidden),
        dropout=args.dropout,
        data_statement=args.data_statement,
    )
    try:
        metrics = train(config, log=lambda line: print(line, flush=True))
    except (TaupetError, UnusableFile) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    bundle = export_trained_bundle(config, metrics, args.bundle or args.out / "bundle")
    print(f"bundle written to {bundle}")
    return 0
