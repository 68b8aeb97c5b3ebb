"""``taupet-bids-train harmoniser``: train the PET-MR harmoniser and write its MONAI bundle."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from taupet_bids.harmonisation.networks import BOUND, CHANNELS, CONDITIONINGS
from taupet_bids.training.cli_common import add_run_arguments, run_fields, train_and_export
from taupet_bids.training.harmoniser import TrainConfig


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taupet-bids-train harmoniser",
        description="Train the PET-MR to PET-CT harmoniser on pairs of rec-mrac / rec-ctac "
        "template-space SUVR images of a taupet-bids participant-level run of a "
        "`taupet-bids-simulate --pet-mr ... --write-ct` dataset (the CT trains the auxiliary "
        "pseudo-CT head). Splits 80/10/10 by participant, then writes a MONAI bundle. "
        "Deterministic for --seed; re-running with the same --out resumes.",
    )
    add_run_arguments(parser, TrainConfig)
    parser.add_argument("--bids-dir", type=Path, required=True, help="the BIDS dataset (CTs)")
    parser.add_argument("--channels", type=int, nargs=3, default=list(CHANNELS))
    parser.add_argument("--bound", type=float, default=BOUND, help="largest |log-ratio|")
    parser.add_argument("--ct-weight", type=float, default=TrainConfig.ct_weight)
    parser.add_argument(
        "--region-weight",
        type=float,
        default=TrainConfig.region_weight,
        help="weight of the regional-means loss (default %(default)s; 0 trains on voxels only)",
    )
    parser.add_argument(
        "--conditioning",
        choices=CONDITIONINGS,
        default=TrainConfig.conditioning,
        help="what the network is told of each scan's AC method, from its sidecar: 'ct' only "
        "whether it was CT-based (zero correction) or MR-based (one correction), 'method' which "
        "MR-based method (a correction each), 'none' nothing (0.2.0's design: one correction "
        "for every scan, PET-CT too; use --identity-fraction) (default %(default)s)",
    )
    parser.add_argument(
        "--identity-fraction",
        type=_fraction,
        default=TrainConfig.identity_fraction,
        help="share of PET-CT inputs with a zero target in each batch (teaches an unconditioned "
        "network to leave a scan without MR-AC bias alone; a conditioned one leaves it alone "
        "by construction; default %(default)s)",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    from taupet_bids.training.harmoniser import train
    from taupet_bids.training.harmoniser_card import export_trained_bundle

    args = build_parser().parse_args(argv)
    config = TrainConfig(
        **run_fields(args),
        bids_dir=args.bids_dir,
        channels=list(args.channels),
        bound=args.bound,
        ct_weight=args.ct_weight,
        region_weight=args.region_weight,
        identity_fraction=args.identity_fraction,
        conditioning=args.conditioning,
    )
    return train_and_export(config, args, train, export_trained_bundle)
