"""MCR-VQGAN (seed 002): T1w -> tau SUVR on axial 2-D slices, stacked back into a volume.

The generator follows the paper's plan at a CPU-sized width: a 7x7 stem, downsampling stages
of multi-scale (3/5/7) convolutions with instance norm, ReLU and CBAM attention, residual
blocks of multi-scale convolutions, a 1x1 projection into MONAI's EMA vector quantiser
(:class:`~monai.networks.layers.vector_quantizer.EMAQuantizer`; the codebook moves by moving
averages of the encodings assigned to it, never by gradient), a 1x1 projection back, residual
blocks of plain 3x3 convolutions, upsampling stages with CBAM and a 7x7 output convolution. The
paper's tanh output to [-1, 1] is kept and mapped onto the fixed SUVR range [0, SUVR_MAX], so
the scaling is the same for every volume (no per-volume min-max).

MONAI has the quantiser and the PatchGAN discriminator; CBAM and the multi-scale convolution
are written here. The perceptual term's features come from :class:`FeatureAutoencoder`, trained
here on the target SUVR slices, because no pretrained network (the paper's VGG16) can be
downloaded.

:class:`MCRVQGAN` is what a bundle holds: its children ``generator``, ``discriminator`` and
``features`` are the bundle's weight entries; its ``forward`` takes a 4 mm volume
(B, 1, X, Y, Z), runs the generator on each axial slice and stacks the slices back, so the
bundle runs through the same inference code as the 3-D U-Net.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.vector_quantizer import EMAQuantizer, VectorQuantizer
from monai.networks.nets import PatchDiscriminator
from torch import nn

from taupet_bids.synthesis.preprocessing import SUVR_MAX

#: Channels of the generator's levels (the first is the full 4 mm slice).
CHANNELS = (32, 64, 128)
RES_BLOCKS = 2
CODEBOOK_SIZE = 256
EMBEDDING_DIM = 32
#: EMA decay of the codebook (issue #17: about 0.99; the value is lost in our copy of seed 002).
DECAY = 0.99
DISCRIMINATOR_CHANNELS = 32
FEATURE_CHANNELS = (16, 32)


class CBAM(nn.Module):
    """Channel attention (shared MLP on average- and max-pooled channels), then spatial
    attention (7x7 convolution on the channel mean and max); Woo et al. 2018."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1)
        )
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        x = x * torch.sigmoid(pooled)
        maps = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(maps))


