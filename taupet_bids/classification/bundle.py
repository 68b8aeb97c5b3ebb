"""The AD-vs-CN classifier's bundle, loaded exactly as MONAI's runner loads it.

No trained weights ship with taupet-bids yet (docs/classification.md): the package holds the
bundle's configs (``models/ad_classifier/configs``), which ``taupet-bids-train classifier``
copies into every bundle it writes. A bundle is therefore always given by its folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from monai.inferers import Inferer
from torch import nn

from taupet_bids.models import SHIPPED_CLASSIFIER
from taupet_bids.models.bundle import (
    CONFIG,
    METADATA,
    WEIGHTS,
    parsed,
    read_bundle,
    sha256,
)

#: The configs every classifier bundle runs with.
CONFIGS = SHIPPED_CLASSIFIER / "configs"


@dataclass(frozen=True)
class Classifier:
    """The loaded network, how to run it, and the bundle's metadata."""

    network: nn.Module
    inferer: Inferer
    metadata: dict
    bundle: Path
    #: Occlusion settings of the bundle's config (``mask_voxels``, ``overlap``).
    mask_voxels: int
    overlap: float

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unknown"))

    @property
    def threshold(self) -> float:
        """P(AD) at or above which a scan is labelled AD (the bundle's ``threshold``)."""
        return float(self.metadata["taupet_bids"]["threshold"])


def load_classifier(bundle: str | Path) -> Classifier:
    """Load a trained bundle, refusing weights whose sha256 differs from its metadata."""
    root = Path(bundle)
    if not (root / WEIGHTS).is_file():
        raise FileNotFoundError(
            f"{root} holds no trained classifier ({WEIGHTS} is missing): give a bundle written "
            "by `taupet-bids-train classifier`, or `--classify` alone for the shipped one"
        )
    parser = read_bundle(root)
    return Classifier(
        network=parsed(parser, "network"),
        inferer=parsed(parser, "inferer"),
        metadata=parser["_meta_"],
        bundle=root,
        mask_voxels=int(parser["mask_voxels"]),
        overlap=float(parser["overlap"]),
    )


class InvalidBundle(ValueError):
    """A folder given as a classifier bundle is not one; the message names the folder."""


@dataclass(frozen=True)
class ModelCard:
    """What the derivatives say about the model that made them (from the bundle's metadata)."""

    name: str
    version: str
    sha256: str
    threshold: float

    def sidecar(self) -> dict:
        """Sidecar fields naming the model, so every output can be traced to its weights."""
        return {
            "ModelName": self.name,
            "ModelVersion": self.version,
            "ModelSHA256": self.sha256,
            "Threshold": self.threshold,
        }


def read_card(bundle: str | Path) -> ModelCard:
    """The model's name, version, weights checksum and threshold from ``configs/metadata.json``.

    Reads JSON only (no network is built): the graph and the methods text call it.
    """
    root = Path(bundle)
    try:
        meta = json.loads((root / METADATA).read_text())
        ours = meta["taupet_bids"]
        return ModelCard(
            name=str(meta["name"]),
            version=str(meta["version"]),
            sha256=str(ours["model_sha256"]),
            threshold=float(ours["threshold"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        reason = f"lacks {error}" if isinstance(error, KeyError) else str(error)
        raise InvalidBundle(f"{root}: {METADATA} cannot be read ({reason})") from None


def check_bundle(bundle: str | Path) -> ModelCard:
    """Refuse, before any scan runs, a folder that is not a trained classifier bundle.

    It needs the config, the metadata (name, version, threshold, weights checksum), and
    weights whose sha256 matches: a wrong folder would otherwise fail only after hours of
    registrations, once per scan.
    """
    root = Path(bundle)
    if not root.is_dir():
        raise InvalidBundle(f"{root} is not a folder")
    missing = [str(part) for part in (CONFIG, METADATA, WEIGHTS) if not (root / part).is_file()]
    if missing:
        raise InvalidBundle(
            f"{root} is not a classifier bundle (no {', '.join(missing)}); taupet-bids ships no "
            "classifier weights: train a bundle with `taupet-bids-train classifier`"
        )
    card = read_card(root)
    if not 0.0 < card.threshold < 1.0:
        raise InvalidBundle(f"{root}: threshold {card.threshold:g} is not between 0 and 1")
    if sha256(root / WEIGHTS) != card.sha256:
        raise InvalidBundle(
            f"{root}: the sha256 of {WEIGHTS} does not match the one in {METADATA} "
            "(a damaged or replaced weights file)"
        )
    return card
