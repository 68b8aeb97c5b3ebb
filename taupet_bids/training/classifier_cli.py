"""``taupet-bids-train classifier``: train the AD-vs-CN classifier and write its MONAI bundle."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from taupet_bids.classification.networks import (
    ARCHITECTURES,
    CHANNELS,
    DENSENET,
    DROPOUT,
    HIDDEN,
)
from taupet_bids.errors import TaupetError
from taupet_bids.group import UnusableFile
from taupet_bids.training.classifier import TrainConfig
from taupet_bids.training.cli_common import (
    add_data_statement_argument,
    add_run_arguments,
    run_fields,
    train_and_export,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taupet-bids-train classifier",
        description="Train the AD vs CN classifier (Conv5_FC3-style 3-D CNN) on the "
        "template-space SUVR images of taupet-bids participant-level runs, labelled by the "
        "diagnosis column of the BIDS dataset's participants.tsv (or sessions.tsv); MCI and "
        "other diagnoses are left out. Splits 80/10/10 by participant, then writes a MONAI "
        "bundle. Deterministic for --seed; re-running with the same --out resumes.",
    )
    add_run_arguments(parser, TrainConfig)
    parser.add_argument(
        "--bids-dir", type=Path, required=True, help="the BIDS dataset (participants.tsv)"
    )
    parser.add_argument(
        "--architecture",
        choices=ARCHITECTURES,
        default="conv5fc3",
        help="conv5fc3 (default; ClinicaDL's layout, --channels/--hidden/--dropout) or densenet "
        f"(a small MONAI DenseNet: {DENSENET['init_features']} initial features, growth "
        f"{DENSENET['growth_rate']}, blocks {'-'.join(map(str, DENSENET['block_config']))})",
    )
    parser.add_argument(
        "--channels", type=int, nargs=5, default=list(CHANNELS), help="channels of the 5 blocks"
    )
    parser.add_argument(
        "--hidden", type=int, nargs="*", default=list(HIDDEN), help="fully connected widths"
    )
    parser.add_argument("--dropout", type=float, default=DROPOUT)
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        help="cross-entropy label smoothing (0: none); e.g. 0.1 keeps P(AD) from saturating, "
        "so occlusion maps can respond",
    )
    add_data_statement_argument(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    from taupet_bids.training.classifier import train
    from taupet_bids.training.classifier_card import export_trained_bundle

    args = build_parser().parse_args(argv)
    config = TrainConfig(
        **run_fields(args),
        bids_dir=args.bids_dir,
        architecture_name=args.architecture,
        channels=list(args.channels),
        hidden=list(args.hidden),
        dropout=args.dropout,
        label_smoothing=args.label_smoothing,
        data_statement=args.data_statement,
    )
    return train_and_export(config, args, train, export_trained_bundle, (TaupetError, UnusableFile))
