"""The mu-map a scanner assumes for attenuation correction: from the CT, or from MR.

PET-CT converts the CT (:mod:`hounsfield`); a PET-MR system has no CT and must guess bone:

- ``dixon``: a fat-water MR segmentation with no bone class (the first PET-MR default); bone and
  internal air are soft tissue, 0.096 /cm (Dickson et al. report ~20 % cortical under-reading);
- ``atlas``: a bone template registered to the subject's MR: a population-typical bone value in
  a bone mask that misses the subject's skull by a 2-4 mm registration error;
- ``ute``: ultrashort-echo-time MR sees bone, but its bone value is too low (mu x ~0.7, never
  below soft tissue: what UTE calls bone is not given less than what it calls soft tissue).

Everything that is not bone or internal air (soft tissue, brain, CSF, the body outline) is taken
from the CT, so the maps differ only where the MR methods are known to go wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from taupet_bids.simulate.attenuation.ct import BONE_HU_RANGE
from taupet_bids.simulate.attenuation.hounsfield import mu_511
from taupet_bids.simulate.template import AIR, BONE, OUTSIDE

#: Methods of attenuation correction; ``ct`` is PET-CT, the others are PET-MR.
METHODS = ("ct", "dixon", "atlas", "ute")
MR_METHODS = METHODS[1:]
#: mu (/cm) MR-based maps give soft tissue (water at 511 keV).
SOFT_TISSUE_MU = 0.096
#: Atlas method: size of the bone mask's misregistration (mm), in a random direction.
ATLAS_SHIFT_MM = (2.0, 4.0)
#: Atlas method: its bone value is the population's typical skull, not the subject's.
ATLAS_BONE_MU = float(mu_511(sum(BONE_HU_RANGE) / 2))
#: UTE method: bone mu as a fraction of the true one.
UTE_BONE_SCALE = (0.65, 0.75)

#: The ``AttenuationCorrection`` text of a PET sidecar, per method.
SIDECAR_TEXT = {
    "ct": "CT-based",
    "dixon": "MR-based, Dixon (fat-water segmentation, no bone)",
    "atlas": "MR-based, atlas (registered bone template)",
    "ute": "MR-based, UTE (ultrashort echo time bone segmentation)",
}


@dataclass(frozen=True)
class MuMapSpec:
    """How one mu-map is made: its method and the method's random parameters."""

    method: str
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    bone_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"mu-map method must be one of {METHODS}, not {self.method!r}")

    def to_json(self) -> dict:
        """Parameters for a truth sidecar."""
        out: dict = {"method": self.method}
        if self.method == "atlas":
            out["bone_shift_mm"] = [round(v, 4) for v in self.shift_mm]
            out["bone_mu_per_cm"] = round(ATLAS_BONE_MU, 5)
        if self.method == "ute":
            out["bone_mu_scale"] = round(self.bone_scale, 4)
        return out


def random_spec(rng: np.random.Generator, method: str) -> MuMapSpec:
    """Draw the parameters of ``method`` (a shift for ``atlas``, a bone scale for ``ute``)."""
    if method == "atlas":
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        shift = direction * rng.uniform(*ATLAS_SHIFT_MM)
        return MuMapSpec(method, shift_mm=tuple(float(v) for v in shift))
    if method == "ute":
        return MuMapSpec(method, bone_scale=float(rng.uniform(*UTE_BONE_SCALE)))
    return MuMapSpec(method)


def mu_map(spec: MuMapSpec, layers: np.ndarray, ct_mu: np.ndarray, voxel_mm: float) -> np.ndarray:
    """The mu-map (/cm) ``spec`` assumes for a head of ``layers`` whose true map is ``ct_mu``."""
    if spec.method == "ct":
        return ct_mu.astype(np.float32, copy=True)
    bone = layers == BONE
    head = layers != OUTSIDE
    soft = np.float32(SOFT_TISSUE_MU)
    if spec.method == "ute":
        low = np.maximum(ct_mu * np.float32(spec.bone_scale), soft)
        return np.where(bone, low, ct_mu).astype(np.float32)
    if spec.method == "dixon":
        return np.where(bone | (layers == AIR), soft, ct_mu).astype(np.float32)
    # the bone template lands shifted along the grid's axes by the registration error
    fraction = ndimage.shift(
        bone.astype(np.float32), np.asarray(spec.shift_mm) / voxel_mm, order=1, mode="constant"
    )
    fraction *= head
    without_bone = np.where(bone, soft, ct_mu)
    return (without_bone * (1 - fraction) + np.float32(ATLAS_BONE_MU) * fraction).astype(np.float32)
