"""DK labels redrawn by a brain's own grey and white matter.

A label image carried onto a brain by registration puts cortex where the template had it; on a
brain whose cortex sits elsewhere, part of each cortical label covers white matter or CSF and
part of the brain's cortex carries no cortical label. Redrawing fixes both: wherever the brain has
grey matter the nearest carried-over cortical label names it, wherever it has white matter the
nearest cerebral white-matter label does, and the cerebellum is split by the same rule. Labels of
other tissues (subcortical nuclei, ventricles, brainstem) stay as carried over.

The simulator uses it to label its other anatomy by that anatomy's tissue maps; the partial-volume
correction uses it to draw its label image by the subject's segmented T1w.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from taupet_bids import atlases


def nearest_label(labels: np.ndarray, source: np.ndarray) -> np.ndarray:
    """For every voxel, the label of the nearest voxel in ``source`` (a boolean mask)."""
    indices = ndimage.distance_transform_edt(~source, return_distances=False, return_indices=True)
    return labels[tuple(indices)]


def _indices(tissue: str) -> list[int]:
    return [label.index for label in atlases.dk_labels() if label.tissue == tissue]


def redraw_labels(
    dk: np.ndarray, is_gm: np.ndarray, is_wm: np.ndarray, brain: np.ndarray
) -> np.ndarray:
    """DK labels made to follow grey (``is_gm``) and white matter (``is_wm``) inside ``brain``.

    Within ``brain``, voxels that are cortex, cerebral white matter or unlabelled are redrawn:
    grey matter takes the nearest cortical label, white matter the nearest cerebral white-matter
    label, anything else (CSF) becomes 0. Cerebellar voxels become the nearest cerebellar cortex
    or cerebellar white-matter label by the same rule, or 0. ``is_gm`` wins where both are set.
    """
    dk = np.asarray(dk).astype(np.int32)
    is_gm = np.asarray(is_gm, dtype=bool)
    is_wm = np.asarray(is_wm, dtype=bool) & ~is_gm
    brain = np.asarray(brain, dtype=bool)
    cortex = np.isin(dk, _indices("cortex"))
    cerebral_wm = np.isin(dk, atlases.dk_indices(["cerebral-white-matter"]))
    cb_cortex = np.isin(dk, atlases.dk_indices(["cerebellum-cortex"]))
    cb_wm = np.isin(dk, atlases.dk_indices(["cerebellum-white-matter"]))
    out = dk.copy()
    zone = brain & (cortex | cerebral_wm | (dk == 0))
    out[zone] = 0
    if cortex.any():
        out[zone & is_gm] = nearest_label(dk, cortex)[zone & is_gm]
    if cerebral_wm.any():
        out[zone & is_wm] = nearest_label(dk, cerebral_wm)[zone & is_wm]
    cerebellum = cb_cortex | cb_wm
    out[cerebellum] = 0
    if cb_cortex.any():
        out[cerebellum & is_gm] = nearest_label(dk, cb_cortex)[cerebellum & is_gm]
    if cb_wm.any():
        out[cerebellum & is_wm] = nearest_label(dk, cb_wm)[cerebellum & is_wm]
    return out