class MultiScaleConv(nn.Module):
    """Parallel 3x3, 5x5 and 7x7 convolutions, concatenated and fused by a 1x1 convolution."""

    def __init__(self, before: int, after: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(before, after, size, padding=size // 2) for size in (3, 5, 7)
        )
        self.fuse = nn.Conv2d(3 * after, after, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([branch(x) for branch in self.branches], dim=1))


def _conv(before: int, after: int, multiscale: bool) -> nn.Module:
    return MultiScaleConv(before, after) if multiscale else nn.Conv2d(before, after, 3, padding=1)


class ResBlock(nn.Module):
    """conv, instance norm, ReLU, dropout, conv, instance norm, CBAM; added to the input.
    Multi-scale convolutions before the quantiser, 3x3 after it (as the paper)."""

    def __init__(self, channels: int, multiscale: bool, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, multiscale),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(),
            nn.Dropout(dropout),
            _conv(channels, channels, multiscale),
            nn.InstanceNorm2d(channels, affine=True),
            CBAM(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def _stage(before: int, after: int, multiscale: bool) -> nn.Sequential:
    return nn.Sequential(
        _conv(before, after, multiscale),
        nn.InstanceNorm2d(after, affine=True),
        nn.ReLU(),
        CBAM(after),
    )


class Generator(nn.Module):
    """Normalised T1w slices (B, 1, H, W) -> (SUVR slices, VQ commitment loss).

    H and W must be divisible by 2 ** (len(channels) - 1) (48 x 56 with three levels).
    """

    def __init__(
        self,
        channels: Sequence[int] = CHANNELS,
        res_blocks: int = RES_BLOCKS,
        codebook_size: int = CODEBOOK_SIZE,
        embedding_dim: int = EMBEDDING_DIM,
        decay: float = DECAY,
    ) -> None:
        super().__init__()
        channels = list(channels)
        self.stem = nn.Conv2d(1, channels[0], 7, padding=3)
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(before, after, 4, stride=2, padding=1),
                          _stage(after, after, multiscale=True))
            for before, after in zip(channels[:-1], channels[1:], strict=True)
        )  # fmt: skip
        deepest = channels[-1]
        self.encoder_blocks = nn.Sequential(
            *(ResBlock(deepest, multiscale=True) for _ in range(res_blocks))
        )
        self.to_codes = nn.Conv2d(deepest, embedding_dim, 1)
        self.quantizer = VectorQuantizer(
            EMAQuantizer(2, codebook_size, embedding_dim, decay=decay, ddp_sync=False)
        )
        self.from_codes = nn.Conv2d(embedding_dim, deepest, 1)
        self.decoder_blocks = nn.Sequential(
            *(ResBlock(deepest, multiscale=False) for _ in range(res_blocks))
        )
        self.up = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(before, after, 4, stride=2, padding=1),
                          _stage(after, after, multiscale=False))
            for before, after in zip(channels[:0:-1], channels[-2::-1], strict=True)
        )  # fmt: skip
        self.head = nn.Conv2d(channels[0], 1, 7, padding=3)

    @property
    def codebook(self) -> torch.Tensor:
        """The quantiser's embedding vectors (codebook_size, embedding_dim)."""
        return self.quantizer.quantizer.embedding.weight

    def forward(self, t1w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(t1w)
        for stage in self.down:
            x = stage(x)
        commitment, codes = self.quantizer(self.to_codes(self.encoder_blocks(x)))
        x = self.decoder_blocks(self.from_codes(codes))
        for stage in self.up:
            x = stage(x)
        return (torch.tanh(self.head(x)) + 1.0) * (SUVR_MAX / 2), commitment


class FeatureEncoder(nn.Module):
    """Strided 3x3 convolutions; returns the activation of every level (the perceptual
    term's features)."""

    def __init__(self, channels: Sequence[int] = FEATURE_CHANNELS) -> None:
        super().__init__()
        widths = [1, *channels]
        self.levels = nn.ModuleList(
            nn.Sequential(nn.Conv2d(before, after, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
            for before, after in zip(widths[:-1], widths[1:], strict=True)
        )

    def forward(self, suvr: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for level in self.levels:
            suvr = level(suvr)
            out.append(suvr)
        return out


class FeatureAutoencoder(nn.Module):
    """A small convolutional autoencoder of SUVR slices, trained here so that its encoder's
    features can stand in for the paper's pretrained VGG16 in the perceptual term."""

    def __init__(self, channels: Sequence[int] = FEATURE_CHANNELS) -> None:
        super().__init__()
        self.encoder = FeatureEncoder(channels)
        widths = [1, *channels]
        layers: list[nn.Module] = []
        for before, after in zip(widths[:0:-1], widths[-2::-1], strict=True):
            layers += [nn.ConvTranspose2d(before, after, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.decoder = nn.Sequential(*layers[:-1])

    def forward(self, suvr: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(suvr)[-1])


def discriminator(channels: int = DISCRIMINATOR_CHANNELS) -> PatchDiscriminator:
    """MONAI's PatchGAN discriminator on SUVR slices, instance norm as in the paper."""
    return PatchDiscriminator(
        spatial_dims=2, channels=channels, in_channels=1, num_layers_d=2, norm="INSTANCE"
    )


def slicewise(generator: Generator, volume: torch.Tensor) -> torch.Tensor:
    """(B, 1, X, Y, Z) -> the generator's SUVR on each axial (X, Y) slice, stacked back."""
    batch, _, x, y, z = volume.shape
    slices = volume.permute(0, 4, 1, 2, 3).reshape(batch * z, 1, x, y)
    predicted, _ = generator(slices)
    return predicted.reshape(batch, z, 1, x, y).permute(0, 2, 3, 4, 1)


class MCRVQGAN(nn.Module):
    """The bundle's network: generator, PatchGAN discriminator and perceptual feature
    autoencoder; ``forward`` is the slice-wise generator on a 4 mm volume."""

    def __init__(
        self,
        channels: Sequence[int] = CHANNELS,
        res_blocks: int = RES_BLOCKS,
        codebook_size: int = CODEBOOK_SIZE,
        embedding_dim: int = EMBEDDING_DIM,
        decay: float = DECAY,
        discriminator_channels: int = DISCRIMINATOR_CHANNELS,
        feature_channels: Sequence[int] = FEATURE_CHANNELS,
    ) -> None:
        super().__init__()
        self.generator = Generator(channels, res_blocks, codebook_size, embedding_dim, decay)
        self.discriminator = discriminator(discriminator_channels)
        self.features = FeatureAutoencoder(feature_channels)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return slicewise(self.generator, volume)
