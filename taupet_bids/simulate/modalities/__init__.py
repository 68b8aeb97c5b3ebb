"""Modality generators: each turns a subject's anatomy and visit into one BIDS image.

A generator is a small class with a ``name`` and ``generate(anatomy, visit, rng) -> Scan``.
FDG and TSPO PET (:mod:`otherpet`) reuse the tau PET chain with their own uptake; the cohort
runner gives each new modality its own random stream.
"""

from taupet_bids.simulate.modalities.base import Modality, Scan, Visit
from taupet_bids.simulate.modalities.otherpet import FdgPET, TspoPET
from taupet_bids.simulate.modalities.t1w import T1w
from taupet_bids.simulate.modalities.taupet import TauPET

__all__ = ["FdgPET", "Modality", "Scan", "T1w", "TauPET", "TspoPET", "Visit"]
