"""What the scanner sees of a tissue map: grey, white matter and CSF mixed as the T1w mixes them.

The uptake maps of the simulator are *tissue* maps: every voxel of a cortical label carries that
region's concentration, every unlabelled brain voxel the CSF level. The other anatomy's labels put
cortex where its grey-matter probability is at least 0.7, but its T1w (the template's own) shows
grey matter wherever that probability passes about 0.5, and a voxel with 0.6 grey matter is
painted as pure CSF. The T1w and the PET then disagree about the same voxel, and any method that
draws regions from the T1w (a partial-volume correction above all) is scored against a phantom no
real brain resembles: in a real 2 mm voxel the tracer signal is the tissue fractions' mixture, as
the T1w contrast is.

:func:`mix` makes that mixture: inside the brain's cortex, white matter and CSF (cerebral and
cerebellar), a voxel's value becomes ``gm * C + wm * W + csf * F``, where ``C``, ``W`` and ``F``
are the tissue map's values at the nearest cortical, white-matter and CSF voxel and the fractions
are the anatomy's probability maps on the 2 mm grid. Other labels (nuclei, ventricles, brainstem,
the head) are left as they are. The tissue map stays the *sharp* truth: what a region's tissue
carries, which a partial-volume correction is meant to recover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from taupet_bids.core.tissue_labels import grey_matter_indices, white_matter_indices


@dataclass(frozen=True)
class TissueFractions:
    """Where tissue mixes, how much of each tissue, and where each tissue's value is read.

    ``zone`` are flat indices of the mixed voxels; ``fractions`` (3, n) grey, white matter and
    CSF (summing to 1); ``sources`` (3, n) the flat index of the nearest voxel of each tissue.
    """

    zone: np.ndarray
    fractions: np.ndarray
    sources: np.ndarray


def _nearest(mask: np.ndarray) -> np.ndarray:
    """Flat index of the nearest voxel of ``mask``, for every voxel."""
    nearest = ndimage.distance_transform_edt(~mask, return_distances=False, return_indices=True)
    return np.ravel_multi_index(tuple(nearest), mask.shape)


def tissue_fractions(
    dk: np.ndarray, brain: np.ndarray, gm: np.ndarray, wm: np.ndarray
) -> TissueFractions:
    """The mixing of an anatomy from its labels and its grey/white-matter probability maps."""
    dk = np.asarray(dk)
    brain = np.asarray(brain, bool)
    grey = np.isin(dk, grey_matter_indices())
    white = np.isin(dk, white_matter_indices())
    csf = brain & (dk == 0)
    zone = np.flatnonzero(brain & (grey | white | csf))
    f_gm = np.clip(np.asarray(gm, np.float64).ravel()[zone], 0.0, 1.0)
    f_wm = np.clip(np.asarray(wm, np.float64).ravel()[zone], 0.0, 1.0 - f_gm)
    fractions = np.stack([f_gm, f_wm, 1.0 - f_gm - f_wm]).astype(np.float32)
    sources = np.stack([_nearest(mask).ravel()[zone] for mask in (grey, white, csf)])
    return TissueFractions(zone, fractions, sources)


def mix(tissue_map: np.ndarray, fractions: TissueFractions | None) -> np.ndarray:
    """The image a scanner sees of ``tissue_map`` (unchanged where ``fractions`` is None)."""
    if fractions is None:
        return tissue_map
    flat = np.asarray(tissue_map).ravel()
    out = flat.copy()
    values = flat[fractions.sources]  # (3, n): the three tissues' values near each voxel
    out[fractions.zone] = (fractions.fractions * values).sum(axis=0)
    return out.reshape(np.shape(tissue_map)).astype(tissue_map.dtype)
