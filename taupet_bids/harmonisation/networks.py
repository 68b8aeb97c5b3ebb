"""The harmoniser: PET-MR SUVR and T1w (4 mm) -> a smooth, bounded log-ratio correction field.

``harmonised SUVR = SUVR x exp(field)``, so a zero field leaves the scan unchanged. The field is
smooth and bounded by construction rather than by a penalty:

- it is predicted on a coarse grid (two stride-2 stages: 16 mm voxels) and brought to the 4 mm
  input grid by trilinear interpolation, so it cannot carry detail finer than the attenuation
  bias it models (a smooth function of the skull and the distance from the brain's centre);
- it is ``bound x tanh(.)``, so no voxel is scaled by more than ``exp(+-bound)``;
- the field head's last convolution starts at zero, so an untrained network is the identity.

The auxiliary ``ct_head`` predicts a pseudo-CT (HU / 1000) at 4 mm from the same features plus
the full-resolution stem; it is trained against the simulated CT and never used at inference,
so no CT is ever needed to run the model (the seed paper's CT-informed anatomy, done as an
auxiliary task). It works voxel by voxel (1 x 1 x 1 convolutions): a 3 x 3 x 3 convolution on
the 4 mm grid cost 27 times more, for a head whose only job is to shape the shared features;
the deep features are projected to the stem's width (``ct_project``) before they are brought
to 4 mm, since that interpolation, not the convolutions, was the slowest part of a step.
With ``gated`` (optional since 0.2.0, off by default) a **gate** multiplies the field: the
probability, read from the whole image, that the scan was attenuation corrected with an MR-based
method, trained with a classification loss on PET-MR and PET-CT inputs, so that the field head
learns the correction of MR-AC scans only and a PET-CT input is left alone when the image says
it is one. It has its own small branch without normalisation (``gate_branch``: three stride-2
convolutions, averaged over the volume, one linear layer), because the volume means of the
instance-normalised shared features carry almost nothing of the intensity relations (bone and
scalp against brain) that could tell the two apart. On the simulator's pairs it stayed at
chance, hence off by default (docs/harmonisation.md). Children ``stem``, ``down``,
``field_head``, ``ct_project``, ``ct_head`` (and ``gate_branch``, ``gate_head``) are the
bundle's weight entries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional

#: Widths of the full-resolution stem and the two stride-2 stages.
CHANNELS = (16, 32, 64)
#: Largest absolute log-ratio the field can take (exp(0.3) = 1.35).
BOUND = 0.3
#: Width of the gate's own branch.
GATE_WIDTH = 16


def _conv(before: int, after: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(before, after, kernel_size=3, stride=stride, padding=1),
        nn.InstanceNorm3d(after, affine=True),
        nn.LeakyReLU(0.1),
    )


class HarmoniserNet(nn.Module):
    """(B, 2, 46, 55, 46) -> field (B, 1, 46, 55, 46) in [-bound, bound], pseudo-CT (B, 1, ...)
    and the MR-AC logit (B,) of the gate (None without one)."""

    def __init__(
        self, channels: Sequence[int] = CHANNELS, bound: float = BOUND, gated: bool = False
    ) -> None:
        super().__init__()
        first, middle, last = channels
        self.bound = float(bound)
        self.gated = bool(gated)
        self.stem = _conv(2, first)
        self.down = nn.Sequential(
            _conv(first, middle, stride=2), _conv(middle, last, stride=2), _conv(last, last)
        )
        self.field_head = nn.Conv3d(last, 1, kernel_size=3, padding=1)
        nn.init.zeros_(self.field_head.weight)
        nn.init.zeros_(self.field_head.bias)
        self.ct_project = nn.Conv3d(last, first, 1)
        self.ct_head = nn.Sequential(
            nn.Conv3d(2 * first, first, 1), nn.LeakyReLU(0.1), nn.Conv3d(first, 1, 1)
        )
        if self.gated:
            self.gate_branch = nn.Sequential(
                nn.Conv3d(2, GATE_WIDTH // 2, 3, stride=2, padding=1),
                nn.LeakyReLU(0.1),
                nn.Conv3d(GATE_WIDTH // 2, GATE_WIDTH, 3, stride=2, padding=1),
                nn.LeakyReLU(0.1),
                nn.Conv3d(GATE_WIDTH, GATE_WIDTH, 3, stride=2, padding=1),
                nn.LeakyReLU(0.1),
            )
            self.gate_head = nn.Linear(GATE_WIDTH, 1)
            nn.init.zeros_(self.gate_head.weight)
            nn.init.zeros_(self.gate_head.bias)

    def _up(self, volume: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        return functional.interpolate(
            volume, size=tuple(shape), mode="trilinear", align_corners=False
        )

    def _gate_logit(self, image: torch.Tensor) -> torch.Tensor | None:
        if not self.gated:
            return None
        return self.gate_head(self.gate_branch(image).mean(dim=(2, 3, 4)))[:, 0]

    def _field(
        self, coarse: torch.Tensor, shape: Sequence[int], logit: torch.Tensor | None
    ) -> torch.Tensor:
        field = self.bound * torch.tanh(self.field_head(coarse))
        if logit is not None:
            field = field * torch.sigmoid(logit)[:, None, None, None, None]
        return self._up(field, shape)

    def forward(
        self, image: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        shape = image.shape[2:]
        stem = self.stem(image)
        coarse = self.down(stem)
        logit = self._gate_logit(image)
        deep = self._up(self.ct_project(coarse), shape)
        pseudo_ct = self.ct_head(torch.cat([stem, deep], dim=1))
        return self._field(coarse, shape, logit), pseudo_ct, logit

    def correction(self, image: torch.Tensor) -> torch.Tensor:
        """The field alone, what inference runs: the pseudo-CT head is never evaluated."""
        coarse = self.down(self.stem(image))
        return self._field(coarse, image.shape[2:], self._gate_logit(image))

    def mr_ac_probability(self, image: torch.Tensor) -> torch.Tensor | None:
        """The gate's probability that each image had MR-based AC (None without a gate)."""
        logit = self._gate_logit(image)
        return None if logit is None else torch.sigmoid(logit)
