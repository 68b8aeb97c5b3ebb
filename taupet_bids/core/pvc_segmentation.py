"""The label image partial-volume correction needs, and its table of names and tissues.

GTM is only well-posed when every voxel that carries signal belongs to some region, so the DK
atlas is completed with the rest of the brain mask, the rest of the head and air; the SUVR
reference region can be a region of its own, so that its corrected value is solved for. The
table's ``tissue`` column says which labels Müller-Gärtner treats as grey matter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from taupet_bids import atlases
from taupet_bids.core.pvc import (
    BRAIN_REST_LABEL,
    EXTRACEREBRAL_INNER_LABEL,
    EXTRACEREBRAL_MIDDLE_LABEL,
    HEAD_REST_LABEL,
    NO_DATA_LABEL,
    OUTSIDE_LABEL,
    REFERENCE_LABEL,
    TissueMixing,
)
from taupet_bids.core.tissue_labels import (
    grey_matter_indices,
    nearest_label,
    redraw_labels,
    white_matter_indices,
)
from taupet_bids.greymatter import TISSUE_THRESHOLD

#: DK tissue classes that Müller-Gärtner treats as grey matter.
GM_TISSUES = ("cortex", "subcortical", "cerebellar_cortex")
#: Head = template T1w above this fraction of its 99.9th percentile (holes filled).
HEAD_FRACTION = 0.1
#: Outer edges (mm from the brain) of the two extracerebral shells: meninges, sinuses and inner
#: skull; then the skull. Chosen on the phantom benchmark's tuning subjects (docs/pvc.md).
SHELL_EDGES_MM = (4.0, 10.0)


def head_mask(t1w: np.ndarray, brain_mask: np.ndarray) -> np.ndarray:
    """Head (scalp, skull and brain) from a template T1w: a threshold, holes filled."""
    t1w = np.asarray(t1w, dtype=np.float64)
    threshold = HEAD_FRACTION * np.percentile(t1w[np.isfinite(t1w)], 99.9)
    return ndimage.binary_fill_holes(t1w > threshold) | (np.asarray(brain_mask) > 0)


def pvc_segmentation(
    dk: np.ndarray,
    brain_mask: np.ndarray,
    head: np.ndarray,
    reference: np.ndarray | None = None,
    zooms: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """The PVC label image: every DK label, then the rest of the brain mask, head and air.

    DK labels win where they reach outside the brain mask; brain-mask voxels without a DK
    label (sulcal CSF) become ``BRAIN_REST_LABEL``; the rest of the head (scalp, skull)
    ``HEAD_REST_LABEL``; everything else stays 0 (air). No voxel is left out, which GTM needs
    to be well-posed. With a ``reference`` mask, its voxels become ``REFERENCE_LABEL`` (over any
    DK label), so the reference gets its own corrected value. With the grid's ``zooms`` (mm),
    the head is split into shells by distance from the brain (:data:`SHELL_EDGES_MM`): tau
    tracers bind in meninges, sinuses and bone at levels of their own, and one head region
    would average them with scalp and face, so their spill into cortex would be mis-modelled.
    """
    dk = np.rint(dk).astype(np.int32)
    out = np.zeros(dk.shape, np.int32)
    head = np.asarray(head) > 0
    out[head] = HEAD_REST_LABEL
    out[np.asarray(brain_mask) > 0] = BRAIN_REST_LABEL
    out[dk > 0] = dk[dk > 0]
    if zooms is not None:
        cerebral = (out > 0) & (out != HEAD_REST_LABEL)
        if cerebral.any():
            distance = ndimage.distance_transform_edt(~cerebral, sampling=zooms[:3])
            rest = out == HEAD_REST_LABEL
            inner, middle = SHELL_EDGES_MM
            out[rest & (distance <= middle)] = EXTRACEREBRAL_MIDDLE_LABEL
            out[rest & (distance <= inner)] = EXTRACEREBRAL_INNER_LABEL
    if reference is not None:
        out[np.asarray(reference) > 0] = REFERENCE_LABEL
    return out


def mark_missing_data(seg: np.ndarray, image: np.ndarray) -> np.ndarray:
    """The label image with every labelled voxel that has no PET data set to ``NO_DATA_LABEL``.

    After resampling to the template, voxels beyond the PET's field of view are exactly 0; a
    field of view that cuts the cerebellum or the vertex would otherwise count them as measured
    zeros of the regions they fall in. Air (label 0) stays air. Non-finite voxels count as
    missing too (the caller replaces them by 0).
    """
    seg = np.rint(seg).astype(np.int32)
    image = np.asarray(image)
    missing = (~np.isfinite(image) | (image == 0)) & (seg != 0)
    out = seg.copy()
    out[missing] = NO_DATA_LABEL
    return out


def subject_labels(
    dk: np.ndarray,
    brain_mask: np.ndarray,
    gm: np.ndarray,
    wm: np.ndarray,
    subject_brain: np.ndarray,
    threshold: float = TISSUE_THRESHOLD,
) -> np.ndarray:
    """Template DK labels redrawn by the subject's grey and white matter (template grid).

    GTM assumes each region is uniform and sits where its label says; a cortical label that
    covers the subject's white matter or CSF makes it solve for the wrong mixture. Here cortex is
    wherever the subject's grey matter probability is at least ``threshold`` (named by the nearest
    template cortical label), cerebral white matter wherever its white matter is, and CSF inside
    the brain becomes unlabelled (``BRAIN_REST_LABEL`` in :func:`pvc_segmentation`); template
    cortex beyond both brain masks is no cortex of this subject and is dropped.
    """
    zone = (np.asarray(brain_mask) > 0) | (np.asarray(subject_brain) > 0) | (np.asarray(dk) > 0)
    is_gm = np.asarray(gm) >= threshold
    return redraw_labels(dk, is_gm, np.asarray(wm) >= threshold, zone)


#: Tissue classes (the label table's ``tissue``) whose labels share voxels with white matter
#: and CSF in :func:`tissue_mixing`; nuclei (``subcortical``) stay hard.
MIXED_GREY_TISSUES = ("cortex", "cerebellar_cortex")


def mixing_grey_labels(table: pd.DataFrame) -> list[int]:
    """Labels of a label table that take grey matter in :func:`tissue_mixing` ([]: no tissue)."""
    if "tissue" not in table.columns:
        return []
    return table.loc[table.tissue.isin(MIXED_GREY_TISSUES), "index"].astype(int).tolist()


def tissue_mixing(
    seg: np.ndarray,
    gm: np.ndarray,
    wm: np.ndarray,
    grey_labels: list[int] | None = None,
) -> TissueMixing:
    """Soft GTM regions: brain voxels split between grey matter, white matter and CSF.

    A hard label image drawn from the T1w calls a 2 mm voxel cortex when it is mostly grey
    matter, yet its tracer signal is the mixture of everything in it, so a GTM on hard labels
    reads a cortex diluted by the CSF and white matter its labels include (and misses the grey
    matter in voxels labelled otherwise). Here every voxel labelled cortex, cerebral or
    cerebellar white matter or unlabelled brain (CSF) is shared between the nearest grey-matter
    label (cortical or cerebellar), the nearest white-matter label and ``BRAIN_REST_LABEL`` by
    its grey and white fractions ``gm``, ``wm`` (the subject's tissue probabilities on the
    same grid; CSF is the rest). ``grey_labels`` are the labels that take grey matter (default:
    every cortical and cerebellar cortex label; :func:`mixing_grey_labels` adds a grey SUVR
    reference, whose voxels then mix too and whose value is that of its grey matter). Every
    other voxel (nuclei, ventricles, head shells, missing data) keeps its label with weight 1.
    """
    seg = np.rint(seg).astype(np.int64)
    if grey_labels is None:
        grey_labels = grey_matter_indices()
    grey = np.isin(seg, np.asarray(list(grey_labels), dtype=np.int64))
    white = np.isin(seg, white_matter_indices())
    zone = grey | white | (seg == BRAIN_REST_LABEL)
    labels = np.stack([seg, seg, seg])
    weights = np.zeros(labels.shape, np.float32)
    weights[0] = 1.0
    if not (grey.any() and white.any()):
        return TissueMixing(labels, weights)
    f_gm = np.clip(np.nan_to_num(np.asarray(gm, np.float64)), 0.0, 1.0)
    f_wm = np.clip(np.nan_to_num(np.asarray(wm, np.float64)), 0.0, 1.0 - f_gm)
    labels[0][zone] = nearest_label(seg, grey)[zone]
    labels[1][zone] = nearest_label(seg, white)[zone]
    labels[2][zone] = BRAIN_REST_LABEL
    weights[0][zone] = f_gm[zone]
    weights[1][zone] = f_wm[zone]
    weights[2][zone] = (1.0 - f_gm - f_wm)[zone]
    return TissueMixing(labels, weights)


def uncovered_voxels(seg: np.ndarray, mask: np.ndarray, unlabelled: int = 0) -> int:
    """Voxels of ``mask`` whose label is ``unlabelled`` (0 when the segmentation covers it)."""
    return int(np.count_nonzero((np.asarray(mask) > 0) & (np.rint(seg) == unlabelled)))


def reference_tissue(reference_region: str) -> str:
    """The tissue class of a reference region: that of its DK regions when they share one.

    A grey reference (inferior or whole cerebellar grey) is grey matter for Müller-Gärtner;
    the whole cerebellum mixes grey and white and is treated as neither ("other").
    """
    regions = set(atlases.reference_regions()[reference_region]["dk_regions"])
    tissues = {lab.tissue for lab in atlases.dk_labels() if lab.region in regions}
    return tissues.pop() if len(tissues) == 1 else "other"


def segmentation_table(reference_region: str | None = None) -> pd.DataFrame:
    """index, name, tissue of every label :func:`pvc_segmentation` can write."""
    rows = [{"index": 0, "name": "background", "tissue": "background"}]
    rows += [
        {"index": lab.index, "name": lab.name, "tissue": lab.tissue} for lab in atlases.dk_labels()
    ]
    rows += [
        {"index": BRAIN_REST_LABEL, "name": "brain-unlabelled", "tissue": "other"},
        {"index": HEAD_REST_LABEL, "name": "extracerebral", "tissue": "extracerebral"},
        {"index": OUTSIDE_LABEL, "name": "outside-template", "tissue": "extracerebral"},
        {
            "index": EXTRACEREBRAL_INNER_LABEL,
            "name": "extracerebral-inner",
            "tissue": "extracerebral",
        },
        {
            "index": EXTRACEREBRAL_MIDDLE_LABEL,
            "name": "extracerebral-middle",
            "tissue": "extracerebral",
        },
        {"index": NO_DATA_LABEL, "name": "no-pet-data", "tissue": "background"},
    ]
    if reference_region:
        rows.append(
            {
                "index": REFERENCE_LABEL,
                "name": f"reference-{reference_region}",
                "tissue": reference_tissue(reference_region),
            }
        )
    return pd.DataFrame(rows)


def grey_matter_labels(table: pd.DataFrame) -> list[int]:
    """Labels of a label table whose ``tissue`` is one of :data:`GM_TISSUES`."""
    return table.loc[table.tissue.isin(GM_TISSUES), "index"].astype(int).tolist()
