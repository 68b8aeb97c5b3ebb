"""The synthesis networks' training pairs: a participant run's T1w and SUVR, in template space.

Target: each ``*_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz`` of a participant-level run
(partial-volume corrected images left out). Input: the T1w of the same subject and session in
template space: the ``*_space-MNI152NLin6Asym_res-2_desc-preproc_T1w.nii.gz`` a run with
``--synthesize`` writes, or else the native ``*_desc-preproc_T1w.nii.gz`` warped here with the
run's own T1w-to-template transforms (cached in the training folder). Scans without a T1w
(MR-less) are counted and left out.

The split is by participant, never by scan, so a participant's later visit cannot leak into the
validation or test set of their first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taupet_bids import naming, templates
from taupet_bids.core.registration import apply_transforms
from taupet_bids.normalisation.pet_template import find_suvr_images

SUVR_PATTERN = f"*_{naming.SPACE}_desc-suvr_pet.nii.gz"
T1W_STD_SUFFIX = f"_{naming.SPACE}_desc-preproc_T1w.nii.gz"
SETS = ("train", "validation", "test")
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1


@dataclass(frozen=True)
class Pair:
    """One training example: the template-space T1w and SUVR of one scan."""

    t1w: Path
    suvr: Path
    participant: str
    session: str | None
    tracer: str | None


def _template_t1w(anat: Path, session: str, stem: str, cache: Path) -> Path | None:
    """The session's template-space T1w: written by the run, or warped here (cached)."""
    written = sorted(anat.glob(f"{session}_*{T1W_STD_SUFFIX}")) + sorted(
        anat.glob(f"{session}{T1W_STD_SUFFIX}")
    )
    if written:
        return written[0]
    try:
        warp, affine = naming.t1w_to_template(anat, stem)
    except ValueError:
        return None
    native = warp.with_name(
        warp.name.replace(
            f"_from-T1w_to-{templates.TEMPLATE}_mode-image_desc-warp_xfm.nii.gz",
            "_desc-preproc_T1w.nii.gz",
        )
    )
    if not (warp.is_file() and affine.is_file() and native.is_file()):
        return None
    out = cache / native.name.replace("_desc-preproc_T1w.nii.gz", T1W_STD_SUFFIX)
    if not out.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        reference = str(templates.t1w_path(templates.WORKING_RESOLUTION))
        apply_transforms(str(native), reference, [str(warp), str(affine)], str(out))
    return out


def find_pairs(derivatives: Sequence[Path], cache: Path) -> tuple[list[Pair], list[Path]]:
    """Every (template-space T1w, SUVR) pair under ``derivatives``, and the SUVR images that
    have no T1w (left out)."""
    pairs, without = [], []
    for suvr in find_suvr_images(derivatives, SUVR_PATTERN):
        stem = naming.scan_stem(suvr.name)
        parts = naming.entities(stem)
        session = "_".join(f"{k}-{parts[k]}" for k in ("sub", "ses") if k in parts)
        anat = suvr.parent.parent / "anat"
        t1w = _template_t1w(anat, session, stem, cache) if anat.is_dir() else None
        if t1w is None:
            without.append(suvr)
            continue
        ses = f"ses-{parts['ses']}" if "ses" in parts else None
        pairs.append(Pair(t1w, suvr, f"sub-{parts['sub']}", ses, parts.get("trc")))
    return pairs, without


def split_participants(pairs: Sequence[Pair], seed: int) -> dict[str, str]:
    """participant -> ``train``, ``validation`` or ``test`` (about 80/10/10, drawn from
    ``seed``); with three or more participants each held-out set gets at least one."""
    people = sorted({pair.participant for pair in pairs})
    order = [people[i] for i in np.random.default_rng(seed).permutation(len(people))]
    n = len(order)
    n_val = max(1, round(n * VALIDATION_FRACTION)) if n >= 3 else 0
    n_test = max(1, round(n * TEST_FRACTION)) if n >= 3 else 0
    return {
        person: "validation" if i < n_val else "test" if i < n_val + n_test else "train"
        for i, person in enumerate(order)
    }
