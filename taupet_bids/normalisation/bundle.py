"""The shipped MR-less normaliser as a MONAI bundle: written after training, checksummed on load.

Layout (MONAI bundle conventions): ``configs/metadata.json`` (version, training data, metrics,
intended use and limits), ``configs/inference.json`` (the network definitions, instantiated with
MONAI's ``ConfigParser``), ``models/model.pt`` (weights of both stages) and ``docs/README.md``
(the model card). The weights' sha256 is recorded in the metadata and checked on every load, so a
corrupted or swapped file is refused instead of silently giving wrong SUVRs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from monai.bundle import ConfigParser

from taupet_bids.normalisation.networks import AffineNet, DeformNet

#: The bundle shipped inside the package.
SHIPPED_BUNDLE = Path(__file__).resolve().parent.parent / "models" / "mrless_normalisation"
NETWORK_CONFIG = {
    "affine_net": {"_target_": "taupet_bids.normalisation.networks.AffineNet"},
    "deform_net": {"_target_": "taupet_bids.normalisation.networks.DeformNet"},
}


class ModelIntegrityError(RuntimeError):
    """The weights file does not match the checksum recorded in the bundle."""


@dataclass(frozen=True)
class Normaliser:
    """The two loaded stages and the bundle's metadata."""

    affine_net: AffineNet
    deform_net: DeformNet
    metadata: dict
    bundle: Path

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unknown"))


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_normaliser(bundle: str | Path | None = None) -> Normaliser:
    """Load a bundle (default: the shipped one), refusing weights whose sha256 differs."""
    root = Path(bundle) if bundle else SHIPPED_BUNDLE
    metadata_file = root / "configs" / "metadata.json"
    weights = root / "models" / "model.pt"
    for needed in (metadata_file, weights, root / "configs" / "inference.json"):
        if not needed.exists():
            raise FileNotFoundError(f"MR-less model bundle {root} lacks {needed.relative_to(root)}")
    metadata = json.loads(metadata_file.read_text())
    expected = metadata.get("taupet_bids", {}).get("model_sha256")
    actual = sha256(weights)
    if expected != actual:
        raise ModelIntegrityError(
            f"{weights}: sha256 {actual} does not match {expected} recorded in {metadata_file}"
        )
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / "inference.json"))
    affine_net, deform_net = (
        parser.get_parsed_content("affine_net"),
        parser.get_parsed_content("deform_net"),
    )
    state = torch.load(weights, map_location="cpu", weights_only=True)
    affine_net.load_state_dict(state["affine"])
    deform_net.load_state_dict(state["deform"])
    affine_net.eval()
    deform_net.eval()
    return Normaliser(affine_net, deform_net, metadata, root)


def write_bundle(weights: Path, out_dir: Path, metadata: dict, model_card: str) -> Path:
    """Assemble a bundle from trained weights; ``metadata`` gets the checksum added."""
    out_dir = Path(out_dir)
    (out_dir / "configs").mkdir(parents=True, exist_ok=True)
    (out_dir / "models").mkdir(parents=True, exist_ok=True)
    (out_dir / "docs").mkdir(parents=True, exist_ok=True)
    target = out_dir / "models" / "model.pt"
    shutil.copyfile(weights, target)
    metadata = {**metadata}
    metadata.setdefault("taupet_bids", {})["model_sha256"] = sha256(target)
    (out_dir / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (out_dir / "configs" / "inference.json").write_text(json.dumps(NETWORK_CONFIG, indent=2) + "\n")
    (out_dir / "docs" / "README.md").write_text(model_card)
    return out_dir
