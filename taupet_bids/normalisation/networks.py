"""The two stages of the MR-less normalisation network (MONAI building blocks, PyTorch).

- :class:`AffineNet` looks at the PET on the canvas (see :mod:`.geometry`) and regresses the
  12 parameters of the canvas-to-template affine ``x = A c + t`` in millimetres. Three coordinate
  channels are appended to the image so the convolutions know where they are (the pose is a
  global property; CoordConv, Liu et al. 2018).
- :class:`DeformNet` is MONAI's LocalNet (Hu et al. 2018, the DeepReg design): it sees the PET
  after the affine, on the 4 mm template grid, and predicts the residual displacement ``d(x)`` in
  millimetres that the affine cannot express (individual anatomy).

:class:`NormaliserNet` chains the two; it is what the bundle's config instantiates.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution
from monai.networks.nets import LocalNet
from torch import nn
from torch.nn import functional

from taupet_bids.normalisation import geometry

#: Scale of the affine head's outputs: matrix entries vary by ~0.1-0.5, translations by ~10 mm.
MATRIX_SCALE = 0.1
TRANSLATION_SCALE = 10.0
#: Scale of the deformable head's output (mm per unit).
DISPLACEMENT_SCALE = 2.0


def _coordinate_channels(shape: tuple[int, int, int]) -> torch.Tensor:
    """(3, X, Y, Z) ramps from -1 to 1 along each axis."""
    ramps = [torch.linspace(-1.0, 1.0, n) for n in shape]
    return torch.stack(torch.meshgrid(*ramps, indexing="ij"))


class AffineNet(nn.Module):
    """PET on the canvas (B, 1, 48, 48, 48) -> affine (B, 3, 4), canvas mm -> template mm."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 128), hidden: int = 256):
        super().__init__()
        self.register_buffer(
            "coords", _coordinate_channels(geometry.CANVAS_SHAPE)[None], persistent=False
        )
        # Every block halves the grid (48 -> 24 -> 12 -> 6 -> 3) and is followed by one at the
        # same size: a 4 mm canvas already holds more detail than a 6-8 mm PET.
        layers, before = [], 4
        for after in channels:
            layers.append(Convolution(3, before, after, strides=2, act="PRELU", norm="INSTANCE"))
            layers.append(Convolution(3, after, after, strides=1, act="PRELU", norm="INSTANCE"))
            before = after
        self.encoder = nn.Sequential(*layers)
        size = geometry.CANVAS_SHAPE[0] // 2 ** len(channels)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels[-1] * size**3, hidden),
            nn.PReLU(),
            nn.Linear(hidden, 12),
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        identity = torch.zeros(3, 4)
        identity[:, :3] = torch.eye(3)
        identity[:, 3] = torch.tensor(geometry.TEMPLATE_CENTRE)
        self.register_buffer("identity", identity, persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        coords = self.coords.expand(image.shape[0], -1, -1, -1, -1)
        raw = self.head(self.encoder(torch.cat([image, coords], dim=1))).view(-1, 3, 4)
        scale = torch.tensor([MATRIX_SCALE] * 3 + [TRANSLATION_SCALE], device=raw.device)
        return self.identity + raw * scale


class DeformNet(nn.Module):
    """PET on the 4 mm template grid (B, 1, 48, 56, 48) -> displacement (B, 3, 48, 56, 48), mm.

    LocalNet runs on an 8 mm copy of the input: individual anatomy varies over centimetres, and
    the coarse grid makes training and inference about 8x cheaper on a CPU.
    """

    def __init__(self, channels: int = 16, levels: int = 2):
        super().__init__()
        self.net = LocalNet(
            spatial_dims=3,
            in_channels=1,
            num_channel_initial=channels,
            extract_levels=tuple(range(levels + 1)),
            out_channels=3,
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        coarse = self.net(functional.avg_pool3d(image, 2)) * DISPLACEMENT_SCALE
        return functional.interpolate(coarse, size=image.shape[2:], mode="trilinear")


class NormaliserNet(nn.Module):
    """Both stages in one module, the bundle's ``network_def``: canvas -> (affine, displacement).

    The deformable stage sees the PET sampled onto the 4 mm template grid through the affine
    stage's result (:meth:`template_view`), which is also how training builds its input.
    """

    def __init__(self):
        super().__init__()
        self.affine = AffineNet()
        self.deform = DeformNet()
        points = torch.from_numpy(geometry.template_points())[None]
        self.register_buffer("template_points", points, persistent=False)

    def template_view(self, canvas: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
        """The canvas images sampled at the template grid's points through ``affine``."""
        points = self.template_points.expand(canvas.shape[0], -1, -1, -1, -1)
        return sample_canvas(canvas, canvas_positions(affine, points))

    def forward(self, canvas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        affine = self.affine(canvas)
        return affine, self.deform(self.template_view(canvas, affine))


def canvas_positions(affine: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Canvas coordinates ``A^-1 (x - t)`` (B, 3, ...) of template points ``x`` (B, 3, ...)."""
    matrix, shift = affine[:, :, :3], affine[:, :, 3]
    flat = points.reshape(points.shape[0], 3, -1) - shift[:, :, None]
    return torch.linalg.solve(matrix, flat).reshape(points.shape)


def sample_canvas(canvas: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Trilinear values of canvas images (B, 1, 48, 48, 48) at canvas coordinates (B, 3, ...)."""
    half = (torch.tensor(geometry.CANVAS_SHAPE, dtype=positions.dtype) - 1) / 2
    shape = positions.shape
    flat = positions.reshape(shape[0], 3, -1)
    normalised = flat / (half[None, :, None] * geometry.CANVAS_MM)
    # grid_sample wants (x, y, z) = (last, middle, first) array axis, in [-1, 1].
    grid = normalised.flip(1).permute(0, 2, 1).reshape(shape[0], 1, 1, -1, 3)
    values = functional.grid_sample(canvas, grid, mode="bilinear", align_corners=True)
    return values.reshape(shape[0], 1, *shape[2:])
