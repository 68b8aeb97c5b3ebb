"""The latent diffusion options of ``taupet-bids-train synthesis --architecture diffusion``."""

from __future__ import annotations

import argparse
from pathlib import Path

from taupet_bids.synthesis import diffusion
from taupet_bids.training.cli_common import run_fields, train_and_export
from taupet_bids.training.synthesis_diffusion import (
    AUTOENCODER_LOSSES,
    POSTERIORS,
    TAU_LATENTS,
    DiffusionConfig,
)


def add_diffusion_arguments(parser: argparse.ArgumentParser) -> None:
    """Autoencoder and denoiser sizes, guidance and where the clinical tables are."""
    group = parser.add_argument_group("--architecture diffusion")
    group.add_argument(
        "--bids-dir", type=Path, nargs="+", default=[],
        help="BIDS dataset(s) whose participants.tsv / sessions.tsv hold mmse, amyloid_status "
        "and age (default: the first folder at or above each derivatives folder that has one)",
    )  # fmt: skip
    group.add_argument(
        "--autoencoder-steps", type=int, default=DiffusionConfig.autoencoder_steps,
        help="steps of the autoencoder's stage, before the denoiser's --steps",
    )  # fmt: skip
    group.add_argument(
        "--autoencoder-loss", choices=tuple(AUTOENCODER_LOSSES),
        default=DiffusionConfig.autoencoder_loss,
        help="the autoencoder's reconstruction loss (%(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--autoencoder-posterior", choices=POSTERIORS,
        default=DiffusionConfig.autoencoder_posterior,
        help="what the decoder reconstructs from in training: the posterior's mean or a sample "
        "of it (%(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--tau-latent", choices=TAU_LATENTS, default=TAU_LATENTS[0],
        help="the tau latent the diffusion learns: scaled to unit SD, or first centred on the "
        "training scans' mean (%(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--autoencoder-channels", type=int, nargs="+", default=list(diffusion.AUTOENCODER_CHANNELS)
    )
    group.add_argument("--latent-channels", type=int, default=diffusion.LATENT_CHANNELS)
    group.add_argument(
        "--unet-channels", type=int, nargs="+", default=list(diffusion.UNET_CHANNELS)
    )
    group.add_argument("--norm-groups", type=int, default=diffusion.NORM_GROUPS)
    group.add_argument("--head-channels", type=int, default=diffusion.HEAD_CHANNELS)
    group.add_argument(
        "--condition-dropout", type=float, default=DiffusionConfig.condition_dropout,
        help="probability of training a step without the clinical values (guidance)",
    )  # fmt: skip
    group.add_argument("--ddim-steps", type=int, default=diffusion.DDIM_STEPS)
    group.add_argument("--guidance", type=float, default=diffusion.GUIDANCE)


def train_diffusion(args: argparse.Namespace) -> int:
    """Train the latent diffusion model in two stages and write its bundle."""
    from taupet_bids.training.synthesis_diffusion import train
    from taupet_bids.training.synthesis_diffusion_card import export_trained_bundle

    config = DiffusionConfig(
        **run_fields(args),
        bids_dirs=list(args.bids_dir),
        task=args.task,
        reconstruction=args.reconstruction,
        autoencoder_steps=args.autoencoder_steps,
        autoencoder_loss=args.autoencoder_loss,
        autoencoder_posterior=args.autoencoder_posterior,
        centre_tau_latent=args.tau_latent == "centred",
        autoencoder_channels=list(args.autoencoder_channels),
        latent_channels=args.latent_channels,
        unet_channels=list(args.unet_channels),
        norm_groups=args.norm_groups,
        head_channels=args.head_channels,
        condition_dropout=args.condition_dropout,
        ddim_steps=args.ddim_steps,
        guidance=args.guidance,
        data_statement=args.data_statement,
    )
    return train_and_export(config, args, train, export_trained_bundle)
