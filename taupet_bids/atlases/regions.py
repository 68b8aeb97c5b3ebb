"""Which labels of each atlas image make up each row of a regional table (the table schema)."""

from __future__ import annotations

from taupet_bids import atlases

#: Braak composites in common use (Maass et al. 2017 report I/II, III/IV and V/VI).
BRAAK_COMPOSITES = {"BraakI_II": (1, 2), "BraakIII_IV": (3, 4), "BraakV_VI": (5, 6)}

#: DK tissues and regions that are grey matter a T1w segmentation finds reliably: the cortex
#: (cerebral and cerebellar), hippocampus and amygdala. The deep nuclei (thalamus, basal
#: ganglia, ventral DC, brain stem) are left out on purpose: their T1w contrast sits between
#: grey and white matter, so a three-class segmentation calls much of them white matter.
GREY_MATTER_TISSUES = ("cortex", "cerebellar_cortex")
GREY_MATTER_REGIONS = ("hippocampus", "amygdala")


def dk_grey_matter_regions() -> set[str]:
    """Bilateral DK regions whose means follow the subject's grey matter (``subject-gm``)."""
    return {
        label.region
        for label in atlases.dk_labels()
        if label.tissue in GREY_MATTER_TISSUES or label.region in GREY_MATTER_REGIONS
    }


def grey_matter_labels(atlas: str) -> list[int]:
    """Label indices of one atlas image that are restricted to the subject's grey matter.

    A Braak stage or the meta-temporal ROI counts when every DK region it is made of does
    (they all do today), so the composites follow their parts.
    """
    grey = dk_grey_matter_regions()
    if atlas == "DK":
        return atlases.dk_indices(sorted(grey))
    if atlas == "Braak":
        return [s for s, regions in atlases.braak_regions().items() if set(regions) <= grey]
    if atlas == "MetaTemporal":
        return [1] if set(atlases.metatemporal_regions()) <= grey else []
    raise KeyError(f"unknown atlas {atlas!r}; choose from {atlases.ATLAS_NAMES}")


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
