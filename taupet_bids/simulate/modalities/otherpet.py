"""FDG and [11C]PBR28 PET: the tau PET chain (head, PSF, motion, noise) with their own uptake.

Each generator holds the subject's stable traits (:mod:`taupet_bids.simulate.fdg`,
:mod:`taupet_bids.simulate.tspo`) and is fed its own random stream by the cohort runner, so
adding these scans never changes a tau PET or T1w.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from taupet_bids.simulate import fdg, tspo
from taupet_bids.simulate.fdg import FdgProfile
from taupet_bids.simulate.label_maps import normalise
from taupet_bids.simulate.modalities.base import Visit
from taupet_bids.simulate.modalities.taupet import SCANNERS, Scanner, TauPET, TracerSpec
from taupet_bids.simulate.tspo import TspoProfile

#: FDG: 185-250 MBq, static 30-60 min p.i. (EANM guideline, Guedj et al. 2022), six 5-min
#: frames or one 30-min frame; more counts than a late tau frame, so less noise.
FDG = TracerSpec(
    "FDG", "F18", 181.16, (185.0, 250.0), (1.4, 2.0), 1800.0, 300.0, 1800.0, (0.1, 1.0), 0.7
)
#: [11C]PBR28: 370-740 MBq, 60-90 min p.i. (SUV window of Lyoo et al. 2015); carbon-11 decays
#: fast, so late frames are noisy.
PBR28 = TracerSpec(
    "PBR28", "C11", 348.4, (370.0, 740.0), (0.7, 1.1), 3600.0, 300.0, 1800.0, (1.0, 5.0), 1.6
)
#: Frames of a dynamic FDG or PBR28 image (the window in 5-min frames).
WINDOW_FRAMES = 6
FDG_LABEL = "18FFDG"
TSPO_LABEL = "11CPBR28"


def _frames(n_frames: int) -> int:
    return 1 if n_frames == 1 else WINDOW_FRAMES


def _rounded(values: dict[int, float]) -> dict[str, float]:
    return {str(k): round(v, 6) for k, v in values.items()}


class FdgPET(TauPET):
    """FDG PET (``trc-18FFDG``) whose uptake follows tau and amyloid (see :mod:`fdg`)."""

    name = "fdg"

    def __init__(
        self,
        profile: FdgProfile,
        n_frames: int = 4,
        rec: str | None = None,
        scanners: tuple[Scanner, ...] = SCANNERS,
    ):
        super().__init__(FDG_LABEL, rec, _frames(n_frames), scanners, FDG)
        self.profile = profile

    def uptake(
        self, visit: Visit, rng: np.random.Generator
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        """FDG SUVR map (pons = 1) and its truth parameters."""
        suvr = fdg.suvr_map(self.profile, visit.profile, visit.tau, visit.template)
        change = fdg.relative_change(self.profile, visit.profile, visit.tau)
        extra = {
            "reference_region": fdg.REFERENCE,
            "description": "Noise-free, unblurred FDG SUVR map the PET was simulated from "
            "(reference Pons = 1).",
            "label_values": fdg.label_values(self.profile, visit.profile, visit.tau),
            "parameters": {
                "amyloid_positive": self.profile.amyloid_positive,
                "mismatch": self.profile.mismatch,
                "relative_change": _rounded(change),
            },
        }
        return suvr, 1.0, extra


class TspoPET(TauPET):
    """[11C]PBR28-like TSPO PET (``trc-11CPBR28``; see :mod:`tspo`)."""

    name = "tspo"

    def __init__(
        self,
        profile: TspoProfile,
        n_frames: int = 4,
        rec: str | None = None,
        scanners: tuple[Scanner, ...] = SCANNERS,
    ):
        super().__init__(TSPO_LABEL, rec, _frames(n_frames), scanners, PBR28)
        self.profile = profile

    def uptake(
        self, visit: Visit, rng: np.random.Generator
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        """TSPO SUVR map (whole cerebellum = 1); the absolute level carries genotype and scan."""
        scan = tspo.scan_variation(rng)
        absolute = tspo.absolute_map(self.profile, visit.profile, visit.tau, visit.template, scan)
        reference = visit.template.reference_masks[tspo.REFERENCE]
        level = float(absolute[reference].mean())
        extra = {
            "reference_region": tspo.REFERENCE,
            "description": "Noise-free, unblurred TSPO SUVR map the PET was simulated from "
            "(reference WholeCereb = 1); the image's absolute level is the reference's level in "
            "HAB-cerebellum units (reference_level) times the drawn reference SUV.",
            "label_values": tspo.label_values(self.profile, visit.profile, visit.tau, scan),
            "parameters": {
                "tspo_genotype": self.profile.genotype,
                "specific_binding": round(self.profile.specific, 6),
                "amyloid_positive": self.profile.amyloid_positive,
                "scan_global_factor": round(scan.global_factor, 6),
                "reference_level": round(level, 6),
            },
        }
        return normalise(absolute, visit.template, tspo.REFERENCE), level, extra
