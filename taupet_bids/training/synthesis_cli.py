"""``taupet-bids-train synthesis``: train a synthesis network and write its MONAI bundle."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from taupet_bids.synthesis.networks import CHANNELS, RESIDUAL_UNITS, STRIDES, TASKS
from taupet_bids.synthesis.vqgan import CHANNELS as VQGAN_CHANNELS
from taupet_bids.training.cli_common import (
    add_data_statement_argument,
    add_run_arguments,
    run_fields,
    train_and_export,
)
from taupet_bids.training.synthesis import LOSSES, TrainConfig
from taupet_bids.training.synthesis_diffusion_cli import add_diffusion_arguments, train_diffusion
from taupet_bids.training.synthesis_vqgan_cli import add_vqgan_arguments, train_vqgan


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taupet-bids-train synthesis",
        description="Train a synthesis network on the (input, template-space SUVR) pairs of "
        "taupet-bids participant-level runs: tau-from-t1w and tspo-from-t1w read MR-based "
        "runs' T1w, tau-from-fdg the same session's FDG SUVR image (a run with --tracer "
        "naming FDG). Splits 80/10/10 by participant, then writes a MONAI bundle. "
        "Deterministic for --seed; re-running with the same --out resumes (docs/synthesis.md).",
    )
    add_run_arguments(parser, TrainConfig)
    parser.add_argument("--task", choices=sorted(TASKS), default="tau-from-t1w")
    parser.add_argument(
        "--reconstruction", metavar="LABEL",
        help="only target SUVR images whose rec- label is LABEL, e.g. ctac to leave a PET/MR "
        "session's rec-mrac scan out (default: every target)",
    )  # fmt: skip
    parser.add_argument(
        "--loss", choices=LOSSES,
        help="masked loss (default: mse; l1 for tau-from-fdg). L1 is minimised by the voxelwise "
        "median: where most training scans carry little tau it predicts one tau-free image for "
        "everyone (docs/synthesis.md)",
    )  # fmt: skip
    parser.add_argument(
        "--architecture", choices=("unet", "vqgan", "diffusion"), default="unet",
        help="network family of tau-from-t1w: unet (3-D U-Net); vqgan (MCR-VQGAN on axial "
        "slices); diffusion (latent diffusion conditioned on the T1w and clinical values); "
        "vqgan and diffusion have their options below, --loss, --strides and --num-res-units "
        "do not apply to them",
    )  # fmt: skip
    unet = parser.add_argument_group("tau-from-t1w network (MONAI residual UNet)")
    unet.add_argument(
        "--channels", type=int, nargs="+",
        help=f"channels per level (unet: {CHANNELS}; vqgan: {VQGAN_CHANNELS})",
    )  # fmt: skip
    unet.add_argument("--strides", type=int, nargs="+", default=list(STRIDES))
    unet.add_argument("--num-res-units", type=int, default=RESIDUAL_UNITS)
    add_vqgan_arguments(parser)
    add_diffusion_arguments(parser)
    other = parser.add_argument_group(
        "tau-from-fdg (Dense-U-Net) and tspo-from-t1w (separable U-Net) networks"
    )
    other.add_argument(
        "--features", type=int, nargs="+", help="widths per level (default 16 32 64)"
    )
    other.add_argument("--growth", type=int, default=8, help="Dense-U-Net growth rate")
    other.add_argument(
        "--dense-layers", type=int, default=2, help="convolutions per Dense-U-Net dense block"
    )
    other.add_argument(
        "--heads-channels", type=int, default=16, help="channels per attention head (TSPO)"
    )
    add_data_statement_argument(parser)
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
        reconstruction=args.reconstruction,
        loss=args.loss,
        channels=list(args.channels or CHANNELS),
        strides=list(args.strides),
        num_res_units=args.num_res_units,
        features=list(args.features) if args.features else None,
        growth=args.growth,
        layers=args.dense_layers,
        heads_channels=args.heads_channels,
        data_statement=args.data_statement,
    )
    return train_and_export(config, args, train, export_trained_bundle)
