"""Which labels of each atlas image make up each row of a regional table (the table schema)."""

from __future__ import annotations

from taupet_bids import atlases

#: Braak composites in common use (Maass et al. 2017 report I/II, III/IV and V/VI).
BRAAK_COMPOSITES = {"BraakI_II": (1, 2), "BraakIII_IV": (3, 4), "BraakV_VI": (5, 6)}


def region_groups(atlas: str) -> dict[str, list[int]]:
    """Row name -> label indices, for the regional table of one atlas.

    DK rows are the bilateral regions first (left and right combined, the usual unit in tau
    PET papers), then each hemisphere as ``left-<region>`` / ``right-<region>``.
    """
    if atlas == "DK":
        bilateral: dict[str, list[int]] = {}
        per_hemisphere: dict[str, list[int]] = {}
        for label in atlases.dk_labels():
            bilateral.setdefault(label.region, []).append(label.index)
            if label.hemisphere in ("left", "right"):
                per_hemisphere[f"{label.hemisphere}-{label.region}"] = [label.index]
        return {**bilateral, **per_hemisphere}
    if atlas == "Braak":
        groups = {f"Braak{roman}": [stage] for stage, roman in atlases.BRAAK_ROMAN.items()}
        return {**groups, **{name: list(stages) for name, stages in BRAAK_COMPOSITES.items()}}
    if atlas == "MetaTemporal":
        return {"metatemporal": [1]}
    raise KeyError(f"unknown atlas {atlas!r}; choose from {atlases.ATLAS_NAMES}")
