"""Reading a taupet-bids model bundle: one layout and one checksum rule for every model.

A bundle is a MONAI bundle folder (docs/models.md): ``configs/inference.json`` (a config that
``python -m monai.bundle run`` can execute), ``configs/metadata.json``, ``models/model.pt`` and
``docs/README.md`` (the model card). The product and MONAI's runner read the same config, so they
build the same network and run the same pre- and postprocessing.

Weights are stored as ``{child name: state_dict}`` of the config's ``network_def`` (one entry per
``named_children()``; a network trained in stages keeps one entry per stage). Their sha256 is
recorded in the metadata and checked on every load, so a corrupted or swapped file is refused
instead of silently giving wrong results.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from torch import nn

#: Where the shipped bundles live (one folder per model).
SHIPPED = Path(__file__).resolve().parent
CONFIG = Path("configs") / "inference.json"
METADATA = Path("configs") / "metadata.json"
WEIGHTS = Path("models") / "model.pt"


class ModelIntegrityError(RuntimeError):
    """The weights file does not match the checksum recorded in the bundle."""


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_bundle(root: str | Path) -> ConfigParser:
    """The bundle's inference config with its metadata (``_meta_``) and ``bundle_root`` set.

    Nothing is instantiated yet: ask the parser for ``network``, ``inferer`` etc.
    """
    root = Path(root)
    for needed in (CONFIG, METADATA, WEIGHTS):
        if not (root / needed).is_file():
            raise FileNotFoundError(f"model bundle {root} lacks {needed}")
    parser = ConfigParser()
    parser.read_config(str(root / CONFIG))
    parser.read_meta(str(root / METADATA))
    parser["bundle_root"] = str(root)
    return parser


def parsed(parser: ConfigParser, key: str):
    """``parser.get_parsed_content(key)``, raising a component's own error (MONAI wraps it)."""
    try:
        return parser.get_parsed_content(key)
    except RuntimeError as error:
        if isinstance(error.__cause__, Exception):
            raise error.__cause__ from None
        raise


def state_by_child(network: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """The network's weights in the bundle's layout: ``{child name: state_dict}``."""
    parts = {name: child.state_dict() for name, child in network.named_children()}
    stored = {f"{name}.{key}" for name, state in parts.items() for key in state}
    if stored != set(network.state_dict()):
        raise ValueError(f"{type(network).__name__} holds weights outside its child modules")
    return parts


def load_weights(network: nn.Module, checkpoint: str | Path, expected_sha256: str) -> nn.Module:
    """``network`` with the weights of ``checkpoint``, in eval mode; refuse a checksum mismatch."""
    actual = sha256(Path(checkpoint))
    if actual != expected_sha256:
        raise ModelIntegrityError(
            f"{checkpoint}: sha256 {actual} does not match {expected_sha256} recorded in the "
            "bundle's metadata (taupet_bids.model_sha256)"
        )
    parts = torch.load(checkpoint, map_location="cpu", weights_only=True)
    network.load_state_dict(
        {f"{name}.{key}": value for name, state in parts.items() for key, value in state.items()}
    )
    return network.eval()
