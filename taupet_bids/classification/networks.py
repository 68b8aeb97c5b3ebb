"""A Conv5_FC3-style 3-D CNN: the architecture ClinicaDL's users know, sized for 4 mm SUVR.

ClinicaDL's Conv5_FC3 (Wen et al. 2020): five blocks of 3x3x3 convolution, batch norm, ReLU
and 2x2x2 max-pooling, 8 -> 16 -> 32 -> 64 -> 128 channels, then fully connected layers
(1300 -> 50 -> 2) with dropout before them. Differences here: the pooling rounds up (ceil mode,
like ClinicaDL's padded max-pool) so a 46 x 55 x 46 input ends at 2 x 2 x 2, and widths are
constructor arguments so tests can build a tiny network.

The issue's alternative is a MONAI ``DenseNet`` (:data:`DENSENET`, a small one that trains on a
CPU); :func:`build_network` makes either from a bundle's ``architecture`` entry, so one bundle
config serves both. Each returns two logits, (CN, AD); :func:`ad_probability` turns them into
P(AD). Their child modules are the bundle's weight entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

import torch
from monai.networks.nets import DenseNet
from torch import nn

from taupet_bids.classification.preprocessing import INPUT_SHAPE

#: ClinicaDL's Conv5_FC3 widths.
CHANNELS = (8, 16, 32, 64, 128)
HIDDEN = (1300, 50)
DROPOUT = 0.5
#: Output order of the two logits.
CLASSES = ("CN", "AD")
#: Architecture names a bundle's ``architecture`` entry may give (Conv5_FC3 when it gives none).
ARCHITECTURES = ("conv5fc3", "densenet")
#: The MONAI DenseNet alternative: DenseNet-121's layout shrunk (16 initial features, growth 8,
#: blocks of 2-4-6-4 layers, about 0.14 M weights) so that it trains in minutes on a CPU.
DENSENET = {
    "init_features": 16,
    "growth_rate": 8,
    "block_config": [2, 4, 6, 4],
    "dropout_prob": 0.2,
}


def _block(before: int, after: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(before, after, kernel_size=3, padding=1),
        nn.BatchNorm3d(after),
        nn.ReLU(),
        nn.MaxPool3d(2, 2, ceil_mode=True),
    )


def _pooled_shape(shape: Sequence[int], blocks: int) -> tuple[int, ...]:
    """Spatial shape after ``blocks`` ceil-mode 2x poolings."""
    out = tuple(shape)
    for _ in range(blocks):
        out = tuple(-(-n // 2) for n in out)
    return out


class Conv5FC3(nn.Module):
    """SUVR on the 4 mm grid (B, 1, 46, 55, 46) -> logits (B, 2) for (CN, AD)."""

    def __init__(
        self,
        channels: Sequence[int] = CHANNELS,
        hidden: Sequence[int] = HIDDEN,
        dropout: float = DROPOUT,
        input_shape: Sequence[int] = INPUT_SHAPE,
    ) -> None:
        super().__init__()
        widths = [1, *channels]
        self.features = nn.Sequential(
            *(_block(before, after) for before, after in pairwise(widths))
        )
        flat = widths[-1] * int(torch.tensor(_pooled_shape(input_shape, len(channels))).prod())
        layers: list[nn.Module] = [nn.Flatten(), nn.Dropout(dropout)]
        for before, after in pairwise([flat, *hidden]):
            layers += [nn.Linear(before, after), nn.ReLU()]
        layers.append(nn.Linear(hidden[-1] if hidden else flat, len(CLASSES)))
        self.classifier = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(image))


def build_network(architecture: Mapping) -> nn.Module:
    """The network a bundle's ``architecture`` entry describes.

    ``{"name": "densenet", **DenseNet arguments}`` gives MONAI's DenseNet; anything without a
    name is Conv5_FC3's arguments (the layout of the bundles written before the alternative).
    """
    settings = dict(architecture)
    name = settings.pop("name", "conv5fc3")
    if name == "conv5fc3":
        return Conv5FC3(**settings)
    if name == "densenet":
        return DenseNet(spatial_dims=3, in_channels=1, out_channels=len(CLASSES), **settings)
    raise ValueError(
        f"unknown classifier architecture {name!r} (known: {', '.join(ARCHITECTURES)})"
    )


def ad_probability(logits: torch.Tensor) -> torch.Tensor:
    """P(AD) per image from the (CN, AD) logits: softmax over the class axis."""
    return torch.softmax(logits, dim=1)[:, CLASSES.index("AD")]
