"""The brain check: a second estimate of where a normalised PET's brain lies, and how large it is.

The head-outline checks of :mod:`taupet_bids.normalisation.geometry_qc` cannot see the misses
that matter most: a 3-5 mm shift or a 3 % scaling moves a small composite (Braak I-II) by more
than 4 % while the head outline stays within a good normalisation's residual. This check looks
at the brain itself. The tau PET template is registered to the template-space PET with the
refinement's short affine (Mattes mutual information, 8 and 4 mm levels, started from the
identity; :mod:`taupet_bids.normalisation.refinement`). How far that affine moves the template
brain (mean over the brain mask, mm) is ``RegistrationCheckMm``: near zero when the PET's brain
sits where the template's does, about the size of the miss when it does not. How much it scales
the template (cube root of its determinant) is ``RegistrationCheckScalePct``: a brain 3 % too
large or small moves its points by only ~2 mm on average but its cortex off its labels.

What a miss costs depends on the scan: the same 3 mm moves a composite by 2 % in one head and
by 5 % in another, depending on where its tau lies. ``RegistrationCheckSUVRPct`` therefore
resamples the PET through that affine (where the check says the template's brain lies) and
reports the largest change of a composite SUVR (meta-temporal, Braak I-II, III-IV, V-VI;
template masks, the run's reference region): the composite error the scan would have if the
check's registration were right.

What it is independent of: the MR-based normalisation (T1w registrations) and the network. For
``ants`` and ``network+ants``, which end with a registration of the same kind, it is a second
run from another start and mostly confirms convergence; a registration that settled in a wrong
optimum can pass it. Mutual information does not need the tau pattern, so amyloid- or FDG-like
images are measured too (benchmarks/geometry_qc_calibration.py reports both).
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import ants
import nibabel as nib
import numpy as np

from taupet_bids import templates
from taupet_bids.atlases.regions import BRAAK_COMPOSITES
from taupet_bids.core.registration import apply_transforms, set_threads
from taupet_bids.normalisation.refinement import short_affine_to_template

#: The values the check reports (all NaN for an image without signal).
KEYS = ("RegistrationCheckMm", "RegistrationCheckScalePct", "RegistrationCheckSUVRPct")


@cache
def composite_masks() -> dict[str, np.ndarray]:
    """Template masks (2 mm) of the composites whose change the check estimates."""

    def labels(atlas: str) -> np.ndarray:
        path = templates.atlas_path(atlas, templates.WORKING_RESOLUTION)
        return np.rint(np.asarray(nib.load(path).dataobj)).astype(int)

    braak = labels("Braak")
    masks = {"metatemporal": labels("MetaTemporal") == 1}
    masks.update({name: np.isin(braak, stages) for name, stages in BRAAK_COMPOSITES.items()})
    return masks


def composites(pet: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Composite SUVR of a template-space image (reference: its mean over the covered mask)."""
    seen = reference & np.isfinite(pet) & (pet != 0)
    level = float(pet[seen].mean()) if seen.any() else float("nan")
    return {name: float(pet[mask].mean()) / level for name, mask in composite_masks().items()}


def largest_change(before: dict[str, float], after: dict[str, float]) -> float:
    """Largest absolute change (%) of a composite; composites that read 0 or NaN (cut by the
    field of view, or no reference) are left out, NaN when none is left."""
    changes = [
        abs(100 * (after[name] / before[name] - 1))
        for name in before
        if np.isfinite(before[name]) and before[name] != 0 and np.isfinite(after[name])
    ]
    return max(changes) if changes else float("nan")


def brain_check(
    pet_std_file: str,
    reference_region: str = "InfCerebGrey",
    seed: int = 42,
    num_threads: int = 1,
) -> dict[str, float]:
    """:data:`KEYS` of a template-space PET (2 mm): how far and how much the check's affine
    moves and scales the template brain, and the largest composite change it implies (%)."""
    image = nib.load(pet_std_file)
    pet = np.asarray(image.dataobj, dtype=np.float32)
    if not np.any(pet):
        return dict.fromkeys(KEYS, float("nan"))
    set_threads(num_threads)
    with tempfile.TemporaryDirectory(prefix="taupet-brain-check-") as work:
        prefix = str(Path(work) / "check_")
        affine_file, mean_mm, _ = short_affine_to_template(pet_std_file, prefix, seed=seed)
        matrix = np.asarray(ants.read_transform(affine_file).parameters[:9]).reshape(3, 3)
        moved_file = apply_transforms(
            pet_std_file, pet_std_file, [affine_file], f"{prefix}moved.nii.gz"
        )
        moved = np.asarray(nib.load(moved_file).dataobj, dtype=np.float32)
    reference_path = templates.reference_mask_path(reference_region, templates.WORKING_RESOLUTION)
    reference = np.asarray(nib.load(reference_path).dataobj) > 0
    change = largest_change(composites(pet, reference), composites(moved, reference))
    scale = float(np.cbrt(np.linalg.det(matrix)))
    return {
        "RegistrationCheckMm": round(mean_mm, 2),
        "RegistrationCheckScalePct": round(100 * (scale - 1), 2),
        "RegistrationCheckSUVRPct": round(float(change), 2),
    }


def brain_check_array(
    pet_std: np.ndarray, affine: np.ndarray, reference_region: str = "InfCerebGrey"
) -> dict[str, float]:
    """:func:`brain_check` of an image held in memory (on the template 2 mm grid ``affine``)."""
    with tempfile.TemporaryDirectory(prefix="taupet-brain-check-") as work:
        path = str(Path(work) / "pet_std.nii.gz")
        nib.Nifti1Image(pet_std.astype(np.float32), affine).to_filename(path)
        return brain_check(path, reference_region)
