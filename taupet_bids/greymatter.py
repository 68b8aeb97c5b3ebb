"""The numbers of ``--regional-mask subject-gm``, in one place below every layer.

The core applies them (:mod:`taupet_bids.core.segmentation`, :mod:`taupet_bids.core.regions`,
:mod:`taupet_bids.core.suvr`) and the methods text (:mod:`taupet_bids.boilerplate`) states
them; the boilerplate may not import the core, so they live here, in the foundation.
"""

from __future__ import annotations

#: A voxel is the subject's grey (white) matter when its tissue probability is at least this:
#: the class Atropos finds most likely wherever one class passes it, and 0.5 keeps the voxels
#: that are mostly grey matter, whose PET signal is mostly cortical.
TISSUE_THRESHOLD = 0.5
#: Reference voxels this close (mm) to the brain mask's edge are left out: the transverse and
#: sigmoid sinuses run along the cerebellum's surface, and their blood signal spills inwards.
EDGE_MARGIN_MM = 4.0
#: Fewer voxels than this in the restricted reference: the template mask is used instead (a
#: mean over a few dozen voxels is noise, and a failed segmentation would otherwise go unseen).
MIN_REFERENCE_VOXELS = 100
#: Voxel size (mm) the segmentation runs at; a finer T1w is resampled to it first. The
#: probabilities are only used on the 2 mm template grid, so a finer segmentation would cost
#: time without changing a regional mean.
SEGMENTATION_MM = 2.0
#: Atropos EM iterations: the k-means start is already close on an N4-corrected T1w, and 3
#: iterations keep the node at a few seconds on two cores.
ITERATIONS = 3
