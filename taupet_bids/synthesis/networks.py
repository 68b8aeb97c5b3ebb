"""Synthesis networks, and the tasks they serve.

The T1w -> tau network is MONAI's residual :class:`~monai.networks.nets.UNet` (Kerfoot et al.
2019) in 3-D: strided convolutions down, transposed convolutions up, skip connections, one
residual unit per level, instance norm, PReLU. It maps the normalised 4 mm T1w to SUVR on the
same grid; the final layer is linear and the output is offset by 1 (reference-level uptake),
so an untrained network predicts a flat SUVR of about 1, the value most of the brain has.

Its one child, ``unet``, is the bundle's one weight entry ({child name: state_dict}).

:data:`TASKS` names every synthesis path the pipeline knows (``--synthesize``); only
``tau-from-t1w`` has a network yet (docs/synthesis.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from monai.networks.nets import UNet
from torch import nn

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
    #: Whether a network and pipeline exist yet.
    available: bool


TASKS = {
    task.name: task
    for task in (
        Task("tau-from-t1w", "T1w", "tau", "syntheticFromT1w", True),
        Task("tau-from-fdg", "FDG", "tau", "syntheticFromFDG", False),
        Task("tspo-from-t1w", "T1w", "TSPO", "syntheticFromT1w", False),
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
