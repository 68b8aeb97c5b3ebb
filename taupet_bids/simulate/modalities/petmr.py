"""PET-MR: the PET-CT scan's uptake imaged again on a PET/MR system with MR-based AC.

A pair is the same uptake, the same injection and the same late window, imaged twice: once on
the PET-CT system the plain generator draws (:class:`TauPET`, attenuation corrected with the CT,
so without AC bias) and once on a PET/MR system. Everything that differs between the two images
is the platform's: the PET/MR's resolution, noise and grid, another head position and motion,
a calibration offset of a few per cent, and above all the attenuation correction, whose bias is
computed by :mod:`taupet_bids.simulate.attenuation.projection` from the subject's true (CT)
mu-map and the MR method's guess, and multiplies the reconstructed image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from taupet_bids.simulate.anatomy import Anatomy
from taupet_bids.simulate.attenuation import ct, hounsfield, mumaps, projection
from taupet_bids.simulate.modalities.base import Scan, Visit
from taupet_bids.simulate.modalities.taupet import SCANNERS, WORKING_VOXEL_MM, Scanner, TauPET

#: The PET/MR system (typical brain settings, not a vendor specification): no time of flight;
#: OP-OSEM 3 iterations x 21 subsets with a 2 mm filter on 2.09 x 2.09 x 2.03 mm voxels.
PET_MR_SCANNER = Scanner(
    "Siemens",
    "Biograph mMR",
    (2.086, 2.086, 2.031),
    (128, 128, 127),
    (5.5, 6.5),
    "OP-OSEM3D",
    3,
    21,
    2.0,
)
#: The systems the PET-CT half of a pair is drawn from.
PET_CT_SCANNERS = tuple(scanner for scanner in SCANNERS if scanner.has_ct)
#: Noise relative to the PET-CT model: no TOF, partly made up by a long axial field of view.
NOISE_SCALE = (1.0, 1.3)
#: Calibration offset of the PET/MR against the PET-CT (relative, either sign): +-2-5 %.
CALIBRATION_OFFSET = (0.02, 0.05)
#: ``rec-`` labels of the pair (BIDS-PET has no ``acq-``; ``rec-`` names the reconstruction,
#: which attenuation correction is part of, as in BIDS's own ``acstat`` and ``nacstat``).
PETCT_REC, PETMR_REC = "ctac", "mrac"


@dataclass(frozen=True)
class PairSetting:
    """One subject's PET-MR traits: skull density, the MR method, calibration and noise."""

    bone_hu: float
    mu_map: mumaps.MuMapSpec
    calibration: float
    noise_scale: float

    def skull(self) -> dict:
        """The subject's true skull, which only the PET-CT's CT sees."""
        return {
            "bone_hu": round(self.bone_hu, 2),
            "bone_mu_per_cm": round(float(hounsfield.mu_511(self.bone_hu)), 5),
        }

    def to_json(self) -> dict:
        """The PET/MR's AC method and bias parameters, for the truth sidecar."""
        return {
            **self.mu_map.to_json(),
            **self.skull(),
            "calibration_factor": round(self.calibration, 5),
            "noise_scale": round(self.noise_scale, 4),
        }


def random_setting(rng: np.random.Generator, method: str) -> PairSetting:
    """Draw a subject's setting; ``method`` is an MR method, or ``mixed`` (one drawn)."""
    if method == "mixed":
        method = str(rng.choice(mumaps.MR_METHODS))
    if method not in mumaps.MR_METHODS:
        raise ValueError(f"PET-MR method must be one of {mumaps.MR_METHODS} or 'mixed'")
    bone_hu = ct.random_bone_hu(rng)
    spec = mumaps.random_spec(rng, method)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    calibration = 1.0 + sign * float(rng.uniform(*CALIBRATION_OFFSET))
    return PairSetting(bone_hu, spec, calibration, float(rng.uniform(*NOISE_SCALE)))


class PetMR:
    """Generator of the PET/MR half of a pair (same tracer and frames as the PET-CT, rec-mrac)."""

    name = "pet"

    def __init__(self, petct: TauPET):
        self.generator = TauPET(petct.tracer_label, PETMR_REC, petct.n_frames)

    def generate(
        self,
        anatomy: Anatomy,
        visit: Visit,
        rng: np.random.Generator,
        petct: Scan,
        layers: np.ndarray,
        setting: PairSetting,
    ) -> Scan:
        """Image ``petct``'s uptake on the PET/MR; ``layers`` are the head's on its working grid."""
        working = petct.truth["working_grid"]
        reference_bqml = petct.truth["reference_bqml"]
        activity = petct.truth["head"] * np.float32(reference_bqml)
        true_mu = hounsfield.mu_511(ct.ct_from_layers(layers, setting.bone_hu))
        assumed_mu = mumaps.mu_map(setting.mu_map, layers, true_mu, WORKING_VOXEL_MM)
        bias = projection.bias_field(activity, true_mu, assumed_mu, WORKING_VOXEL_MM)
        fwhm = float(rng.uniform(*PET_MR_SCANNER.fwhm_mm))
        sigma_vox = fwhm / (2 * np.sqrt(2 * np.log(2))) / WORKING_VOXEL_MM
        blurred = ndimage.gaussian_filter(activity, sigma_vox)
        measured = blurred * bias * np.float32(setting.calibration)
        centre = anatomy.head_centre(visit.template)
        acquired = self.generator.acquire(
            measured,
            working,
            centre,
            PET_MR_SCANNER,
            reference_bqml,
            rng,
            setting.noise_scale,
            visit.motion_scale,
        )
        truth = {
            **petct.truth,
            "blurred": blurred,
            "ac_bias": bias,
            "grid": acquired.grid,
            "pet_to_t1w": acquired.pet_to_t1w,
            "motion": acquired.motion,
            "fwhm_mm": fwhm,
            "scanner": f"{PET_MR_SCANNER.manufacturer} {PET_MR_SCANNER.model}",
            "attenuation": setting.to_json(),
        }
        del truth["head"]
        sidecar = {
            **petct.sidecar,
            "Manufacturer": PET_MR_SCANNER.manufacturer,
            "ManufacturersModelName": PET_MR_SCANNER.model,
            "ReconMethodName": PET_MR_SCANNER.recon,
            "ReconMethodParameterValues": [PET_MR_SCANNER.subsets, PET_MR_SCANNER.iterations],
            "ReconFilterType": "Gaussian",
            "ReconFilterSize": PET_MR_SCANNER.filter_mm,
            "AttenuationCorrection": mumaps.SIDECAR_TEXT[setting.mu_map.method],
        }
        return Scan("pet", "pet", self.generator.entities(), acquired.image, sidecar, truth)
