"""``taupet-bids-train harmoniser``: train the PET-MR harmoniser and write its MONAI bundle."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from taupet_bids.errors import TaupetError
from taupet_bids.harmonisation.networks import BOUND, CHANNELS
from taupet_bids.training.harmoniser import TrainConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taupet-bids-train harmoniser",
        description="Train the PET-MR to PET-CT harmoniser on pairs of rec-mrac / rec-ctac "
        "template-space SUVR images of a taupet-bids participant-level run of a "
        "`taupet-bids-simulate --pet-mr ... --write-ct` dataset (the CT trains the auxiliary "
        "pseudo-CT head). Splits 80/10/10 by participant, then writes a MONAI bundle. "
        "Deterministic for --seed; re-running with the same --out resumes.",
    )
    parser.add_argument("derivatives", type=Path, nargs="+", help="taupet-bids derivatives")
    parser.add_argument("--bids-dir", type=Path, required=True, help="the BIDS dataset (CTs)")
    parser.add_argument("--out", type=Path, required=True, help="working folder")
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: OUT/bundle)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--checkpoint-every", type=int, default=TrainConfig.checkpoint_every)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads, help="PyTorch threads")
    parser.add_argument("--channels", type=int, nargs=3, default=list(CHANNELS))
    parser.add_argument("--bound", type=float, default=BOUND, help="largest |log-ratio|")
    parser.add_argument("--ct-weight", type=float, default=TrainConfig.ct_weight)
    return parser


def main(argv: Sequence[str]) -> int:
    from taupet_bids.training.harmoniser import train
    from taupet_bids.training.harmoniser_card import export_trained_bundle

    args = build_parser().parse_args(argv)
    config = TrainConfig(
        out_dir=args.out,
        derivatives=list(args.derivatives),
        bids_dir=args.bids_dir,
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        checkpoint_every=args.checkpoint_every,
        threads=args.threads,
        channels=list(args.channels),
        bound=args.bound,
        ct_weight=args.ct_weight,
    )
    try:
        metrics = train(config, log=lambda line: print(line, flush=True))
    except TaupetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    bundle = export_trained_bundle(config, metrics, args.bundle or args.out / "bundle")
    print(f"bundle written to {bundle}")
    return 0
