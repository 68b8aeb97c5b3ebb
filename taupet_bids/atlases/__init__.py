"""Region definitions as data: Desikan-Killiany labels, Braak I-VI, meta-temporal, references.

The TSV/JSON files beside this module are the single source of truth; images in template
space are built from them by :mod:`taupet_bids.atlases.build` and served through TemplateFlow.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

#: Atlases written as labelled images (``atlas-<name>_dseg``) in template space.
ATLAS_NAMES = ("DK", "Braak", "MetaTemporal")

#: Reference region used when the tracer does not say otherwise (Baker et al. 2017).
DEFAULT_REFERENCE = "InfCerebGrey"

BRAAK_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}


@dataclass(frozen=True)
class DKLabel:
    """One label of the Desikan-Killiany (FreeSurfer aparc+aseg) segmentation."""

    index: int
    name: str
    hemisphere: str
    region: str
    tissue: str


def _read_tsv(name: str) -> list[dict[str, str]]:
    with files(__package__).joinpath(name).open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@cache
def dk_labels() -> tuple[DKLabel, ...]:
    """All labels of the DK segmentation, per hemisphere."""
    return tuple(
        DKLabel(int(r["index"]), r["name"], r["hemisphere"], r["region"], r["tissue"])
        for r in _read_tsv("dk.tsv")
    )


def dk_indices(regions: list[str] | tuple[str, ...]) -> list[int]:
    """Label indices (both hemispheres) of the named bilateral regions."""
    wanted = set(regions)
    unknown = wanted - {label.region for label in dk_labels()}
    if unknown:
        raise KeyError(f"unknown Desikan-Killiany regions: {sorted(unknown)}")
    return [label.index for label in dk_labels() if label.region in wanted]


@cache
def braak_regions() -> dict[int, tuple[str, ...]]:
    """Braak stage (1-6) -> the DK regions of that stage (Schöll 2016, Maass 2017)."""
    stages: dict[int, list[str]] = {}
    for row in _read_tsv("braak.tsv"):
        stages.setdefault(int(row["stage"]), []).append(row["region"])
    return {stage: tuple(regions) for stage, regions in sorted(stages.items())}


@cache
def metatemporal_regions() -> tuple[str, ...]:
    """DK regions of the meta-temporal ROI (Jack et al. 2017)."""
    return tuple(row["region"] for row in _read_tsv("metatemporal.tsv"))


@cache
def reference_regions() -> dict[str, dict]:
    """Reference-region definitions keyed by their BIDS label (e.g. ``InfCerebGrey``)."""
    return json.loads(files(__package__).joinpath("reference_regions.json").read_text())


def atlas_table(atlas: str) -> list[dict[str, str]]:
    """Rows (index, name) describing the labels of one atlas image."""
    if atlas == "DK":
        return [{"index": str(lab.index), "name": lab.name} for lab in dk_labels()]
    if atlas == "Braak":
        return [{"index": str(s), "name": f"Braak{BRAAK_ROMAN[s]}"} for s in braak_regions()]
    if atlas == "MetaTemporal":
        return [{"index": "1", "name": "metatemporal"}]
    raise KeyError(f"unknown atlas {atlas!r}; choose from {ATLAS_NAMES}")
