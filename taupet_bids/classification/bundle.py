"""The AD-vs-CN classifier's bundle, loaded exactly as MONAI's runner loads it.

No trained weights ship with taupet-bids yet (docs/classification.md): the package holds the
bundle's configs (``models/ad_classifier/configs``), which ``taupet-bids-train classifier``
copies into every bundle it writes. A bundle is therefore always given by its folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from monai.inferers import Inferer

from taupet_bids.classification.networks import Conv5FC3
from taupet_bids.models.bundle import SHIPPED, WEIGHTS, parsed, read_bundle

#: The configs every classifier bundle runs with.
CONFIGS = SHIPPED / "ad_classifier" / "configs"


@dataclass(frozen=True)
class Classifier:
    """The loaded network, how to run it, and the bundle's metadata."""

    network: Conv5FC3
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
            f"{root} holds no trained classifier ({WEIGHTS} is missing); taupet-bids ships no "
            "classifier weights: train a bundle with `taupet-bids-train classifier`"
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
