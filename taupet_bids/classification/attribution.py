"""Which voxels the classifier's AD evidence comes from: an integrated-gradients map.

Occlusion (:func:`taupet_bids.classification.inference.occlusion_map`) measures what removing
one 12 mm block costs. When the evidence is redundant, as in a scan whose whole Braak territory
is hot, removing any one block costs almost nothing and the map is flat (docs/classification.md:
its top 10 % fell in the Braak regions no more often than chance). Integrated gradients
(Sundararajan et al. 2017, Captum's implementation) share the evidence out instead: each voxel
gets its input's difference from a baseline times the average gradient along the straight path
from that baseline, and the voxels' values add up to the change of the output between baseline
and scan (completeness), so redundant evidence is divided, not lost.

The baseline is the occluder's: the template brain at SUVR 1.0 (reference-level uptake), 0
outside it, as the network sees it. The output explained is the AD log-odds, logit(AD) minus
logit(CN), which does not saturate the way P(AD) does. The map is in log-odds units per 4 mm
voxel: positive where the uptake raised the odds of AD, negative where it lowered them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients

from taupet_bids.classification import preprocessing
from taupet_bids.classification.networks import CLASSES

#: Points on the path from the baseline to the scan (midpoint Riemann sum).
STEPS = 32
#: Uptake of the baseline scan inside the brain (SUVR): reference level, as the occluder.
BASELINE_SUVR = 1.0
#: Path images per network call.
BATCH = 8


@dataclass(frozen=True)
class AttributionMap:
    """Contribution of each 4 mm voxel to the AD log-odds, and how well the map adds up.

    ``log_odds_change`` is the network's log-odds of the scan minus the baseline's;
    ``completeness_error`` the map's sum minus that change (the path integral's error)."""

    values: np.ndarray
    steps: int
    log_odds_change: float
    completeness_error: float


def baseline_image() -> torch.Tensor:
    """The scan the map is measured from: the template brain at :data:`BASELINE_SUVR`."""
    flat = np.full(preprocessing.TEMPLATE_SHAPE, BASELINE_SUVR, dtype=np.float32)
    return torch.from_numpy(preprocessing.network_input(flat))[None, None]


class _ADLogOdds(torch.nn.Module):
    """logit(AD) - logit(CN) of the wrapped classifier: the quantity the map explains."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.network(image)
        return logits[:, CLASSES.index("AD")] - logits[:, CLASSES.index("CN")]


def attribution_map(
    network: torch.nn.Module, image: torch.Tensor, steps: int = STEPS
) -> AttributionMap:
    """Integrated gradients of the AD log-odds of a prepared scan (1, 1, 46, 55, 46), from
    :func:`baseline_image`, on the network's 4 mm grid."""
    explained = _ADLogOdds(network.eval())
    baseline = baseline_image()
    attributions, delta = IntegratedGradients(explained).attribute(
        image,
        baselines=baseline,
        n_steps=steps,
        method="riemann_middle",
        internal_batch_size=BATCH,
        return_convergence_delta=True,
    )
    with torch.no_grad():
        change = float(explained(image)[0] - explained(baseline)[0])
    return AttributionMap(
        values=attributions[0, 0].detach().numpy().astype(np.float32),
        steps=steps,
        log_odds_change=change,
        completeness_error=float(delta[0]),
    )
