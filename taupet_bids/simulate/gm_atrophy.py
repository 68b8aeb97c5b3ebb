"""Atrophy that follows the subject's own tau (``--atrophy braak``), so T1w predicts tau partly.

Grey matter is lost region by region in proportion to the tau the region carries (its Braak
stage, the subject's amplitude and regional susceptibility), times an individual resilience and
regional noise, plus tau-independent loss (ageing, other pathology). It shows in the T1w two ways:

- cortical and mesial-temporal grey matter is darkened towards CSF by the lost fraction (a
  thinner ribbon blurs with sulcal CSF in a 1 mm voxel, which is what segmentation measures);
- the hippocampal shrinkage and ventricular enlargement of :func:`anatomy.atrophy_field` get
  their severity from this loss (hippocampus from its own loss, ventricles from the cortical
  mean) instead of from the stage alone.

Traits come from the subject's own stream (:data:`ATROPHY_STREAM`); the displacement is fixed at
the first visit (as the stage-driven atrophy is), the grey-matter contrast follows each visit.
The PET sees the same loss (:func:`atrophied_fractions`): the lost grey matter of a voxel turns
to CSF in the tissue mixing of :mod:`partial_volume`, so a thinner cortex carries less tracer
signal while the tissue's concentration (the sharp truth) is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from taupet_bids import atlases
from taupet_bids.simulate import label_maps
from taupet_bids.simulate.partial_volume import TissueFractions
from taupet_bids.simulate.template import TemplateData
from taupet_bids.simulate.uptake import TauState, UptakeProfile, label_suvr

#: Spawn-key suffix of the atrophy stream (pairs 16, clinical 17, FDG 18, TSPO 19).
ATROPHY_STREAM = 20
#: Fraction of grey matter lost per SUVR of added tau, before individual factors.
LOSS_PER_TAU = 0.08
#: Individual resilience (lognormal SD, per subject) and regional noise (lognormal SD).
RESILIENCE_SD = 0.5
REGIONAL_SD = 0.45
#: Tau-independent loss per region (uniform) and per year of age beyond 60.
NON_TAU_LOSS = (0.0, 0.08)
AGE_LOSS_PER_YEAR = 0.002
MAX_LOSS = 0.45
#: Loss that gives displacement severity 1 (hippocampus: its own; ventricles: cortical mean).
HIPPOCAMPAL_LOSS_AT_1 = 0.3
CORTICAL_LOSS_AT_1 = 0.12
#: Template T1w levels of grey matter, white matter and CSF (the other anatomy's units).
GM_T1W, WM_T1W, CSF_T1W = 5200.0, 7000.0, 2000.0
#: Smoothing of the voxelwise loss (mm) so 2 mm label edges do not show in the 1 mm T1w.
SMOOTH_MM = 1.5


@dataclass(frozen=True)
class AtrophyTraits:
    """A subject's stable atrophy traits."""

    resilience: float
    regional: dict[int, float]
    non_tau: dict[int, float]


def _atrophic_labels() -> list[int]:
    """DK labels that lose grey matter: every cortical and mesial-temporal label."""
    return [lab.index for lab in atlases.dk_labels() if label_maps.group_of(lab.region)]


def random_traits(rng: np.random.Generator) -> AtrophyTraits:
    """Draw a subject's resilience, regional susceptibility and tau-independent loss."""
    labels = _atrophic_labels()
    return AtrophyTraits(
        resilience=float(np.exp(rng.normal(0.0, RESILIENCE_SD))),
        regional={i: float(np.exp(rng.normal(0.0, REGIONAL_SD))) for i in labels},
        non_tau={i: float(rng.uniform(*NON_TAU_LOSS)) for i in labels},
    )


