"""How much each simulated participant moves in the scanner: most little, a few a lot.

Every PET frame sees the head after a rigid random walk (``taupet.frame_motion``); this module
sets that walk's size per participant. One fixed size for everyone made half of all scans reach
the app's motion flag (``core.qc.MAX_FD_MM``, 5 mm), so the flag said nothing on a simulated
cohort. Real cohorts are skewed: in J-ADNI's multi-centre FDG study (Ikari et al., Ann Nucl Med
2012;26:535, 172 scans of six 5-min frames) moderate-to-severe or severe motion (their levels E
and F) was seen in 22 % of AD patients against 3 % of MCI and 4 % of normal subjects.

So the walk is scaled by a per-participant *restlessness*, lognormal, from the participant's own
random stream (so nothing else in a cohort changes), and doubled at visits labelled AD. The
constants are chosen, not fitted: with four 5-min frames they put the largest framewise
displacement at or above 5 mm in about 3 % of CN/MCI visits and about 20 % of AD visits (taking
the flag as J-ADNI's E/F), with a median of about 1.5 mm for CN/MCI (see
``benchmarks/simulator_motion.py``). J-ADNI's levels are not defined in mm, so that match is
in the shares only.
"""

from __future__ import annotations

import numpy as np

from taupet_bids.simulate.clinical import stream

#: Spawn-key suffix of the restlessness stream (16-21 are taken by other draws).
MOTION_STREAM = 22
#: Median restlessness (1 = the random walk of ``taupet.MOTION_*_SD``) and its lognormal SD.
MEDIAN_RESTLESSNESS = 0.3
RESTLESSNESS_LOG_SD = 0.6
#: Factor on restlessness at a visit whose clinical label is AD.
AD_FACTOR = 2.0


def restlessness(seed: np.random.SeedSequence, diagnosis: str) -> float:
    """Scale of one participant's frame-to-frame head motion at a visit with ``diagnosis``."""
    draw = stream(seed, MOTION_STREAM).normal()
    trait = float(np.exp(np.log(MEDIAN_RESTLESSNESS) + RESTLESSNESS_LOG_SD * draw))
    return trait * (AD_FACTOR if diagnosis == "AD" else 1.0)
