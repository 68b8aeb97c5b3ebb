"""Modality generators: each turns a subject's anatomy and visit into one BIDS image.

A generator is a small class with a ``name`` and ``generate(anatomy, visit, rng) -> Scan``.
New modalities (FDG, CT, TSPO) add a module here; the cohort runner and BIDS writer need no
change beyond listing them.
"""

from taupet_bids.simulate.modalities.base import Modality, Scan, Visit
from taupet_bids.simulate.modalities.t1w import T1w
from taupet_bids.simulate.modalities.taupet import TauPET

__all__ = ["Modality", "Scan", "T1w", "TauPET", "Visit"]
