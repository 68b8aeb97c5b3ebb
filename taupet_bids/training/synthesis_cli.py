"""``taupet-bids-train synthesis``: train a synthesis network and write its MONAI bundle."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from taupet_bids.synthesis.networks import CHANNELS, RESIDUAL_UNITS, STRIDES, TASKS
from taupet_bids.synthesis.vqgan import CHANNELS as VQGAN_CHANNELS
from taupet_bids.training.cli_common import add_run_arguments, run_fields, train_and_export
from taupet_bids.training.synthesis import LOSSES, TrainConfig
from taupet_bids.training.synthesis_diffusion_cli import add_diffusion_arguments, train_diffusion
from taupet_bids.training.synthesis_vqgan_cli import add_vqgan_arguments, train_vqgan


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taupet-bids-train synthesis",
        description="Train a synthesis network on the (T1w, template-space SUVR) pairs of "
        "taupet-bids MR-based participant-level runs. Splits 80/10/10 by participant, then "
        "writes a MONAI bundle. Deterministic for --seed; re-running with the same --out "
        "resumes. Only --task tau-from-t1w has a network yet (docs/synthesis.md).",
    )
    add_run_arguments(parser, TrainConfig)
    parser.add_argument("--task", choices=sorted(TASKS), default="tau-from-t1w")
    parser.add_argument("--loss", choices=LOSSES, default=TrainConfig.loss, help="masked loss")
    parser.add_argument(
        "--channels", type=int, nargs="+",
        help=f"channels per level (unet: {CHANNELS}; vqgan: {VQGAN_CHANNELS})",
    )  # fmt: skip
    parser.add_argument("--strides", type=int, nargs="+", default=list(STRIDES))
    parser.add_argument("--num-res-units", type=int, default=RESIDUAL_UNITS)
    parser.add_argument(
        "--architecture", choices=("unet", "vqgan", "diffusion"), default="unet",
        help="unet: 3-D U-Net (the options above); vqgan: MCR-VQGAN on axial slices; "
        "diffusion: latent diffusion conditioned on the T1w and clinical values "
        "(the options below; --loss, --strides and --num-res-units do not apply)",
    )  # fmt: skip
    add_vqgan_arguments(parser)
    add_diffusion_arguments(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    from taupet_bids.training.synthesis import train
    from taupet_bids.training.synthesis_card import export_trained_bundle

    args = build_parser().parse_args(argv)
    if args.architecture == "vqgan":
        return train_vqgan(args)
    if args.architecture == "diffusion":
        return train_diffusion(args)
    config = TrainConfig(
        **run_fields(args),
        task=args.task,
        loss=args.loss,
        channels=list(args.channels or CHANNELS),
        strides=list(args.strides),
        num_res_units=args.num_res_units,
    )
    return train_and_export(config, args, train, export_trained_bundle)
