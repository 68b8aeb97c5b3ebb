"""The harmoniser's training pairs, read from a participant-level run of a ``--pet-mr`` cohort.

A pair is one visit imaged twice (the simulator's ``rec-mrac`` PET/MR and ``rec-ctac`` PET-CT):
both template-space SUVR images come from the derivatives; the T1w in template space is the
derivatives' N4-corrected T1w (``desc-preproc``) resampled with the run's own T1w-to-template
transforms (warp, affine); the CT (BIDS ``ct/``, in the PET-CT's world) is brought to the
template through the PET-CT scan's PET-to-T1w transform and the same T1w-to-template transforms,
exactly as the app resamples that PET. The CT is optional: without it the pseudo-CT head is not
trained for that pair. Pairs are split by participant, never by visit.

Target: ``log(SUVR_ctac / SUVR_mrac)`` on the 4 mm grid, smoothed by normalised convolution
inside the template brain (Gaussian, :data:`TARGET_SIGMA_MM`), so voxel noise of the two
reconstructions is not learnt, only the smooth attenuation bias. Each example also carries the
PET-CT's own input (``identity_image``, same T1w): fed that, the network should return a zero
field, which training asks of it for a share of the batches (:mod:`harmoniser`). The PET/MR
scan's AC method is read from its BIDS sidecar as the app reads it
(:func:`taupet_bids.harmonisation.detection.ac_method`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from taupet_bids import naming, templates
from taupet_bids.core.images import load_3d
from taupet_bids.core.registration import apply_transforms
from taupet_bids.errors import InputError
from taupet_bids.harmonisation import detection, preprocessing
from taupet_bids.training import harmoniser_regions

MR_REC, CT_REC = "mrac", "ctac"
SUVR_PATTERN = f"*_rec-{MR_REC}_*{naming.SPACE}_desc-suvr_pet.nii.gz"
#: Gaussian of the target's smoothing (mm, SD).
TARGET_SIGMA_MM = 8.0
#: SUVR below which a voxel's ratio is not used (noise dominates a ratio of small values).
MIN_SUVR = 0.2
#: CT numbers are given to the network as HU / CT_SCALE, clipped to CT_RANGE_HU.
CT_SCALE = 1000.0
CT_RANGE_HU = (-1000.0, 2000.0)
#: Fill of template voxels beyond the CT's field of view (ANTs takes no NaN), made NaN after.
OUTSIDE_CT_HU = -32768.0
SETS = ("train", "validation", "test")
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1


@dataclass(frozen=True)
class Pair:
    """One visit's two template-space SUVR images, its T1w files and (optionally) its CT."""

    participant: str
    session: str | None
    mrac: Path
    ctac: Path
    t1w: Path
    t1w2std: tuple[Path, ...]
    pet2t1w_ctac: tuple[Path, ...]
    ct: Path | None
    #: The PET/MR scan's AC method (:data:`~taupet_bids.harmonisation.detection.AC_METHODS`).
    ac_method: str = "mr"

    @property
    def name(self) -> str:
        return naming.scan_stem(self.mrac.name)


def _one(folder: Path, pattern: str, what: str, near: Path) -> Path:
    found = sorted(folder.glob(pattern))
    if not found:
        raise InputError(
            near,
            f"no {what} ({folder}/{pattern}) for this pair",
            "run taupet-bids participant with a T1w (MR-based path) first",
        )
    return found[0]


def _pair(mrac: Path, bids_dir: Path) -> Pair | None:
    ctac = mrac.with_name(mrac.name.replace(f"_rec-{MR_REC}_", f"_rec-{CT_REC}_"))
    if not ctac.exists():
        return None
    parts = naming.entities(mrac.name)
    subject = f"sub-{parts['sub']}"
    session = f"ses-{parts['ses']}" if "ses" in parts else None
    prefix = "_".join(p for p in (subject, session) if p)
    anat = mrac.parent.parent / "anat"
    t1w = _one(anat, f"{prefix}*_desc-preproc_T1w.nii.gz", "N4-corrected T1w", mrac)
    warp = _one(
        anat,
        f"{prefix}*_from-T1w_to-{templates.TEMPLATE}*desc-warp_xfm.nii.gz",
        "T1w-to-template warp",
        mrac,
    )
    affine = _one(
        anat,
        f"{prefix}*_from-T1w_to-{templates.TEMPLATE}*desc-affine_xfm.mat",
        "T1w-to-template affine",
        mrac,
    )
    ct_stem = naming.scan_stem(ctac.name)
    rigid = _one(ctac.parent, f"{ct_stem}_from-pet_to-T1w*_xfm.*", "PET-CT to T1w transform", ctac)
    ct_folder = bids_dir / subject / (session or "") / "ct"
    cts = sorted(ct_folder.glob(f"{prefix}*_ct.nii.gz"))
    return Pair(
        subject, session, mrac, ctac, t1w, (warp, affine), (rigid,), cts[0] if cts else None,
        pet_ac_method(mrac, bids_dir),
    )  # fmt: skip


