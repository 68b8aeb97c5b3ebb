"""A synthesis bundle, loaded exactly as MONAI's runner loads it.

No trained weights ship with taupet-bids yet (docs/synthesis.md): the package holds each task's
configs (``models/tau_from_t1w/configs``), which ``taupet-bids-train synthesis`` copies into
every bundle it writes. A bundle is therefore always given by its folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from monai.inferers import Inferer
from torch import nn

from taupet_bids.models.bundle import (
    CONFIG,
    METADATA,
    SHIPPED,
    WEIGHTS,
    parsed,
    read_bundle,
    sha256,
)
from taupet_bids.synthesis.networks import TASKS

#: The configs every bundle of a task runs with.
CONFIGS = {task: SHIPPED / task.replace("-", "_") / "configs" for task in TASKS}
#: The configs of a tau-from-t1w MCR-VQGAN bundle (``--synthesis-architecture vqgan``).
VQGAN_CONFIGS = SHIPPED / "tau_from_t1w_vqgan" / "configs"
#: The configs of a tau-from-t1w latent diffusion bundle (clinically conditioned).
DIFFUSION_CONFIGS = SHIPPED / "tau_from_t1w_diffusion" / "configs"
TRAIN_HINT = (
    "taupet-bids ships no synthesis weights: train a bundle with `taupet-bids-train synthesis`"
)


class InvalidBundle(ValueError):
    """A folder given as a synthesis bundle is not one; the message names the folder."""


@dataclass(frozen=True)
class ModelCard:
    """What the derivatives say about the model that made them (from the bundle's metadata)."""

    name: str
    version: str
    sha256: str
    task: str
    tracer: str
    #: The reference region of the SUVR the network was trained on (None when unknown).
    reference_region: str | None = None
    #: The network family (``taupet_bids.network``; bundles without it are ``unet``).
    network: str = "unet"
    #: The reference regions of a PET input's training SUVR (empty for a T1w input).
    source_reference_regions: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """The input modality (``T1w``, ``FDG``)."""
        return TASKS[self.task].source

    @property
    def desc(self) -> str:
        """The ``desc-`` label of this model's outputs."""
        return TASKS[self.task].desc


@dataclass(frozen=True)
class Synthesiser:
    """The loaded network, how to run it, and the bundle's metadata."""

    network: nn.Module
    inferer: Inferer
    metadata: dict
    bundle: Path

    @property
    def card(self) -> ModelCard:
        return _card(self.metadata, self.bundle)


def _card(meta: dict, root: Path) -> ModelCard:
    try:
        ours = meta["taupet_bids"]
        card = ModelCard(
            name=str(meta["name"]),
            version=str(meta["version"]),
            sha256=str(ours["model_sha256"]),
            task=str(ours["task"]),
            tracer=str(ours["target"]["tracer"]),
            reference_region=ours["target"].get("reference_region"),
            network=str(ours.get("network", "unet")),
            source_reference_regions=tuple(
                (ours.get("source_image") or {}).get("reference_regions") or ()
            ),
        )
    except (KeyError, TypeError) as error:
        raise InvalidBundle(f"{root}: {METADATA} lacks {error}") from None
    if card.task not in TASKS:
        raise InvalidBundle(f"{root}: unknown synthesis task {card.task!r} in {METADATA}")
    return card


def read_card(bundle: str | Path) -> ModelCard:
    """Name, version, checksum, task and tracer from ``configs/metadata.json`` (JSON only)."""
    root = Path(bundle)
    try:
        meta = json.loads((root / METADATA).read_text())
    except (OSError, ValueError) as error:
        raise InvalidBundle(f"{root}: {METADATA} cannot be read ({error})") from None
    return _card(meta, root)


def check_bundle(
    bundle: str | Path, task: str | None = None, network: str | None = None
) -> ModelCard:
    """Refuse, before any scan runs, a folder that is not a trained bundle (of ``task``, of the
    ``network`` family)."""
    root = Path(bundle)
    if not root.is_dir():
        raise InvalidBundle(f"{root} is not a folder")
    missing = [str(part) for part in (CONFIG, METADATA, WEIGHTS) if not (root / part).is_file()]
    if missing:
        raise InvalidBundle(
            f"{root} is not a synthesis bundle (no {', '.join(missing)}); {TRAIN_HINT}"
        )
    card = read_card(root)
    if task is not None and card.task != task:
        raise InvalidBundle(f"{root} synthesises {card.task}, not {task}")
    if network is not None:
        check_network(card, network, root)
    if sha256(root / WEIGHTS) != card.sha256:
        raise InvalidBundle(
            f"{root}: the sha256 of {WEIGHTS} does not match the one in {METADATA} "
            "(a damaged or replaced weights file)"
        )
    return card


def check_network(card: ModelCard, network: str, root: str | Path) -> None:
    """Refuse a bundle of another network family than the one asked for (unet, vqgan)."""
    if card.network != network:
        raise InvalidBundle(
            f"{root} is a {card.network} bundle, not {network}: give "
            f"--synthesis-architecture {card.network}, or a {network} bundle"
        )


def load_synthesiser(bundle: str | Path) -> Synthesiser:
    """Load a trained bundle, refusing weights whose sha256 differs from its metadata."""
    root = Path(bundle)
    if not (root / WEIGHTS).is_file():
        raise FileNotFoundError(
            f"{root} holds no trained synthesis network ({WEIGHTS} is missing); {TRAIN_HINT}"
        )
    parser = read_bundle(root)
    return Synthesiser(
        network=parsed(parser, "network"),
        inferer=parsed(parser, "inferer"),
        metadata=parser["_meta_"],
        bundle=root,
    )
