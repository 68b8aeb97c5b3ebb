"""What differs between the synthesis tasks when training: network, seed, loss, input reader.

Everything else (pairs, split, loop, baseline, bundle) is shared by
:mod:`taupet_bids.training.synthesis`, so the three models are trained and judged alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import nn

from taupet_bids.synthesis import preprocessing
from taupet_bids.synthesis.networks import (
    DenseUNet3D,
    SeparableAttentionUNet3D,
    TauFromT1wUNet,
)


@dataclass(frozen=True)
class TaskTraining:
    """How one task's network is built and fed."""

    #: The network class; its keyword arguments are the bundle's ``architecture``.
    network: Callable[..., nn.Module]
    #: TrainConfig fields that are the network's keyword arguments (same names).
    architecture: tuple[str, ...]
    #: Training seed (docs/models.md §10).
    seed: int
    #: Default masked loss.
    loss: str
    #: One template-space input file -> the network's 4 mm input array.
    read_source: Callable[[str | os.PathLike], np.ndarray]
    #: Human words for the model card.
    title: str
    network_words: str
    references: tuple[str, ...]


def _read_fdg(path: str | os.PathLike) -> np.ndarray:
    """An FDG SUVR input is read as the targets are: masked, clipped, 4 mm (not rescaled)."""
    return preprocessing.read_suvr(path)


TRAINING = {
    "tau-from-t1w": TaskTraining(
        TauFromT1wUNet, ("channels", "strides", "num_res_units"), 33, "mse",
        preprocessing.read_t1w, "Synthetic tau PET from T1w (3-D U-Net)",
        "MONAI's residual UNet, channels {channels}, strides {strides}, {num_res_units} residual "
        "unit(s) per level, instance norm",
        ("Kerfoot et al. 2019, Left-ventricle quantification using residual U-Net (MONAI UNet)",
         "Ronneberger et al. 2015, U-Net"),
    ),
    "tau-from-fdg": TaskTraining(
        DenseUNet3D, ("features", "growth", "layers"), 35, "l1", _read_fdg,
        "Synthetic tau PET from FDG PET (3-D Dense-U-Net)",
        "a 3-D Dense-U-Net (MONAI ConvDenseBlocks), features {features}, growth {growth}, "
        "{layers} convolution(s) per dense block",
        ("Huang et al. 2017, Densely connected convolutional networks",
         "seed 000 of the project's literature list: Dense-U-Net, FDG to tau"),
    ),
    "tspo-from-t1w": TaskTraining(
        SeparableAttentionUNet3D, ("features", "heads_channels"), 36, "mse",
        preprocessing.read_t1w,
        "Synthetic TSPO PET from T1w (separable 3-D U-Net with attention)",
        "a 3-D U-Net of depthwise-separable convolutions, features {features}, with multi-head "
        "self-attention ({heads_channels} channels per head, MONAI SpatialAttentionBlock) at the "
        "deepest level",
        ("Chollet 2017, Xception: depthwise separable convolutions",
         "seed 004 of the project's literature list: separable 3-D U-Net, T1w to TSPO"),
    ),
}  # fmt: skip

#: Each network's own default ``features`` (None in a config means this).
DEFAULT_FEATURES = {"tau-from-fdg": [16, 32, 64], "tspo-from-t1w": [16, 32, 64]}
