"""The harmoniser: PET-MR SUVR and T1w (4 mm) -> a smooth, bounded log-ratio correction field.

``harmonised SUVR = SUVR x exp(field)``, so a zero field leaves the scan unchanged. The field is
smooth and bounded by construction rather than by a penalty:

- it is predicted on a coarse grid (two stride-2 stages: 16 mm voxels) and brought to the 4 mm
  input grid by trilinear interpolation, so it cannot carry detail finer than the attenuation
  bias it models (a smooth function of the skull and the distance from the brain's centre);
- it is ``bound x tanh(.)``, so no voxel is scaled by more than ``exp(+-bound)``;
- the field head's last convolution starts at zero, so an untrained network is the identity.

**Told the AC method** (``conditioning``, since 0.3.0), as the scan's sidecar names it
(:data:`~taupet_bids.harmonisation.detection.AC_METHODS`): CT- or transmission-based AC, the
target scale, gets a zero field by construction, and

- ``ct`` (told only whether the AC was CT-based): one field for every MR-based method;
- ``method``: one field output per MR-based method (Dixon, atlas, UTE, and ``mr`` for any other),
  picked by the scan's method;
- ``none`` (0.2.0's design): one field for every scan, PET-CT included.

One image does not show which AC it had (the simulator's pairs: scalp and bone uptake differ
by a few per cent between the two scans of a visit and by far more between people), so a
network that is not told hedges its correction on every scan; a gate that tried to read the AC
from the image (0.2.0) stayed at chance and was removed.

The auxiliary ``ct_head`` predicts a pseudo-CT (HU / 1000) at 4 mm from the same features plus
the full-resolution stem; it is trained against the simulated CT and never used at inference,
so no CT is ever needed to run the model (the seed paper's CT-informed anatomy, done as an
auxiliary task). It works voxel by voxel (1 x 1 x 1 convolutions) on the deep features
projected to the stem's width (``ct_project``): interpolating all deep channels to 4 mm and a
3 x 3 x 3 convolution there made up most of a training step. Children ``stem``, ``down``,
``field_head``, ``ct_project`` and ``ct_head`` are the bundle's weight entries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional

from taupet_bids.harmonisation.detection import AC_METHODS

#: How much of the AC method the network is told (module doc).
CONDITIONINGS = ("none", "ct", "method")
#: Widths of the full-resolution stem and the two stride-2 stages.
CHANNELS = (16, 32, 64)
#: Largest absolute log-ratio the field can take (exp(0.3) = 1.35).
BOUND = 0.3
assert AC_METHODS[0] == "ct", "the zero field is the first of the conditioned outputs"


def _conv(before: int, after: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(before, after, kernel_size=3, stride=stride, padding=1),
        nn.InstanceNorm3d(after, affine=True),
        nn.LeakyReLU(0.1),
    )


def method_index(method: str) -> int:
    """The conditioning index of an AC method name (:data:`AC_METHODS`)."""
    if method not in AC_METHODS:
        raise ValueError(f"unknown AC method {method!r}; one of {', '.join(AC_METHODS)}")
    return AC_METHODS.index(method)


class HarmoniserNet(nn.Module):
    """(B, 2, 46, 55, 46) and the AC method indices (B,) -> field (B, 1, 46, 55, 46) in
    [-bound, bound] and pseudo-CT (B, 1, ...). ``conditioning`` defaults to ``none`` so that a
    bundle whose config predates it runs as it was trained (training's default is ``ct``)."""

    def __init__(
        self,
        channels: Sequence[int] = CHANNELS,
        bound: float = BOUND,
        conditioning: str = "none",
    ) -> None:
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, not {conditioning!r}")
        first, middle, last = channels
        self.bound = float(bound)
        self.conditioning = conditioning
        self.stem = _conv(2, first)
        self.down = nn.Sequential(
            _conv(first, middle, stride=2), _conv(middle, last, stride=2), _conv(last, last)
        )
        outputs = len(AC_METHODS) - 1 if conditioning == "method" else 1
        self.field_head = nn.Conv3d(last, outputs, kernel_size=3, padding=1)
        nn.init.zeros_(self.field_head.weight)
        nn.init.zeros_(self.field_head.bias)
        self.ct_project = nn.Conv3d(last, first, 1)
        self.ct_head = nn.Sequential(
            nn.Conv3d(2 * first, first, 1), nn.LeakyReLU(0.1), nn.Conv3d(first, 1, 1)
        )

    def _up(self, volume: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        return functional.interpolate(
            volume, size=tuple(shape), mode="trilinear", align_corners=False
        )

    def _field(
        self, coarse: torch.Tensor, shape: Sequence[int], methods: torch.Tensor | None
    ) -> torch.Tensor:
        fields = self.bound * torch.tanh(self.field_head(coarse))
        if self.conditioning != "none":
            if methods is None:
                raise ValueError("this harmoniser is told the AC method: pass one per image")
            every = torch.cat([torch.zeros_like(fields[:, :1]), fields], dim=1)
            index = methods.long().to(fields.device)
            if self.conditioning == "ct":
                index = (index != 0).long()  # every MR-based method: the one field
            index = index[:, None, None, None, None].expand(-1, 1, *fields.shape[2:])
            fields = torch.gather(every, 1, index)
        return self._up(fields, shape)

    def forward(
        self, image: torch.Tensor, methods: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        shape = image.shape[2:]
        stem = self.stem(image)
        coarse = self.down(stem)
        deep = self._up(self.ct_project(coarse), shape)
        pseudo_ct = self.ct_head(torch.cat([stem, deep], dim=1))
        return self._field(coarse, shape, methods), pseudo_ct

    def correction(self, image: torch.Tensor, methods: torch.Tensor | None = None) -> torch.Tensor:
        """The field alone, what inference runs: the pseudo-CT head is never evaluated.
        ``methods``: AC method indices (:func:`method_index`), needed unless ``conditioning`` is
        ``none``."""
        coarse = self.down(self.stem(image))
        return self._field(coarse, image.shape[2:], methods)
