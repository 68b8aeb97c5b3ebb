"""Flortaucipir-like tau PET: 5-min frames at 80-100 min p.i. with motion, PSF and noise.

The chain, in the order a scanner would impose it: SUVR map (template) -> pulled into the
subject's head -> scaled to Bq/mL -> blurred by the scanner PSF -> each frame samples the blurred
head after that frame's rigid motion, on the scanner's own grid -> correlated Gaussian noise
whose variance grows with the signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from taupet_bids.core.grids import (
    Grid,
    linear_coordinates,
    oriented_grid,
    rigid_matrix,
    sample,
)
from taupet_bids.simulate import partial_volume, uptake
from taupet_bids.simulate.anatomy import Anatomy
from taupet_bids.simulate.modalities.base import Scan, Visit, nifti


@dataclass(frozen=True)
class Scanner:
    """A PET system as the simulator sees it: native grid, effective resolution, recon."""

    manufacturer: str
    model: str
    voxel_mm: tuple[float, float, float]
    shape: tuple[int, int, int]
    fwhm_mm: tuple[float, float]
    recon: str
    iterations: int
    subsets: int
    filter_mm: float
    #: Whether the system has a CT (a PET-only system corrects attenuation by transmission).
    has_ct: bool = True


#: Plausible ADNI-era systems (grids and recon settings are typical, not vendor specifications);
#: effective FWHM after reconstruction spans 6-8 mm (Joshi et al. 2009, NeuroImage 46:154).
SCANNERS = (
    Scanner(
        "Siemens",
        "Biograph mCT",
        (2.036, 2.036, 2.027),
        (128, 128, 109),
        (6.0, 7.0),
        "OSEM3D+TOF",
        4,
        16,
        2.0,
    ),
    Scanner(
        "Philips",
        "Ingenuity TF",
        (2.0, 2.0, 2.0),
        (128, 128, 90),
        (6.5, 7.5),
        "BLOB-OS-TF",
        3,
        33,
        0.0,
    ),
    Scanner(
        "Siemens",
        "ECAT HR+",
        (2.057, 2.057, 2.425),
        (128, 128, 63),
        (7.0, 8.0),
        "OSEM2D",
        4,
        16,
        4.0,
        has_ct=False,
    ),
)
#: Native orientation of PET images (differs from the template's LAS and the T1w's PIR).
ORIENTATION = "RPI"
#: Late window: frames of 5 min from 80 min p.i. (Baker et al. 2017); a single frame is 80-100.
SCAN_START_S = 4800.0
FRAME_S = 300.0
SINGLE_FRAME_S = 1200.0
#: Injected activity (MBq; ADNI: 370 +- 10 %), body weight (kg), reference SUV at 80-100 min.
INJECTED_MBQ = (333.0, 390.0)
WEIGHT_KG = (55.0, 100.0)
REFERENCE_SUV = (0.9, 1.3)
#: Decay-corrected washout of the whole image per frame (relative), leaves SUVR unchanged.
WASHOUT_PER_FRAME = 0.01
#: Inter-frame motion: random-walk SD per frame (degrees, mm).
MOTION_ROTATION_SD_DEG = 0.8
MOTION_SHIFT_SD_MM = 1.0
#: PET scanner world vs MR scanner world: rotation SD (degrees) and shift SD (mm).
PET_TO_T1W_ROTATION_SD_DEG = 4.0
PET_TO_T1W_SHIFT_SD_MM = 10.0
#: Noise: relative SD at reference level for a 5-min frame, floor (relative), correlation (vox).
NOISE_CV_5MIN = 0.10
NOISE_FLOOR = 0.02
NOISE_CORRELATION_VOX = 0.7
#: Subject-space working grid on which the blurred, motion-free PET is made (2 mm, RAS).
WORKING_VOXEL_MM = 2.0
WORKING_SHAPE = (112, 128, 120)


@dataclass(frozen=True)
class Acquisition:
    """A PET image as a scanner recorded it, and where it was recorded."""

    image: nib.Nifti1Image
    grid: Grid
    pet_to_t1w: np.ndarray
    motion: list[np.ndarray]
    starts: list[float]
    durations: list[float]


@dataclass(frozen=True)
class TracerSpec:
    """What differs between tracers in the acquisition: names, dose, timing, noise."""

    tracer_name: str
    radionuclide: str
    molecular_weight: float
    injected_mbq: tuple[float, float]
    reference_suv: tuple[float, float]
    scan_start_s: float
    frame_s: float
    single_frame_s: float
    mass_ug: tuple[float, float]
    #: Noise relative to a flortaucipir frame of the same length (counts, half-life).
    noise_scale: float = 1.0


FLORTAUCIPIR = TracerSpec(
    "AV1451", "F18", 263.27, INJECTED_MBQ, REFERENCE_SUV, SCAN_START_S, FRAME_S,
    SINGLE_FRAME_S, (0.5, 3.0),
)  # fmt: skip


def frame_timing(n_frames: int, spec: TracerSpec = FLORTAUCIPIR) -> tuple[list[float], list[float]]:
    """FrameTimesStart and FrameDuration (s from injection) for ``n_frames`` late frames."""
    if n_frames < 1:
        raise ValueError("a PET image needs at least one frame")
    if n_frames == 1:
        return [spec.scan_start_s], [spec.single_frame_s]
    starts = [spec.scan_start_s + spec.frame_s * i for i in range(n_frames)]
    return starts, [spec.frame_s] * n_frames


def _noise_gain(sigma: float) -> float:
    """SD of unit white noise after the correlating Gaussian filter (to renormalise it)."""
    delta = np.zeros((15, 15, 15), dtype=np.float32)
    delta[7, 7, 7] = 1.0
    return float(np.sqrt((ndimage.gaussian_filter(delta, sigma) ** 2).sum()))


def frame_motion(rng: np.random.Generator, n_frames: int, scale: float = 1.0) -> list[np.ndarray]:
    """Rigid head motion per frame (frame world -> motion-free PET world), a random walk.

    ``scale`` multiplies the walk's steps (the participant's restlessness, :mod:`head_motion`);
    the draws are the same for every scale, so a cohort differs only in how far heads move.
    """
    if n_frames == 1:
        return [np.eye(4)]
    rotations = np.cumsum(rng.normal(0.0, MOTION_ROTATION_SD_DEG, (n_frames, 3)), axis=0) * scale
    shifts = np.cumsum(rng.normal(0.0, MOTION_SHIFT_SD_MM, (n_frames, 3)), axis=0) * scale
    return [rigid_matrix(r, t) for r, t in zip(rotations, shifts, strict=True)]


class TauPET:
    """Generator of flortaucipir-like PET (``trc-`` and ``rec-`` labels are options)."""

    name = "pet"

    def __init__(
        self,
        tracer_label: str = "18FAV1451",
        rec: str | None = None,
        n_frames: int = 4,
        scanners: tuple[Scanner, ...] = SCANNERS,
        spec: TracerSpec = FLORTAUCIPIR,
    ):
        frame_timing(n_frames, spec)
        self.spec = spec
        self.tracer_label = tracer_label
        self.rec = rec
        self.n_frames = n_frames
        self.scanners = scanners

    def entities(self) -> dict[str, str]:
        """BIDS entities of the image (``trc``, optional ``rec``)."""
        out = {"trc": self.tracer_label}
        if self.rec:
            out["rec"] = self.rec
        return out

    def generate(self, anatomy: Anatomy, visit: Visit, rng: np.random.Generator) -> Scan:
        """Make the PET image, its sidecar and the ground truth needed to score it."""
        template = visit.template
        scanner = self.scanners[int(rng.integers(len(self.scanners)))]
        fwhm = float(rng.uniform(*scanner.fwhm_mm))
        injected = float(rng.uniform(*self.spec.injected_mbq))
        weight = float(rng.uniform(*WEIGHT_KG))
        reference_bqml = (
            float(rng.uniform(*self.spec.reference_suv)) * injected * 1e6 / (weight * 1e3)
        )

        suvr, scale, extra = self.uptake(visit, rng)
        reference_bqml *= scale
        centre = anatomy.head_centre(template)
        working = oriented_grid("RAS", (WORKING_VOXEL_MM,) * 3, WORKING_SHAPE, centre)
        seen = partial_volume.mix(suvr, template.fractions)  # the tissue map stays the truth
        head = sample(
            seen, template.grid_2mm.affine, anatomy.to_template(working.world_coordinates())
        )
        sigma_vox = fwhm / (2 * np.sqrt(2 * np.log(2))) / WORKING_VOXEL_MM
        blurred = ndimage.gaussian_filter(head * np.float32(reference_bqml), sigma_vox)
        acquired = self.acquire(
            blurred,
            working,
            centre,
            scanner,
            reference_bqml,
            rng,
            self.spec.noise_scale,
            visit.motion_scale,
        )
        sidecar = self._sidecar(scanner, injected, acquired.starts, acquired.durations, rng)
        truth = {
            "suvr_map": suvr,
            "head": head,
            "blurred": blurred,
            "working_grid": working,
            "grid": acquired.grid,
            "pet_to_t1w": acquired.pet_to_t1w,
            "motion": acquired.motion,
            "fwhm_mm": fwhm,
            "scanner": f"{scanner.manufacturer} {scanner.model}",
            "injected_mbq": injected,
            "weight_kg": weight,
            "reference_bqml": reference_bqml,
            **extra,
        }
        return Scan("pet", "pet", self.entities(), acquired.image, sidecar, truth)

    def uptake(
        self, visit: Visit, rng: np.random.Generator
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        """Template-space SUVR map, the reference's level (x ``REFERENCE_SUV``) and extra truth.

        Tau draws nothing here, so its stream is what it was before other tracers existed.
        """
        return uptake.suvr_map(visit.profile, visit.tau, visit.template), 1.0, {}

    def acquire(
        self,
        blurred: np.ndarray,
        working: Grid,
        centre: np.ndarray,
        scanner: Scanner,
        reference_bqml: float,
        rng: np.random.Generator,
        noise_scale: float = 1.0,
        motion_scale: float = 1.0,
    ) -> Acquisition:
        """The frames of a blurred head: placed in the scanner, moving, on its grid, with noise.

        ``noise_scale`` multiplies the noise of every frame (a system with less sensitivity),
        ``motion_scale`` the frame-to-frame motion (:func:`frame_motion`).
        """
        pet_to_t1w = rigid_matrix(
            rng.normal(0.0, PET_TO_T1W_ROTATION_SD_DEG, 3),
            rng.normal(0.0, PET_TO_T1W_SHIFT_SD_MM, 3),
        )
        pet_centre = np.linalg.inv(pet_to_t1w) @ np.append(centre, 1.0)
        pet_centre = pet_centre[:3] + rng.normal(0.0, 5.0, 3)
        grid = oriented_grid(ORIENTATION, scanner.voxel_mm, scanner.shape, pet_centre)
        starts, durations = frame_timing(self.n_frames, self.spec)
        motion = frame_motion(rng, self.n_frames, motion_scale)
        frames = [
            self._frame(
                blurred,
                working,
                grid,
                pet_to_t1w @ move,
                duration,
                reference_bqml,
                rng,
                noise_scale,
            )
            * np.float32(1 - WASHOUT_PER_FRAME * i)
            for i, (move, duration) in enumerate(zip(motion, durations, strict=True))
        ]
        data = frames[0] if self.n_frames == 1 else np.stack(frames, axis=-1)
        image = nifti(data.astype(np.float32), grid.affine)
        if self.n_frames > 1:
            image.header.set_dim_info(slice=2)
            image.header["pixdim"][4] = self.spec.frame_s
        return Acquisition(image, grid, pet_to_t1w, motion, starts, durations)

    @staticmethod
    def _frame(
        blurred: np.ndarray,
        working: Grid,
        grid: Grid,
        to_subject: np.ndarray,
        duration: float,
        reference_bqml: float,
        rng: np.random.Generator,
        noise_scale: float = 1.0,
    ) -> np.ndarray:
        """One frame: the blurred head seen through ``to_subject``, plus noise."""
        signal = sample(
            blurred, working.affine, linear_coordinates(to_subject @ grid.affine, grid.shape)
        )
        cv = NOISE_CV_5MIN * noise_scale * np.sqrt(FRAME_S / duration)
        sd = (
            cv * np.sqrt(np.clip(signal, 0, None) * reference_bqml)
            + NOISE_FLOOR * cv * reference_bqml
        )
        noise = ndimage.gaussian_filter(
            rng.standard_normal(signal.shape, dtype=np.float32), NOISE_CORRELATION_VOX
        )
        noise *= np.float32(1.0 / _noise_gain(NOISE_CORRELATION_VOX))
        return signal + noise * sd.astype(np.float32)

    def _sidecar(
        self,
        scanner: Scanner,
        injected: float,
        starts: list[float],
        durations: list[float],
        rng: np.random.Generator,
    ) -> dict:
        """Every REQUIRED BIDS-PET field, plus the recommended ones a real export carries."""
        mass_ug = float(rng.uniform(*self.spec.mass_ug))
        hour, minute = int(rng.integers(8, 14)), int(rng.integers(0, 60))
        return {
            "Modality": "PT",
            "Manufacturer": scanner.manufacturer,
            "ManufacturersModelName": scanner.model,
            "Units": "Bq/mL",
            "BodyPart": "Brain",
            "TracerName": self.spec.tracer_name,
            "TracerRadionuclide": self.spec.radionuclide,
            "TracerMolecularWeight": self.spec.molecular_weight,
            "TracerMolecularWeightUnits": "g/mol",
            "InjectedRadioactivity": round(injected, 1),
            "InjectedRadioactivityUnits": "MBq",
            "InjectedMass": round(mass_ug, 3),
            "InjectedMassUnits": "ug",
            "SpecificRadioactivity": round(injected / mass_ug, 3),
            "SpecificRadioactivityUnits": "MBq/ug",
            "ModeOfAdministration": "bolus",
            "TimeZero": f"{hour:02d}:{minute:02d}:00",
            "InjectionStart": 0,
            "ScanStart": starts[0],
            "FrameTimesStart": starts,
            "FrameDuration": durations,
            "AcquisitionMode": "list mode",
            "ImageDecayCorrected": True,
            "ImageDecayCorrectionTime": 0,
            "ReconMethodName": scanner.recon,
            "ReconMethodParameterLabels": ["subsets", "iterations"],
            "ReconMethodParameterUnits": ["none", "none"],
            "ReconMethodParameterValues": [scanner.subsets, scanner.iterations],
            "ReconFilterType": "Gaussian" if scanner.filter_mm else "none",
            "ReconFilterSize": scanner.filter_mm,
            "AttenuationCorrection": (
                "CT-based" if scanner.has_ct else "measured, 68Ge transmission scan"
            ),
            "ScatterCorrectionMethod": "model-based single scatter simulation",
            "RandomsCorrectionMethod": "delayed coincidence window",
        }
