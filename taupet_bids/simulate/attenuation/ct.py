"""A subject's CT in Hounsfield units, made from the phantom's head layers.

The other-anatomy phantom splits the head into layers (:mod:`taupet_bids.simulate.template`):
brain, meninges and CSF, skull, air spaces and soft tissue. A CT gives each a typical CT number;
the skull's is drawn per subject, because cortical bone density varies between people (and
with age) and is exactly what MR-based attenuation correction cannot see.
"""

from __future__ import annotations

import numpy as np

from taupet_bids.core.grids import Grid, sample
from taupet_bids.simulate.anatomy import Anatomy
from taupet_bids.simulate.attenuation.hounsfield import AIR_HU
from taupet_bids.simulate.template import (
    AIR,
    BONE,
    BRAIN,
    MENINGES,
    OUTSIDE,
    SOFT_TISSUE,
    TemplateData,
)

#: CT numbers of the layers other than bone: grey/white matter ~30-40 HU, CSF ~5-15 HU,
#: scalp (skin, fat and muscle together) ~0-40 HU, sinuses and outside air -1000 HU.
LAYER_HU = {OUTSIDE: AIR_HU, AIR: AIR_HU, SOFT_TISSUE: 20.0, MENINGES: 10.0, BRAIN: 35.0}
#: Skull CT number, drawn per subject: a vault of cortical tables and diploe averages ~700-1500 HU
#: at 2 mm, i.e. mu(511 keV) ~0.13-0.17 /cm through :func:`hounsfield.mu_511`.
BONE_HU_RANGE = (700.0, 1500.0)


def random_bone_hu(rng: np.random.Generator) -> float:
    """One subject's skull CT number (HU)."""
    return float(rng.uniform(*BONE_HU_RANGE))


def subject_layers(anatomy: Anatomy, template: TemplateData, grid: Grid) -> np.ndarray:
    """The phantom's head-layer codes pulled into the subject's head on ``grid`` (nearest)."""
    if template.tissue is None:
        raise ValueError("a CT needs an anatomy with head layers (the 'other' anatomy)")
    points = anatomy.to_template(grid.world_coordinates())
    codes = sample(template.tissue, template.grid_2mm.affine, points, order=0, cval=OUTSIDE)
    return np.rint(codes).astype(np.uint8)


def ct_from_layers(layers: np.ndarray, bone_hu: float) -> np.ndarray:
    """CT numbers (HU, float32) of a head-layer image with a skull of ``bone_hu``."""
    lut = np.full(max((*LAYER_HU, BONE)) + 1, AIR_HU, dtype=np.float32)
    for code, hu in LAYER_HU.items():
        lut[code] = hu
    lut[BONE] = bone_hu
    return lut[layers]
