"""The CT of a PET-CT scan, in Hounsfield units (a training-time input, never needed to analyse).

Made on the PET's subject-space working grid (2 mm) from the head layers the PET-MR pair uses,
and placed in the PET-CT scanner's world: a CT and its PET share one gantry and one bed, so the
CT lines up with the motion-free PET.
"""

from __future__ import annotations

import numpy as np

from taupet_bids.simulate.attenuation import ct, hounsfield
from taupet_bids.simulate.modalities.base import Scan, nifti

#: CT tube voltage the HU -> mu conversion assumes (Carney et al. 2006, 120 kVp coefficients).
KVP = 120


def ct_scan(layers: np.ndarray, bone_hu: float, petct: Scan) -> Scan:
    """The CT (``ct`` suffix, int16 HU) that went with the PET-CT scan ``petct``."""
    working = petct.truth["working_grid"]
    affine = np.linalg.inv(petct.truth["pet_to_t1w"]) @ working.affine
    hu = ct.ct_from_layers(layers, bone_hu)
    image = nifti(np.rint(hu).astype(np.int16), affine)
    sidecar = {
        "Modality": "CT",
        "Manufacturer": petct.sidecar["Manufacturer"],
        "ManufacturersModelName": petct.sidecar["ManufacturersModelName"],
        "KVP": KVP,
        "Units": "HU",
        "Description": "Simulated low-dose CT of the PET-CT scan, in the PET's world; "
        f"HU -> mu(511 keV): bilinear, 120 kVp (Carney et al. 2006); air {hounsfield.AIR_HU} HU.",
    }
    return Scan("ct", "ct", {}, image, sidecar)
