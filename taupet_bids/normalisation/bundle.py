"""The MR-less normaliser's bundle, loaded exactly as MONAI's runner loads it.

The pipeline parses the bundle's ``configs/inference.json`` (see :mod:`taupet_bids.models.bundle`)
and takes its ``network`` (``NormaliserNet`` with checksummed weights) and ``inferer`` from it;
``python -m monai.bundle run`` on the same config adds the config's preprocessing (a NIfTI file
onto the canvas) and postprocessing (the ITK displacement field), which are the functions of
:mod:`taupet_bids.normalisation.inference` the pipeline calls itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from monai.inferers import Inferer

from taupet_bids.models.bundle import SHIPPED, WEIGHTS, parsed, read_bundle, sha256
from taupet_bids.normalisation.networks import NormaliserNet

#: The bundle shipped inside the package.
SHIPPED_BUNDLE = SHIPPED / "mrless_normalisation"


@dataclass(frozen=True)
class Normaliser:
    """The loaded network, how to run it, and the bundle's metadata."""

    network: NormaliserNet
    inferer: Inferer
    metadata: dict
    bundle: Path

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unknown"))


def load_normaliser(bundle: str | Path | None = None) -> Normaliser:
    """Load a bundle (default: the shipped one), refusing weights whose sha256 differs."""
    root = Path(bundle) if bundle else SHIPPED_BUNDLE
    parser = read_bundle(root)
    return Normaliser(
        network=parsed(parser, "network"),
        inferer=parsed(parser, "inferer"),
        metadata=parser["_meta_"],
        bundle=root,
    )


#: Networks loaded in this process, by (resolved bundle folder, sha256 of its weights).
_LOADED: dict[tuple[str, str], Normaliser] = {}


def cached_normaliser(bundle: str | Path | None = None) -> Normaliser:
    """:func:`load_normaliser`, once per process and bundle: a worker that normalises many
    scans builds the network and reads its weights once. The key includes the weights' sha256,
    so a bundle retrained into the same folder is loaded afresh (and checked again)."""
    root = (Path(bundle) if bundle else SHIPPED_BUNDLE).resolve()
    weights = root / WEIGHTS
    key = (str(root), sha256(weights) if weights.is_file() else "")
    if key not in _LOADED:
        _LOADED[key] = load_normaliser(root)
    return _LOADED[key]