def pet_ac_method(suvr: Path, bids_dir: Path) -> str:
    """The AC method the BIDS sidecar of a derivative's source scan names (``mr`` without one)."""
    parts = naming.entities(suvr.name)
    stem = naming.scan_stem(suvr.name)
    sidecars = sorted(Path(bids_dir).glob(f"sub-{parts['sub']}/**/pet/{stem}*_pet.json"))
    if not sidecars:
        return "mr"
    return detection.ac_method(json.loads(sidecars[0].read_text()))


def find_pairs(
    derivatives: list[Path], bids_dir: Path, skipped: list[str] | None = None
) -> list[Pair]:
    """Every rec-mrac template-space SUVR image with its rec-ctac partner, in name order. A pair
    the MR-based path did not process (no T1w: normalised without MRI) is left out, and why goes
    into ``skipped``."""
    pairs = []
    for folder in derivatives:
        for mrac in sorted(Path(folder).glob(f"sub-*/**/pet/{SUVR_PATTERN}")):
            try:
                pair = _pair(mrac, Path(bids_dir))
            except InputError as error:
                if skipped is not None:
                    skipped.append(str(error))
                continue
            if pair is not None:
                pairs.append(pair)
    return pairs


def to_template(in_file: Path, transforms: list[Path], outside: float = 0.0) -> np.ndarray:
    """``in_file`` resampled onto the template's 2 mm grid (linear); ``outside`` fills the
    voxels beyond the image's field of view."""
    reference = str(templates.t1w_path(templates.WORKING_RESOLUTION))
    with tempfile.TemporaryDirectory() as tmp:
        out = apply_transforms(
            str(in_file), reference, [str(t) for t in transforms],
            str(Path(tmp) / "std.nii.gz"), default_value=outside,
        )  # fmt: skip
        return load_3d(out, np.float32)


def smoothed_log_ratio(ctac: np.ndarray, mrac: np.ndarray) -> np.ndarray:
    """The 4 mm target: log(ctac / mrac) by normalised convolution inside the brain."""
    ct4, mr4 = preprocessing.suvr_channel(ctac), preprocessing.suvr_channel(mrac)
    valid = preprocessing.brain_mask_4mm() & (ct4 > MIN_SUVR) & (mr4 > MIN_SUVR)
    ratio = np.where(valid, np.log(np.where(valid, ct4, 1.0) / np.where(valid, mr4, 1.0)), 0.0)
    sigma = TARGET_SIGMA_MM / (preprocessing.POOL * templates.WORKING_RESOLUTION)
    weight = ndimage.gaussian_filter(valid.astype(np.float64), sigma)
    smooth = ndimage.gaussian_filter(ratio, sigma) / np.maximum(weight, 1e-6)
    return np.where(weight > 1e-3, smooth, 0.0).astype(np.float32)


@dataclass(frozen=True)
class Example:
    """Network input (2, 46, 55, 46), target field and CT channel (NaN without a CT and
    beyond the CT's field of view); ``identity_image`` is the PET-CT's input (target zero);
    ``regional_target`` the regions' log-ratios (:mod:`harmoniser_regions`)."""

    image: np.ndarray
    target: np.ndarray
    ct: np.ndarray
    identity_image: np.ndarray
    regional_target: np.ndarray
    #: Conditioning index of the PET/MR scan's AC method.
    method: int = 0


def load_example(pair: Pair) -> Example:
    """Read one pair's images and bring the T1w and CT to the template (see module doc)."""
    mrac, ctac = load_3d(pair.mrac, np.float32), load_3d(pair.ctac, np.float32)
    t1w = to_template(pair.t1w, list(pair.t1w2std))
    if pair.ct is not None:
        hu = to_template(pair.ct, [*pair.t1w2std, *pair.pet2t1w_ctac], outside=OUTSIDE_CT_HU)
        hu[hu < CT_RANGE_HU[0] - 1] = np.nan  # beyond the CT (or mixed with beyond) at its edge
        ct = preprocessing.downsample(np.clip(hu, *CT_RANGE_HU) / CT_SCALE)
    else:
        ct = np.full(preprocessing.INPUT_SHAPE, np.nan, np.float32)
    image, identity_image = (preprocessing.network_input(s, t1w) for s in (mrac, ctac))
    return Example(
        image,
        smoothed_log_ratio(ctac, mrac),
        ct,
        identity_image,
        harmoniser_regions.regional_target(ctac, mrac),
        detection.AC_METHODS.index(pair.ac_method),
    )


def split_participants(pairs: list[Pair], seed: int) -> dict[str, str]:
    """participant -> set, about 80/10/10; with 10 or more participants each held-out set
    gets at least one."""
    people = sorted({pair.participant for pair in pairs})
    order = [people[i] for i in np.random.default_rng(seed).permutation(len(people))]
    n_val = round(len(order) * VALIDATION_FRACTION)
    n_test = round(len(order) * TEST_FRACTION)
    return {
        person: "validation" if i < n_val else "test" if i < n_val + n_test else "train"
        for i, person in enumerate(order)
    }
