"""Digital-phantom cohort simulator: ADNI-style BIDS tau PET datasets with known ground truth.

Layers, one job each: :mod:`population` (who) and :mod:`clinical` (MMSE, amyloid, genotype),
:mod:`anatomy` (subject-to-template warp) and :mod:`gm_atrophy` (grey-matter loss that follows
tau), :mod:`uptake` (Braak-staged SUVR map), :mod:`fdg` and :mod:`tspo` (FDG and TSPO uptake
coupled to tau), :mod:`modalities` (image generators), :mod:`writer`
(BIDS layout), :mod:`truth` (truth maps and tables, and reading them back), :mod:`cohort`
(running it all), :mod:`cli` (``taupet-bids-simulate``).
"""

from taupet_bids.simulate.cohort import CohortConfig, simulate_cohort
from taupet_bids.simulate.truth import find_truth, load_truth, read_truth_table, truth_value

__all__ = [
    "CohortConfig",
    "find_truth",
    "load_truth",
    "read_truth_table",
    "simulate_cohort",
    "truth_value",
]
