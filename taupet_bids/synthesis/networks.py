"""Synthesis networks, and the tasks they serve.

The T1w -> tau network is MONAI's residual :class:`~monai.networks.nets.UNet` (Kerfoot et al.
2019) in 3-D: strided convolutions down, transposed convolutions up, skip connections, one
residual unit per level, instance norm, PReLU. It maps the normalised 4 mm T1w to SUVR on the
same grid; the final layer is linear and the output is offset by 1 (reference-level uptake),
so an untrained network predicts a flat SUVR of about 1, the value most of the brain has.

Its one child, ``unet``, is the bundle's one weight entry ({child name: state_dict}).

:data:`TASKS` names every synthesis path the pipeline knows (``--synthesize``): tau from
T1w (:class:`TauFromT1wUNet`), tau from FDG (:class:`DenseUNet3D`) and TSPO from T1w
(:class:`SeparableAttentionUNet3D`); each trains with ``taupet-bids-train synthesis``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from monai.networks.blocks import ConvDenseBlock, Convolution, SpatialAttentionBlock
from monai.networks.nets import UNet
from torch import nn
from torch.nn import functional

#: Channels per level (the first is the full 4 mm grid) and downsampling strides between them.
CHANNELS = (16, 32, 64, 128)
STRIDES = (2, 2, 2)
RESIDUAL_UNITS = 1
#: SUVR the output is offset by.
OUTPUT_OFFSET = 1.0


@dataclass(frozen=True)
class Task:
    """One synthesis path: what it reads, what it makes, and how its outputs are named."""

    name: str
    #: The input modality, as a BIDS suffix or tracer family (``T1w``, ``FDG``).
    source: str
    #: What it synthesises (``tau``, ``TSPO``).
    target: str
    #: The ``desc-`` label of its outputs: synthetic, and from which modality.
    desc: str
    #: Whether ``taupet-bids --synthesize`` runs it (all three train with
    #: ``taupet-bids-train synthesis``).
    available: bool


TASKS = {
    task.name: task
    for task in (
        Task("tau-from-t1w", "T1w", "tau", "syntheticFromT1w", True),
        Task("tau-from-fdg", "FDG", "tau", "syntheticFromFDG", True),
        Task("tspo-from-t1w", "T1w", "TSPO", "syntheticFromT1w", True),
    )
}


class TauFromT1wUNet(nn.Module):
    """Normalised T1w (B, 1, 48, 56, 48) -> SUVR (B, 1, 48, 56, 48)."""

    def __init__(
        self,
        channels: Sequence[int] = CHANNELS,
        strides: Sequence[int] = STRIDES,
        num_res_units: int = RESIDUAL_UNITS,
    ) -> None:
        super().__init__()
        if len(strides) != len(channels) - 1:
            raise ValueError(f"{len(channels)} levels need {len(channels) - 1} strides")
        self.unet = UNet(
            spatial_dims=3,
            in_channels=1,
            out_channels=1,
            channels=tuple(channels),
            strides=tuple(strides),
            num_res_units=num_res_units,
            norm="instance",
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.unet(image) + OUTPUT_OFFSET


class DenseUNet3D(nn.Module):
    """FDG SUVR (B, 1, 48, 56, 48) -> tau SUVR: a 3-D Dense-U-Net, as seed 000 describes it.

    Every level is a MONAI :class:`~monai.networks.blocks.ConvDenseBlock` (each convolution
    sees the concatenation of all earlier outputs of the block); strided convolutions go down,
    transposed ones up, and the decoder's dense blocks read the encoder's output of their level
    (skip connections). Output offset by SUVR 1, as :class:`TauFromT1wUNet`.
    """

    def __init__(
        self, features: Sequence[int] = (16, 32, 64), growth: int = 8, layers: int = 2
    ) -> None:
        super().__init__()
        self.stem = Convolution(3, 1, features[0])
        encoder, down, skips = [], [], []
        width = features[0]
        for level, _ in enumerate(features):
            encoder.append(ConvDenseBlock(3, width, [growth] * layers))
            width += growth * layers
            skips.append(width)
            if level < len(features) - 1:
                down.append(Convolution(3, width, features[level + 1], strides=2))
                width = features[level + 1]
        up, decoder = [], []
        for level in reversed(range(len(features) - 1)):
            up.append(Convolution(3, width, features[level], strides=2, is_transposed=True))
            joined = features[level] + skips[level]
            decoder.append(ConvDenseBlock(3, joined, [growth] * layers))
            width = joined + growth * layers
        self.encoder, self.down = nn.ModuleList(encoder), nn.ModuleList(down)
        self.up, self.decoder = nn.ModuleList(up), nn.ModuleList(decoder)
        self.head = Convolution(3, width, 1, kernel_size=1, conv_only=True)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x, skips = self.stem(image), []
        for level, block in enumerate(self.encoder):
            x = block(x)
            if level < len(self.down):
                skips.append(x)
                x = self.down[level](x)
        for up, block in zip(self.up, self.decoder, strict=True):
            x = block(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x) + OUTPUT_OFFSET


class _Separable(nn.Sequential):
    """Depthwise 3x3x3 convolution, pointwise 1x1x1 convolution, instance norm, PReLU."""

    def __init__(self, before: int, after: int) -> None:
        super().__init__(
            nn.Conv3d(before, before, 3, padding=1, groups=before),
            nn.Conv3d(before, after, 1),
            nn.InstanceNorm3d(after, affine=True),
            nn.PReLU(),
        )


class SeparableAttentionUNet3D(nn.Module):
    """T1w (B, 1, 48, 56, 48) -> TSPO SUVR: a 3-D U-Net of depthwise-separable convolutions
    with self-attention at the deepest level, as seed 004 describes it (trained with masked MSE).

    Two separable convolutions per level, max-pooling down, trilinear upsampling and a 1x1x1
    convolution up; at the bottom MONAI's :class:`~monai.networks.blocks.SpatialAttentionBlock`
    (multi-head self-attention over the deepest grid's positions, 12 x 14 x 12 with three
    levels; residual). Output offset by SUVR 1.
    """

    def __init__(self, features: Sequence[int] = (16, 32, 64), heads_channels: int = 16) -> None:
        super().__init__()
        widths = [1, *features]
        self.encoder = nn.ModuleList(
            nn.Sequential(_Separable(before, after), _Separable(after, after))
            for before, after in zip(widths[:-1], widths[1:], strict=True)
        )
        deepest = features[-1]
        self.attention = SpatialAttentionBlock(
            3, deepest, num_head_channels=min(heads_channels, deepest),
            norm_num_groups=math.gcd(8, deepest),
        )  # fmt: skip
        self.up = nn.ModuleList(
            nn.Conv3d(features[level + 1], features[level], 1)
            for level in reversed(range(len(features) - 1))
        )
        self.decoder = nn.ModuleList(
            nn.Sequential(_Separable(2 * features[level], features[level]),
                          _Separable(features[level], features[level]))
            for level in reversed(range(len(features) - 1))
        )  # fmt: skip
        self.head = nn.Conv3d(features[0], 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x, skips = image, []
        for level, block in enumerate(self.encoder):
            if level:
                x = functional.max_pool3d(x, 2)
            x = block(x)
            skips.append(x)
        x = self.attention(skips.pop())
        for up, block in zip(self.up, self.decoder, strict=True):
            skip = skips.pop()
            x = up(functional.interpolate(x, size=skip.shape[2:], mode="trilinear"))
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x) + OUTPUT_OFFSET
