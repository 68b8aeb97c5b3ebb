"""The template every simulated subject is made from, loaded once per process.

Subjects are warped copies of MNI152NLin6Asym: the 1 mm head T1w gives the MR contrast, the
2 mm Desikan-Killiany atlas gives the uptake labels, and the 2 mm atlases and reference
masks define the truth tables. Loading them costs about a second, so it happens once and
worker processes inherit the arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import nibabel as nib
import numpy as np
from scipy import ndimage

from taupet_bids import atlases, templates
from taupet_bids.core.grids import Grid
from taupet_bids.simulate.partial_volume import TissueFractions

#: Template T1w intensity above which a voxel is head (scalp, skull, brain), not air.
HEAD_THRESHOLD = 1000.0
#: Codes of :attr:`TemplateData.tissue`, the head layers of a realistic phantom anatomy.
OUTSIDE, SOFT_TISSUE, BONE, MENINGES, AIR, BRAIN = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True)
class TemplateData:
    """Template images used by the simulator (arrays, with their grids)."""

    head_t1w: np.ndarray
    grid_1mm: Grid
    grid_2mm: Grid
    dk: np.ndarray
    atlas_images: dict[str, np.ndarray]
    reference_masks: dict[str, np.ndarray]
    brain_mask: np.ndarray
    head_mask: np.ndarray
    #: Name of the space the arrays are in (the analysis template, or another anatomy).
    space: str = templates.TEMPLATE
    #: World position (mm) that centres the head in the scanner; None: the head mask's centre.
    centre: np.ndarray | None = None
    #: Head layers on the 2 mm grid (codes above); None: brain and head only.
    tissue: np.ndarray | None = None
    #: How grey, white matter and CSF mix in the scanner's view (None: labels are pure tissue).
    fractions: TissueFractions | None = None

    @property
    def head_centre(self) -> np.ndarray:
        """World coordinates (mm) of the head's centre (by default the head mask's centroid)."""
        if self.centre is not None:
            return self.centre
        centre = np.array(ndimage.center_of_mass(self.head_mask))
        return self.grid_2mm.affine[:3, :3] @ centre + self.grid_2mm.affine[:3, 3]


def _load(resolution: int, **entities: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Array and affine of one template file, through the offline TemplateFlow API."""
    image = nib.load(templates.get(resolution, extension=".nii.gz", **entities))
    return np.asarray(image.dataobj), image.affine


def _check_grid(affine: np.ndarray, grid: Grid, what: str) -> None:
    if not np.allclose(affine, grid.affine):
        raise RuntimeError(f"{what} is not on the template 2 mm grid")


@cache
def load_template() -> TemplateData:
    """Load (once) the template images from the offline TemplateFlow home."""
    templates.ensure_templateflow()
    head, affine_1mm = _load(1, desc=None, suffix="T1w")
    t1w_2mm, affine_2mm = _load(2, desc=None, suffix="T1w")
    grid_2mm = Grid(tuple(t1w_2mm.shape), affine_2mm)
    atlas_images = {}
    for name in atlases.ATLAS_NAMES:
        data, affine = _load(2, atlas=name, suffix="dseg")
        _check_grid(affine, grid_2mm, f"atlas {name}")
        atlas_images[name] = data.astype(np.int32)
    references = {}
    for label in atlases.reference_regions():
        data, affine = _load(2, label=label, suffix="mask")
        _check_grid(affine, grid_2mm, f"reference {label}")
        references[label] = data > 0
    brain, affine = _load(2, desc="brain", suffix="mask")
    _check_grid(affine, grid_2mm, "brain mask")
    head_mask = ndimage.binary_fill_holes(t1w_2mm > HEAD_THRESHOLD) | (brain > 0)
    return TemplateData(
        head_t1w=head.astype(np.float32),
        grid_1mm=Grid(tuple(head.shape), affine_1mm),
        grid_2mm=grid_2mm,
        dk=atlas_images["DK"],
        atlas_images=atlas_images,
        reference_masks=references,
        brain_mask=brain > 0,
        head_mask=head_mask,
    )
