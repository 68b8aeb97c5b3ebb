"""Tissue classes of the subject's own T1w (Atropos), for regional means over the subject's grey
matter instead of the template's labels (``--regional-mask subject-gm``).

Template labels put cortex where the template has it; on a subject whose cortex sits elsewhere,
part of each cortical label covers white matter or CSF, and tau tracers' white-matter binding
pulls cortical means up. A three-class Atropos segmentation (Avants et al. 2011,
Neuroinformatics 9:381-400) of the N4-corrected, brain-masked T1w gives the subject's grey
and white matter as probabilities. It is a k-means start followed by a few EM iterations with
a light Markov random field updated synchronously, at about 2 mm (settings in
:mod:`taupet_bids.greymatter`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import ants
import numpy as np

from taupet_bids.core import tissue_fractions as fractions
from taupet_bids.greymatter import ITERATIONS, SEGMENTATION_MM

#: Classes in order of T1w intensity (k-means initialisation sorts them so): CSF, GM, WM.
CLASSES = ("CSF", "GM", "WM")
#: Markov random field smoothing (weight, radius in voxels), Atropos's usual light setting.
MRF = "[0.1,1x1x1]"
#: Atropos's ICM option (``--icm``): "0" updates every voxel's label at once (synchronous).
#: Atropos's default, asynchronous updating, gave different probabilities on repeated runs of
#: the same image (up to 0.07 GM probability, in one process and with one thread), so the same
#: data gave regional SUVRs that differed in the 4th-6th digit and region sizes off by a voxel.
#: Synchronous updating repeats exactly at any thread count (tests/test_regional_mask.py).
ICM = "0"


def _coarse(image: ants.ANTsImage, mask: ants.ANTsImage, mm: float):
    """The image and mask resampled to ``mm`` voxels (never upsampled)."""
    spacing = tuple(max(float(s), mm) for s in image.spacing)
    if np.allclose(spacing, image.spacing):
        return image, mask
    image = ants.resample_image(image, spacing, use_voxels=False, interp_type=0)
    mask = ants.resample_image_to_target(mask, image, interp_type="nearestNeighbor")
    return image, mask


@contextmanager
def private_tempdir() -> Iterator[str]:
    """Point Python's temporary folder at a folder of our own for the block, then delete it.

    ``ants.atropos`` writes its probability images to ``mktemp`` names in the temporary folder
    and never removes them (about 1 MB per class and scan: a cohort filled /tmp with them).
    """
    previous = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="taupet-atropos-") as work:
        tempfile.tempdir = work
        try:
            yield work
        finally:
            tempfile.tempdir = previous


def _coarse_brain(t1w: ants.ANTsImage, mask: ants.ANTsImage, mm: float):
    """The T1w and its binary brain mask on the segmentation grid; refuses a tiny mask."""
    image, brain = _coarse(t1w, mask.astype("float32"), mm)
    brain = ants.threshold_image(brain, 0.5, 1e9, 1, 0)
    if int(brain.numpy().sum()) < 3 * len(CLASSES):
        raise ValueError("the brain mask has too few voxels to segment")
    return image, brain


def _posteriors(image: ants.ANTsImage, brain: ants.ANTsImage, iterations: int) -> list:
    """Atropos's (CSF, GM, WM) posterior probabilities, each times the brain mask."""
    with private_tempdir():
        result = ants.atropos(
            a=image,
            x=brain,
            i=f"Kmeans[{len(CLASSES)}]",
            m=MRF,
            c=f"[{int(iterations)},0]",
            g=ICM,
            verbose=0,
        )
    return [p * brain for p in result["probabilityimages"]]


def segment_tissues(
    t1w: ants.ANTsImage,
    mask: ants.ANTsImage,
    mm: float = SEGMENTATION_MM,
    iterations: int = ITERATIONS,
) -> tuple[ants.ANTsImage, ants.ANTsImage, ants.ANTsImage]:
    """(GM probability, WM probability, brain mask) of a brain-masked T1w, on the coarse grid.

    ``t1w`` should be N4-corrected: Atropos assumes each class has one intensity across the
    image. Probabilities are 0 outside the mask. The brain mask comes back on the same grid so
    that all three can be warped to the template together.
    """
    image, brain = _coarse_brain(t1w, mask, mm)
    probabilities = _posteriors(image, brain, iterations)
    return probabilities[CLASSES.index("GM")], probabilities[CLASSES.index("WM")], brain


@dataclass(frozen=True)
class TissueMaps:
    """A T1w's tissue maps on the segmentation grid: Atropos's GM and WM posteriors, the GM and
    WM fractions of the mixel model they start (and the fitted model), and the brain mask (0
    outside it)."""

    gm: ants.ANTsImage
    wm: ants.ANTsImage
    gm_fraction: ants.ANTsImage
    wm_fraction: ants.ANTsImage
    brain: ants.ANTsImage
    model: fractions.MixelModel


def segment_tissue_maps(
    t1w: ants.ANTsImage,
    mask: ants.ANTsImage,
    mm: float = SEGMENTATION_MM,
    iterations: int = ITERATIONS,
) -> TissueMaps:
    """Posteriors and fractions of a brain-masked T1w from one Atropos run, on the coarse grid.

    The posteriors say which class a voxel more likely is (regional masks, hard labels); the
    fractions, from the mixel model fitted to the brain's intensity histogram
    (:mod:`taupet_bids.core.tissue_fractions`), say how much of each tissue it holds, which is
    what its PET signal mixes (soft partial-volume regions).
    """
    image, brain = _coarse_brain(t1w, mask, mm)
    posteriors = _posteriors(image, brain, iterations)
    grey, white, model = fractions.tissue_fractions(
        image.numpy(), brain.numpy(), [p.numpy() for p in posteriors]
    )
    return TissueMaps(
        gm=posteriors[CLASSES.index("GM")],
        wm=posteriors[CLASSES.index("WM")],
        gm_fraction=image.new_image_like(grey),
        wm_fraction=image.new_image_like(white),
        brain=brain,
        model=model,
    )
