"""``taupet-bids-train normaliser``: train the MR-less normaliser and write its MONAI bundle."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from taupet_bids.training.heads import HEAD_SOURCES
from taupet_bids.training.normaliser import TrainConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taupet-bids-train normaliser",
        description="Train the affine then the deformable stage of the MR-less normaliser from "
        "simulated heads (default) or MR-based derivatives, then write a MONAI bundle for "
        "taupet-bids --mr-less-model. Deterministic for --seed; re-running with the same --out "
        "resumes from its checkpoint.",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="working folder (checkpoints, logs)"
    )
    parser.add_argument(
        "--bundle", type=Path, help="write the trained bundle here (default: OUT/bundle)"
    )
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument(
        "--derivatives",
        type=Path,
        nargs="+",
        default=[],
        help="taupet-bids MR-based derivatives folder(s) to train on instead of simulated heads",
    )
    parser.add_argument(
        "--heads", type=int, default=TrainConfig.n_heads, help="simulated training heads"
    )
    parser.add_argument(
        "--heads-from",
        choices=HEAD_SOURCES,
        default=TrainConfig.heads_from,
        help="simulated heads: the template anatomy (how the shipped bundle was trained) or the "
        "simulator's other anatomy with realistic heads, several tau tracers' off-target "
        "patterns, scrambled uptake patterns and 15-26 cm axial fields of view",
    )
    parser.add_argument("--validation-heads", type=int, default=TrainConfig.n_validation)
    parser.add_argument("--affine-steps", type=int, default=TrainConfig.affine_steps)
    parser.add_argument("--deform-steps", type=int, default=TrainConfig.deform_steps)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads, help="PyTorch threads")
    parser.add_argument("--jobs", type=int, default=TrainConfig.jobs, help="simulation processes")
    return parser


def main(argv: Sequence[str]) -> int:
    from taupet_bids.training.normaliser import train
    from taupet_bids.training.normaliser_card import export_trained_bundle

    args = build_parser().parse_args(argv)
    config = TrainConfig(
        out_dir=args.out,
        seed=args.seed,
        n_heads=args.heads,
        n_validation=args.validation_heads,
        affine_steps=args.affine_steps,
        deform_steps=args.deform_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        threads=args.threads,
        jobs=args.jobs,
        derivatives=list(args.derivatives),
        heads_from=args.heads_from,
    )
    metrics = train(config, log=lambda line: print(line, flush=True))
    bundle = export_trained_bundle(config, metrics, args.bundle or args.out / "bundle")
    print(f"bundle written to {bundle}")
    return 0
