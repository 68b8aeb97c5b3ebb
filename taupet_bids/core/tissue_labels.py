"""DK labels redrawn by a brain's own grey and white matter.

A label image carried onto a brain by registration puts cortex where the template had it; on a
brain whose cortex sits elsewhere, part of each cortical label covers white matter or CSF and
part of the brain's cortex carries no cortical label. Redrawing fixes both: wherever the brain has
grey matter the nearest carried-over cortical or cerebellar cortex label names it, wherever it has
white matter the nearest white-matter label does. Labels of other tissues (subcortical nuclei,
ventricles, brainstem) stay as carried over.

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


def grey_matter_indices() -> list[int]:
    """DK labels of the grey matter that follows a brain's tissue: cortical, cerebellar cortex."""
    return _indices("cortex") + atlases.dk_indices(["cerebellum-cortex"])


def white_matter_indices() -> list[int]:
    """DK labels of cerebral and cerebellar white matter."""
    return atlases.dk_indices(["cerebral-white-matter", "cerebellum-white-matter"])


def redraw_labels(
    dk: np.ndarray, is_gm: np.ndarray, is_wm: np.ndarray, brain: np.ndarray
) -> np.ndarray:
    """DK labels made to follow grey (``is_gm``) and white matter (``is_wm``) inside ``brain``.

    Within ``brain``, voxels that are cortex (cerebral or cerebellar), white matter (cerebral or
    cerebellar) or unlabelled are redrawn: grey matter takes the nearest cortical or cerebellar
    cortex label, white matter the nearest cerebral or cerebellar white-matter label, anything
    else (CSF) becomes 0. Cerebrum and cerebellum compete for a voxel by distance only: grey
    matter just outside the carried-over cerebellum is cerebellar cortex, not the fusiform or
    lingual cortex above the tentorium. ``is_gm`` wins where both are set.
    """
    dk = np.asarray(dk).astype(np.int32)
    is_gm = np.asarray(is_gm, dtype=bool)
    is_wm = np.asarray(is_wm, dtype=bool) & ~is_gm
    brain = np.asarray(brain, dtype=bool)
    grey = np.isin(dk, grey_matter_indices())
    white = np.isin(dk, white_matter_indices())
    cerebellum = np.isin(dk, atlases.dk_indices(["cerebellum-cortex", "cerebellum-white-matter"]))
    out = dk.copy()
    zone = (brain & (grey | white | (dk == 0))) | cerebellum  # (as before: all the cerebellum)
    out[zone] = 0
    if grey.any():
        out[zone & is_gm] = nearest_label(dk, grey)[zone & is_gm]
    if white.any():
        out[zone & is_wm] = nearest_label(dk, white)[zone & is_wm]
    return out
