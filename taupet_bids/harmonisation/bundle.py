"""The PET-MR harmoniser's bundle, loaded exactly as MONAI's runner loads it.

No trained weights ship yet (docs/harmonisation.md): the package holds the bundle's configs
(``models/pet_harmoniser/configs``), which ``taupet-bids-train harmoniser`` copies into every
bundle it writes, so a bundle is always given by its folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from monai.inferers import Inferer

from taupet_bids.harmonisation.networks import HarmoniserNet
from taupet_bids.models.bundle import (
    CONFIG,
    METADATA,
    SHIPPED,
    WEIGHTS,
    parsed,
    read_bundle,
    sha256,
)

#: The configs every harmoniser bundle runs with.
CONFIGS = SHIPPED / "pet_harmoniser" / "configs"
TRAIN_HINT = (
    "taupet-bids ships no harmoniser weights: train one with `taupet-bids-train harmoniser`"
)


@dataclass(frozen=True)
class Harmoniser:
    """The loaded network, how to run it, and the bundle's metadata."""

    network: HarmoniserNet
    inferer: Inferer
    metadata: dict
    bundle: Path

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unknown"))


def load_harmoniser(bundle: str | Path) -> Harmoniser:
    """Load a trained bundle, refusing weights whose sha256 differs from its metadata."""
    root = Path(bundle)
    if not (root / WEIGHTS).is_file():
        raise FileNotFoundError(
            f"{root} holds no trained harmoniser ({WEIGHTS} is missing); {TRAIN_HINT}"
        )
    parser = read_bundle(root)
    return Harmoniser(parsed(parser, "network"), parsed(parser, "inferer"), parser["_meta_"], root)


class InvalidBundle(ValueError):
    """A folder given as a harmoniser bundle is not one; the message names the folder."""


@dataclass(frozen=True)
class ModelCard:
    """What the derivatives say about the model that made them."""

    name: str
    version: str
    sha256: str

    def sidecar(self) -> dict:
        return {"ModelName": self.name, "ModelVersion": self.version, "ModelSHA256": self.sha256}


def read_card(bundle: str | Path) -> ModelCard:
    """Name, version and weights checksum from ``configs/metadata.json`` (JSON only)."""
    root = Path(bundle)
    try:
        meta = json.loads((root / METADATA).read_text())
        return ModelCard(
            str(meta["name"]), str(meta["version"]), str(meta["taupet_bids"]["model_sha256"])
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        reason = f"lacks {error}" if isinstance(error, KeyError) else str(error)
        raise InvalidBundle(f"{root}: {METADATA} cannot be read ({reason})") from None


def check_bundle(bundle: str | Path) -> ModelCard:
    """Refuse, before any scan runs, a folder that is not a trained harmoniser bundle."""
    root = Path(bundle)
    if not root.is_dir():
        raise InvalidBundle(f"{root} is not a folder")
    missing = [str(part) for part in (CONFIG, METADATA, WEIGHTS) if not (root / part).is_file()]
    if missing:
        raise InvalidBundle(
            f"{root} is not a harmoniser bundle (no {', '.join(missing)}); {TRAIN_HINT}"
        )
    card = read_card(root)
    if sha256(root / WEIGHTS) != card.sha256:
        raise InvalidBundle(
            f"{root}: the sha256 of {WEIGHTS} does not match the one in "
            f"{METADATA} (a damaged or replaced weights file)"
        )
    return card
