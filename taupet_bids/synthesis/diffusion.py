"""Clinically conditioned latent diffusion (after seed 003, TauPETGen): tau SUVR from a T1w plus
MMSE, amyloid status and age, in 3-D on the 4 mm template grid.

Two MONAI networks, trained one after the other:

1. ``autoencoder``: :class:`~monai.networks.nets.AutoencoderKL` compresses a 4 mm volume
   (T1w or SUVR; one autoencoder for both) into a small latent grid;
2. ``unet``: :class:`~monai.networks.nets.DiffusionModelUNet` denoises the tau latent. Its input
   is the noisy tau latent concatenated with the T1w's latent (the anatomy, as TauPETGen's MR
   condition); the clinical tokens (:mod:`taupet_bids.synthesis.clinical`) enter through
   cross-attention. Training drops the clinical tokens now and then, so the same network also
   predicts unconditionally and sampling can use classifier-free guidance.

Sampling runs DDIM (:class:`~monai.networks.schedulers.DDIMScheduler`, 10-25 steps, eta 0): the
initial noise is the only randomness, so a seed gives the same image.

Latents are standardised (:class:`LatentStandard`, fitted after stage 1 on the training scans):
divided by the SD of the training tau latents, as Rombach et al., so the diffusion sees unit
variance. Optionally the tau latent is first centred on the training scans' mean tau latent, so
that the diffusion works on what differs between people (measured worse at following a person:
docs/synthesis.md); the T1w latent, a condition and not a target, is then scaled by its own SD
and never centred (in a cohort of near-identical anatomy its noise would be magnified).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import AutoencoderKL, DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler
from torch import nn

from taupet_bids.synthesis.clinical import CONTEXT_DIM, null_context
from taupet_bids.synthesis.preprocessing import INPUT_SHAPE

AUTOENCODER_CHANNELS = (8, 16, 16)
LATENT_CHANNELS = 3
UNET_CHANNELS = (16, 32)
NORM_GROUPS = 8
HEAD_CHANNELS = 8
TRAIN_TIMESTEPS = 1000
#: The kinds of volume the autoencoder codes, each with its own latent standardisation.
KINDS = ("t1w", "suvr")
DDIM_STEPS = 20
GUIDANCE = 2.0
#: The noise schedule of training and sampling (Rombach et al.'s scaled linear betas).
SCHEDULE = {"schedule": "scaled_linear_beta", "beta_start": 0.0015, "beta_end": 0.0195}


def latent_shape(autoencoder_channels: Sequence[int], latent_channels: int) -> tuple[int, ...]:
    """(C, X, Y, Z) of the latent: each autoencoder level after the first halves the grid."""
    factor = 2 ** (len(autoencoder_channels) - 1)
    return (latent_channels, *(n // factor for n in INPUT_SHAPE))


class LatentStandard(nn.Module):
    """One kind's latent standardisation, weights of the bundle: ``(latent - center) * value``."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(tuple(shape)))
        self.register_buffer("value", torch.ones(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit(self, latents: torch.Tensor, centred: bool) -> None:
        """Set from raw latents (N, C, ...) of training scans; ``centred``: about their mean."""
        if centred:
            self.center.copy_(latents.mean(0))
        self.value.fill_(1.0 / max(float((latents - self.center).std()), 1e-6))
        self.fitted.fill_(True)

    def share_scale(self, other: LatentStandard) -> None:
        """Take ``other``'s scale, uncentred: one scale for the latent space (version 0.1.0)."""
        self.center.zero_()
        self.value.copy_(other.value)
        self.fitted.fill_(True)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return (latent - self.center) * self.value

    def invert(self, latent: torch.Tensor) -> torch.Tensor:
        return latent / self.value + self.center


class LatentDiffusion(nn.Module):
    """The bundle's network: children ``autoencoder``, ``unet`` and ``standard`` (the latent
    standardisation of the T1w and of the tau SUVR)."""

    def __init__(
        self,
        autoencoder_channels: Sequence[int] = AUTOENCODER_CHANNELS,
        latent_channels: int = LATENT_CHANNELS,
        unet_channels: Sequence[int] = UNET_CHANNELS,
        norm_groups: int = NORM_GROUPS,
        head_channels: int = HEAD_CHANNELS,
        train_timesteps: int = TRAIN_TIMESTEPS,
    ) -> None:
        super().__init__()
        levels = len(autoencoder_channels)
        self.train_timesteps = train_timesteps
        self.autoencoder = AutoencoderKL(
            spatial_dims=3, in_channels=1, out_channels=1, num_res_blocks=1,
            channels=tuple(autoencoder_channels), attention_levels=(False,) * levels,
            latent_channels=latent_channels, norm_num_groups=norm_groups,
            with_encoder_nonlocal_attn=False, with_decoder_nonlocal_attn=False,
        )  # fmt: skip
        self.unet = DiffusionModelUNet(
            spatial_dims=3, in_channels=2 * latent_channels, out_channels=latent_channels,
            num_res_blocks=1, channels=tuple(unet_channels),
            attention_levels=(False,) * (len(unet_channels) - 1) + (True,),
            norm_num_groups=norm_groups, num_head_channels=head_channels,
            with_conditioning=True, cross_attention_dim=CONTEXT_DIM,
        )  # fmt: skip
        latent = latent_shape(autoencoder_channels, latent_channels)
        self.standard = nn.ModuleDict({kind: LatentStandard(latent) for kind in KINDS})

    def scheduler(self) -> DDIMScheduler:
        """The noise schedule (the same object adds noise in training and removes it here)."""
        return DDIMScheduler(self.train_timesteps, clip_sample=False, **SCHEDULE)

    def encode(self, volume: torch.Tensor, kind: str = "suvr") -> torch.Tensor:
        """A (B, 1, 48, 56, 48) ``kind`` volume -> its standardised latent mean (no sampling:
        the same volume always gives the same latent)."""
        mean, _ = self.autoencoder.encode(volume)
        return self.standard[kind](mean)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """A standardised tau latent -> SUVR."""
        return self.autoencoder.decode(self.standard["suvr"].invert(latent))

    def denoise(
        self, noisy: torch.Tensor, anatomy: torch.Tensor, t: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """The predicted noise of the tau latent at timesteps ``t``."""
        return self.unet(torch.cat([noisy, anatomy], dim=1), t, context=context)

    @torch.no_grad()
    def sample(
        self,
        t1w: torch.Tensor,
        context: torch.Tensor,
        steps: int = DDIM_STEPS,
        guidance: float = GUIDANCE,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One SUVR sample per T1w (B, 1, 48, 56, 48) by DDIM; ``context`` is (B, 3, 5).

        Guided: noise = unconditional + guidance x (conditional - unconditional). A context
        that is the null one is sampled unconditionally (guidance does not apply).
        """
        anatomy = self.encode(t1w, "t1w")
        null = torch.from_numpy(null_context()).expand_as(context)
        guided = guidance != 1.0 and not torch.equal(context, null)
        scheduler = self.scheduler()
        scheduler.set_timesteps(steps)
        latent = torch.randn(anatomy.shape, generator=generator)
        for t in scheduler.timesteps:
            times = torch.full((len(latent),), int(t), dtype=torch.long)
            if guided:
                both = self.denoise(
                    torch.cat([latent, latent]), torch.cat([anatomy, anatomy]),
                    torch.cat([times, times]), torch.cat([null, context]),
                )  # fmt: skip
                plain, conditional = both.chunk(2)
                noise = plain + guidance * (conditional - plain)
            else:
                noise = self.denoise(latent, anatomy, times, context)
            latent, _ = scheduler.step(noise, int(t), latent)
        return self.decode(latent)

    def forward(self, t1w: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """A sample with the default steps and guidance (unconditional without ``context``)."""
        if context is None:
            context = torch.from_numpy(null_context()).expand(len(t1w), -1, -1)
        return self.sample(t1w, context)
