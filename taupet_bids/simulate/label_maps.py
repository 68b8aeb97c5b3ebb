"""Template-space maps from per-label values, shared by the FDG and TSPO uptake models.

The tau map (:func:`taupet_bids.simulate.uptake.suvr_map`) is built the same way; it keeps its
own code so its bytes never change when these models do.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from taupet_bids import atlases
from taupet_bids.simulate import template as layers
from taupet_bids.simulate.template import TemplateData

#: Layer codes of ``TemplateData.tissue`` by the names the uptake models use.
LAYER_CODES = {
    "soft_tissue": layers.SOFT_TISSUE,
    "bone": layers.BONE,
    "meninges": layers.MENINGES,
    "air": layers.AIR,
}
#: Region groups of the DK atlas used by the FDG and TSPO models.
GROUPS = {
    "mesial_temporal": ("entorhinal", "hippocampus", "amygdala", "parahippocampal"),
    "temporal": (
        "fusiform", "inferiortemporal", "middletemporal", "temporalpole",
        "superiortemporal", "bankssts", "transversetemporal",
    ),
    "parietal": ("superiorparietal", "inferiorparietal", "supramarginal", "precuneus"),
    "posterior_cingulate": ("posteriorcingulate", "isthmuscingulate"),
    "frontal": (
        "superiorfrontal", "caudalmiddlefrontal", "rostralmiddlefrontal", "parsopercularis",
        "parstriangularis", "parsorbitalis", "lateralorbitofrontal", "medialorbitofrontal",
        "frontalpole", "caudalanteriorcingulate", "rostralanteriorcingulate", "insula",
    ),
    "sensorimotor": ("precentral", "postcentral", "paracentral"),
    "occipital": ("pericalcarine", "cuneus", "lingual", "lateraloccipital"),
}  # fmt: skip


def group_of(region: str) -> str | None:
    """The group of a DK region (None for subcortex, white matter, cerebellum and the rest)."""
    return next((name for name, regions in GROUPS.items() if region in regions), None)


def draw_levels(
    rng: np.random.Generator,
    regions: dict[str, tuple[float, float]],
    tissues: dict[str, tuple[float, float]],
    jitter: float,
) -> dict[int, float]:
    """Per-DK-label level: a draw per bilateral region (by region, else tissue), jittered."""
    labels = atlases.dk_labels()
    level = {}
    for region in sorted({lab.region for lab in labels}):
        tissue = next(lab.tissue for lab in labels if lab.region == region)
        level[region] = rng.uniform(*regions.get(region, tissues[tissue]))
    return {lab.index: float(level[lab.region] * rng.normal(1.0, jitter)) for lab in labels}


def smooth_field(seed: int, template: TemplateData, sd: float, sigma_mm: float) -> np.ndarray:
    """A smooth multiplicative field over the template grid with mean 1 and SD ``sd`` in brain."""
    rng = np.random.default_rng(seed)
    field = rng.standard_normal(template.grid_2mm.shape).astype(np.float32)
    spacing = float(np.abs(template.grid_2mm.affine[0, 0]))
    field = ndimage.gaussian_filter(field, sigma_mm / spacing)
    field *= np.float32(sd / field[template.brain_mask].std())
    return np.exp(field - field[template.brain_mask].mean())


def label_map(
    values: dict[int, float],
    unlabelled: float,
    head: dict[str, float],
    template: TemplateData,
    field: np.ndarray | None = None,
) -> np.ndarray:
    """Unnormalised map: head layers (or one level), brain level, label values, times ``field``."""
    lut = np.zeros(int(template.dk.max()) + 1, np.float32)
    for index, value in values.items():
        if index < lut.size:
            lut[index] = value
    if template.tissue is not None:
        layer_lut = np.zeros(layers.BRAIN + 1, np.float32)
        for name, code in LAYER_CODES.items():
            layer_lut[code] = head[name]
        out = layer_lut[template.tissue]
    else:
        out = np.where(template.head_mask, np.float32(head["soft_tissue"]), np.float32(0))
    out[template.brain_mask] = unlabelled
    labelled = template.dk > 0
    out[labelled] = lut[template.dk[labelled]]
    if field is not None:
        out[template.brain_mask] *= field[template.brain_mask]
    return out


def normalise(image: np.ndarray, template: TemplateData, reference: str) -> np.ndarray:
    """``image`` divided by its mean in a reference mask (SUVR)."""
    return (image / image[template.reference_masks[reference]].mean()).astype(np.float32)
