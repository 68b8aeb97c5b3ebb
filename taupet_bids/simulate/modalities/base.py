"""The interface shared by modality generators."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import nibabel as nib
import numpy as np

from taupet_bids.simulate.anatomy import Anatomy
from taupet_bids.simulate.template import TemplateData
from taupet_bids.simulate.uptake import TauState, UptakeProfile


@dataclass(frozen=True)
class Visit:
    """What a generator needs to know about one visit of one subject."""

    subject: str
    session: str | None
    months: int
    tau: TauState
    profile: UptakeProfile
    template: TemplateData
    #: Scale of the frame-to-frame head motion (:mod:`head_motion`; 1 = ``taupet.MOTION_*_SD``).
    motion_scale: float = 1.0


@dataclass
class Scan:
    """One generated image: where it goes in BIDS, its data and sidecar, and its ground truth."""

    datatype: str
    suffix: str
    entities: dict[str, str]
    image: nib.Nifti1Image
    sidecar: dict[str, Any]
    truth: dict[str, Any] = field(default_factory=dict)


class Modality(Protocol):
    """A generator of one kind of image."""

    name: str

    def generate(self, anatomy: Anatomy, visit: Visit, rng: np.random.Generator) -> Scan:
        """Make the image of ``visit`` for this ``anatomy``."""
        ...


def nifti(data: np.ndarray, affine: np.ndarray, xyzt_units: tuple[str, str] = ("mm", "sec")):
    """A NIfTI image in scanner coordinates (qform and sform code 1)."""
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units(*xyzt_units)
    return image