def regional_loss(
    traits: AtrophyTraits, profile: UptakeProfile, state: TauState, age: float
) -> dict[int, float]:
    """Fraction of grey matter lost per atrophic DK label at one visit."""
    tau = label_suvr(profile, state)
    ageing = AGE_LOSS_PER_YEAR * max(0.0, age - 60.0)
    loss = {}
    for index in _atrophic_labels():
        added = tau[index] - profile.baseline[index]
        driven = LOSS_PER_TAU * added * traits.resilience * traits.regional[index]
        loss[index] = float(np.clip(driven + traits.non_tau[index] + ageing, 0.0, MAX_LOSS))
    return loss


def severities(loss: dict[int, float]) -> dict[str, float]:
    """Severity per region of :data:`anatomy.ATROPHY` from the regional grey-matter loss."""
    hippocampus = [loss[i] for i in atlases.dk_indices(["hippocampus"])]
    cortex = [v for k, v in loss.items() if k not in atlases.dk_indices(["hippocampus"])]
    return {
        "hippocampus": float(np.mean(hippocampus) / HIPPOCAMPAL_LOSS_AT_1),
        "lateral-ventricle": float(np.mean(cortex) / CORTICAL_LOSS_AT_1),
    }


_LABELS_1MM: dict[str, np.ndarray] = {}


def labels_1mm(template: TemplateData) -> np.ndarray:
    """The 2 mm DK labels on the 1 mm head grid (nearest voxel; kept per process)."""
    if template.space not in _LABELS_1MM:
        to_2mm = np.linalg.inv(template.grid_2mm.affine) @ template.grid_1mm.affine
        if not np.allclose(to_2mm[:3, :3], np.diag(np.diag(to_2mm[:3, :3]))):
            raise ValueError("the 1 mm and 2 mm grids of the anatomy are not axis-aligned")
        index = [
            np.clip(
                np.rint(to_2mm[k, k] * np.arange(n) + to_2mm[k, 3]), 0, template.dk.shape[k] - 1
            )
            for k, n in enumerate(template.head_t1w.shape)
        ]
        _LABELS_1MM[template.space] = template.dk[np.ix_(*(i.astype(int) for i in index))]
    return _LABELS_1MM[template.space]


def _loss_lut(template: TemplateData, loss: dict[int, float]) -> np.ndarray:
    lut = np.zeros(int(template.dk.max()) + 1, np.float32)
    for index, value in loss.items():
        if index < lut.size:
            lut[index] = value
    return lut


def atrophied_fractions(template: TemplateData, loss: dict[int, float]) -> TissueFractions:
    """The anatomy's tissue mixing with each label's lost grey matter turned to CSF.

    The same loss map as :func:`atrophied_head` (smoothed by ``SMOOTH_MM``), on the 2 mm grid
    of the mixing, so T1w and PET agree on how much grey matter a voxel still holds.
    """
    if template.fractions is None:
        raise ValueError("the anatomy has no tissue mixing to atrophy")
    spacing = float(np.abs(template.grid_2mm.affine[0, 0]))
    lost = ndimage.gaussian_filter(_loss_lut(template, loss)[template.dk], SMOOTH_MM / spacing)
    lost = np.clip(lost.ravel()[template.fractions.zone], 0.0, 1.0)
    gm, wm, csf = template.fractions.fractions
    moved = gm * lost
    fractions = np.stack([gm - moved, wm, csf + moved]).astype(np.float32)
    return replace(template.fractions, fractions=fractions)


def atrophied_head(template: TemplateData, loss: dict[int, float]) -> np.ndarray:
    """The 1 mm head T1w with each label's grey matter darkened towards CSF by its loss."""
    lut = _loss_lut(template, loss)
    fraction = ndimage.gaussian_filter(lut[labels_1mm(template)], SMOOTH_MM)
    head = template.head_t1w
    grey = np.clip((WM_T1W - head) / (WM_T1W - GM_T1W), 0.0, 1.0)
    return (head - fraction * grey * np.maximum(head - CSF_T1W, 0.0)).astype(np.float32)
