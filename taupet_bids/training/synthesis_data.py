"""The synthesis networks' training pairs: a participant run's input and SUVR, in template space.

Target: each ``*_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz`` of a participant-level run
(partial-volume corrected images left out) whose tracer images what the task synthesises: tau
(or a tracer the app does not know, which it processes as tau) or TSPO. Input, by the task's
source:

- ``T1w``: the T1w of the same subject and session in template space: the
  ``*_space-MNI152NLin6Asym_res-2_desc-preproc_T1w.nii.gz`` a run with ``--synthesize`` writes,
  or else the native ``*_desc-preproc_T1w.nii.gz`` warped here with the run's own
  T1w-to-template transforms (cached in the training folder);
- ``FDG``: the same session's FDG SUVR image on the template grid (a run with ``--tracer FDG``
  writes it, pons reference by default), in any of the derivatives folders given (``--tracer``
  selects one tracer, so tau and FDG may come from two runs); the first by name when a session
  has several.

Targets without an input (MR-less scans, a tau visit without FDG) are counted and left out.

The split is by participant, never by scan, so a participant's later visit cannot leak into the
validation or test set of their first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taupet_bids import naming, templates
from taupet_bids.core.registration import apply_transforms
from taupet_bids.normalisation.pet_template import find_suvr_images
from taupet_bids.synthesis.networks import TASKS
from taupet_bids.tracers import identify_tracer

SUVR_PATTERN = f"*_{naming.SPACE}_desc-suvr_pet.nii.gz"
T1W_STD_SUFFIX = f"_{naming.SPACE}_desc-preproc_T1w.nii.gz"
SETS = ("train", "validation", "test")
#: :attr:`taupet_bids.tracers.Tracer.target` of FDG, the input of ``tau-from-fdg``.
FDG_FAMILY = "glucose metabolism"
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1


@dataclass(frozen=True)
class Pair:
    """One training example: the template-space input (T1w or FDG SUVR) and target SUVR of one
    scan."""

    source: Path
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


def tracer_family(suvr: Path) -> str:
    """What an SUVR image images (``tau``, ``TSPO``, ``glucose metabolism``), from its sidecar's
    ``TracerName`` or else its ``trc-`` label; a tracer the app does not know counts as tau, as
    the participant level processes it."""
    name = None
    sidecar = suvr.with_name(suvr.name.replace(".nii.gz", ".json"))
    try:
        meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        name = meta.get("TracerName") if isinstance(meta, dict) else None
    except (OSError, ValueError):
        name = None
    tracer = identify_tracer(str(name) if name else None, naming.entities(suvr.name).get("trc"))
    return tracer.target if tracer is not None else "tau"


def _session(suvr: Path) -> tuple[str, dict[str, str]]:
    parts = naming.entities(naming.scan_stem(suvr.name))
    return "_".join(f"{k}-{parts[k]}" for k in ("sub", "ses") if k in parts), parts


def _t1w_source(suvr: Path, cache: Path) -> Path | None:
    session, _ = _session(suvr)
    anat = suvr.parent.parent / "anat"
    if not anat.is_dir():
        return None
    return _template_t1w(anat, session, naming.scan_stem(suvr.name), cache)


def find_pairs(
    derivatives: Sequence[Path],
    cache: Path,
    task: str = "tau-from-t1w",
    reconstruction: str | None = None,
) -> tuple[list[Pair], list[Path]]:
    """Every (input, SUVR target) pair of ``task`` under ``derivatives``, and the target SUVR
    images that have no input (left out). SUVR images of other tracers are neither, nor, when
    ``reconstruction`` is given, targets whose ``rec-`` label differs (e.g. ``ctac`` keeps a
    PET/MR session's attenuation-biased ``rec-mrac`` image out of the targets)."""
    spec = TASKS[task]
    images = find_suvr_images(derivatives, SUVR_PATTERN)
    family = {image: tracer_family(image) for image in images}
    fdg: dict[str, Path] = {}
    for image in images:
        if family[image] == FDG_FAMILY:
            fdg.setdefault(_session(image)[0], image)
    pairs, without = [], []
    for suvr in images:
        if family[suvr] != spec.target:
            continue
        session, parts = _session(suvr)
        if reconstruction is not None and parts.get("rec") != reconstruction:
            continue
        if spec.source == "FDG":
            source = fdg.get(session)
        else:
            source = _t1w_source(suvr, cache)
        if source is None:
            without.append(suvr)
            continue
        ses = f"ses-{parts['ses']}" if "ses" in parts else None
        pairs.append(Pair(source, suvr, f"sub-{parts['sub']}", ses, parts.get("trc")))
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
