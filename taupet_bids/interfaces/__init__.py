"""Nipype interfaces of the participant pipeline: one small class per operation.

Each interface loads its inputs, calls one plain function of :mod:`taupet_bids.core` (or
:mod:`taupet_bids.normalisation`; tested without Nipype) and writes its outputs into the node's
working directory. Names resolve lazily so that importing one light submodule does
not pay for importing antspyx.
"""

from importlib import import_module

_WHERE = {
    "SelectFrames": "frames",
    "TimeWeightedAverage": "frames",
    "MotionCorrect": "motion",
    "N4BiasCorrect": "registration",
    "RegisterImages": "registration",
    "ApplyTransforms": "registration",
    "TemplateBrainMask": "registration",
    "ComputeSUVR": "quantification",
    "RegionalStatistics": "quantification",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
