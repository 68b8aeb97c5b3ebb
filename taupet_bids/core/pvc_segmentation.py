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
    HEAD_REST_LABEL,
    OUTSIDE_LABEL,
    REFERENCE_LABEL,
)

#: DK tissue classes that Müller-Gärtner treats as grey matter.
GM_TISSUES = ("cortex", "subcortical", "cerebellar_cortex")
#: Head = template T1w above this fraction of its 99.9th percentile (holes filled).
HEAD_FRACTION = 0.1


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
) -> np.ndarray:
    """The PVC label image: every DK label, then the rest of the brain mask, head and air.

    DK labels win where they reach outside the brain mask; brain-mask voxels without a DK
    label (sulcal CSF, meninges) become ``BRAIN_REST_LABEL``; the rest of the head (scalp,
    skull) ``HEAD_REST_LABEL``; everything else stays 0 (air). No voxel is left out, which
    GTM needs to be well-posed. With a ``reference`` mask, its voxels become
    ``REFERENCE_LABEL`` (over any DK label), so the reference gets its own corrected value.
    """
    dk = np.rint(dk).astype(np.int32)
    out = np.zeros(dk.shape, np.int32)
    out[np.asarray(head) > 0] = HEAD_REST_LABEL
    out[np.asarray(brain_mask) > 0] = BRAIN_REST_LABEL
    out[dk > 0] = dk[dk > 0]
    if reference is not None:
        out[np.asarray(reference) > 0] = REFERENCE_LABEL
    return out


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
