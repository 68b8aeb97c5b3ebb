"""A tiny harmoniser bundle for tests: seconds to write, loads and runs like a trained one.

Its field head gets small random weights (a trained network's head starts at zero, which would
leave every image unchanged and hide wiring errors), so the correction it applies is visible.
It is told the AC method (a field per MR method, so tests see which one ran).
"""

from __future__ import annotations

from pathlib import Path

import torch

from taupet_bids.harmonisation.bundle import CONFIGS
from taupet_bids.harmonisation.networks import HarmoniserNet
from taupet_bids.models.bundle import state_by_child
from taupet_bids.training import engine

TINY = {"channels": [2, 4, 4], "bound": 0.3, "conditioning": "method"}


def tiny_network(seed: int = 5, head_scale: float = 0.5) -> HarmoniserNet:
    torch.manual_seed(seed)
    network = HarmoniserNet(**TINY)
    with torch.no_grad():
        network.field_head.weight.normal_(0.0, head_scale)
        network.field_head.bias.fill_(0.05)
    return network.eval()


def write_tiny_bundle(out_dir: Path, seed: int = 5) -> Path:
    """A bundle of :func:`tiny_network` (untrained, non-zero field), with its checksum."""
    weights = Path(out_dir).with_name(f"{Path(out_dir).name}-weights.pt")
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_by_child(tiny_network(seed)), weights)
    metadata = {
        "version": "0.0.0-untrained",
        "name": "untrained tiny test harmoniser",
        "taupet_bids": {"architecture": TINY},
    }
    return engine.write_bundle(
        out_dir, weights, metadata, lambda _: "Untrained test bundle.\n", CONFIGS
    )
