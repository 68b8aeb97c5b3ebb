"""The MCR-VQGAN options of ``taupet-bids-train synthesis --architecture vqgan``."""

from __future__ import annotations

import argparse

from taupet_bids.synthesis import vqgan
from taupet_bids.training.cli_common import run_fields, train_and_export
from taupet_bids.training.synthesis_vqgan import VQGANConfig


def add_vqgan_arguments(parser: argparse.ArgumentParser) -> None:
    """The generator's, codebook's and perceptual encoder's sizes (``--channels`` is shared)."""
    group = parser.add_argument_group("--architecture vqgan")
    group.add_argument("--res-blocks", type=int, default=vqgan.RES_BLOCKS)
    group.add_argument("--codebook-size", type=int, default=vqgan.CODEBOOK_SIZE)
    group.add_argument("--embedding-dim", type=int, default=vqgan.EMBEDDING_DIM)
    group.add_argument("--discriminator-channels", type=int, default=vqgan.DISCRIMINATOR_CHANNELS)
    group.add_argument(
        "--feature-channels", type=int, nargs="+", default=list(vqgan.FEATURE_CHANNELS)
    )
    group.add_argument(
        "--feature-steps", type=int, default=VQGANConfig.feature_steps,
        help="steps of the perceptual encoder's stage, before the GAN's --steps",
    )  # fmt: skip


def train_vqgan(args: argparse.Namespace) -> int:
    """Train MCR-VQGAN and write its bundle (the run options are the U-Net's: the paper's
    learning rate is --learning-rate 2e-4)."""
    from taupet_bids.training.synthesis_vqgan import train
    from taupet_bids.training.synthesis_vqgan_card import export_trained_bundle

    config = VQGANConfig(
        **run_fields(args),
        task=args.task,
        reconstruction=args.reconstruction,
        feature_steps=args.feature_steps,
        channels=list(args.channels or vqgan.CHANNELS),
        res_blocks=args.res_blocks,
        codebook_size=args.codebook_size,
        embedding_dim=args.embedding_dim,
        discriminator_channels=args.discriminator_channels,
        feature_channels=list(args.feature_channels),
        data_statement=args.data_statement,
    )
    return train_and_export(config, args, train, export_trained_bundle)
