"""Every name a scan's files carry, parsed and built in one place.

A scan is identified by the entities of its input PET (``sub-001_ses-M000_trc-X``: its *stem*);
derivatives add their own entities after it (``space``, ``res``, ``desc``, ...). The output
folder, the group level and the reports all find a scan's files through these functions, so a
change of naming is one edit here.
"""

from __future__ import annotations

import re
from pathlib import Path

from taupet_bids import templates

#: Entities that identify a scan (those BIDS allows in a PET's name), in file-name order, and
#: the group tables' column for each.
SCAN_ENTITIES = {"sub": "participant_id", "ses": "session_id", "task": "task", "trc": "tracer",
                 "rec": "rec", "run": "run"}  # fmt: skip
#: Entities a derivative keeps from its source file (the input PET; the T1w for anatomical
#: derivatives), in BIDS order, with pybids' name for each. Every derivative's name is built
#: from :func:`source_pattern`, so a source entity is never dropped from one file and kept in
#: another; a source carrying any other entity is refused (:func:`unknown_entities`).
SOURCE_ENTITIES = {
    "sub": "subject", "ses": "session", "task": "task", "acq": "acquisition", "ce": "ceagent",
    "trc": "tracer", "rec": "reconstruction", "run": "run", "echo": "echo", "part": "part",
}  # fmt: skip
#: Entities taupet-bids adds to a derivative's name; those before them come from the input PET.
DERIVATIVE_ENTITIES = ("space", "res", "desc", "seg", "label", "pvc", "from", "to", "mode")
#: The ``res-`` label of template-space derivatives (TemplateFlow's resolution index).
RESOLUTION = str(templates.WORKING_RESOLUTION)
#: The ``space-<template>_res-<n>`` part of every template-space image name.
SPACE = f"space-{templates.TEMPLATE}_res-{RESOLUTION}"


def entities(name: str) -> dict[str, str]:
    """The ``key-value`` pairs of a BIDS file name, in order."""
    stem = name.split(".")[0]
    return dict(part.split("-", 1) for part in stem.split("_") if "-" in part)


def source_pattern() -> str:
    """The source entities of a derivative's name as a pybids path pattern.

    ``sub-{subject}[_ses-{session}][_task-{task}]...[_run-{run}]...``: the data sinks' file
    patterns all start with it (:mod:`taupet_bids.interfaces.derivatives`).
    """
    first, *rest = SOURCE_ENTITIES.items()
    return f"{first[0]}-{{{first[1]}}}" + "".join(f"[_{k}-{{{v}}}]" for k, v in rest)


def unknown_entities(name: str) -> list[str]:
    """Entities of an input file's name that derivative names could not keep (``foo-bar``)."""
    return [key for key in entities(name) if key not in SOURCE_ENTITIES]


def scan_stem(name: str) -> str:
    """The input PET's entities (``sub-001_ses-M000_trc-X``): what identifies a scan.

    Works on the raw PET's name (``..._pet.nii.gz``) and on any derivative's name.
    """
    kept = []
    for part in name.split(".")[0].split("_"):
        if "-" not in part or part.split("-", 1)[0] in DERIVATIVE_ENTITIES:
            break
        kept.append(part)
    return "_".join(kept)


def node_name(stem: str) -> str:
    """A scan's name that is safe as a Nipype node name and a folder name."""
    return re.sub(r"[^A-Za-z0-9]", "_", stem)


def subject_of(stem: str) -> str:
    """``sub-<label>`` of a scan stem."""
    return stem.split("_")[0]


def pet_folder(output_dir: Path, stem: str) -> Path:
    """``sub-X/[ses-Y/]pet`` of a scan stem."""
    parts = entities(stem)
    folder = output_dir / f"sub-{parts['sub']}"
    if "ses" in parts:
        folder = folder / f"ses-{parts['ses']}"
    return folder / "pet"


def suvr_image(output_dir: Path, stem: str) -> Path:
    """The scan's template-space SUVR image."""
    return pet_folder(output_dir, stem) / f"{stem}_{SPACE}_desc-suvr_pet.nii.gz"


def preproc_pet(output_dir: Path, stem: str) -> Path:
    """The motion-corrected, time-weighted average PET in its own space."""
    return pet_folder(output_dir, stem) / f"{stem}_desc-preproc_pet.nii.gz"


def motion_table(output_dir: Path, stem: str) -> Path:
    """Per-frame motion parameters of the scan."""
    return pet_folder(output_dir, stem) / f"{stem}_desc-motion_timeseries.tsv"


def qc_json(output_dir: Path, stem: str) -> Path:
    """The scan's QC numbers (registration scores, motion, normalisation QC)."""
    return pet_folder(output_dir, stem) / f"{stem}_qc.json"


def t1w_to_template(anat_dir: Path, stem: str) -> tuple[Path, Path]:
    """The (warp, affine) T1w-to-template transforms of a scan's subject and session.

    They carry the T1w's own entities (``acq-``, ``run-``), which the PET's stem does not say:
    the one T1w of the scan's session in ``anat_dir`` is taken. When there is none, the names a
    T1w without entities would give are returned (so a caller can say what is missing); when
    there are several, a ``ValueError`` names them.
    """
    parts = entities(stem)
    session = "_".join(f"{k}-{parts[k]}" for k in ("sub", "ses") if k in parts)
    tail = f"from-T1w_to-{templates.TEMPLATE}_mode-image_desc-warp_xfm.nii.gz"
    found = sorted(p for p in anat_dir.glob(f"{session}_*{tail}")
                   if "ses" in parts or "ses" not in entities(p.name))  # fmt: skip
    if len(found) > 1:
        raise ValueError(f"several T1w-to-template transforms: {', '.join(p.name for p in found)}")
    warp = found[0] if found else anat_dir / f"{session}_{tail}"
    affine = warp.name.replace("_desc-warp_xfm.nii.gz", "_desc-affine_xfm.mat")
    return warp, warp.with_name(affine)


#: End of a scan's ``--classify`` prediction (P(AD), label, model): ``<stem>`` + this.
CLASSIFICATION_SUFFIX = "_desc-ADvsCN_classification.json"


def classification_json(output_dir: Path, stem: str) -> Path:
    """The scan's AD-vs-CN prediction (``--classify``)."""
    return pet_folder(output_dir, stem) / f"{stem}{CLASSIFICATION_SUFFIX}"


def classifier_map_regions(output_dir: Path, stem: str, desc: str = "occlusion") -> Path:
    """One of the scan's classifier maps (``desc``: ``occlusion`` or ``attribution``) summarised
    per region (``--classify``)."""
    return pet_folder(output_dir, stem) / f"{stem}_{SPACE}_desc-{desc}_regions.tsv"


def figures_folder(output_dir: Path, stem: str) -> Path:
    """Where the scan's report figures are committed: ``sub-X/figures``."""
    return output_dir / subject_of(stem) / "figures"


def sidecar(path: Path) -> Path:
    """The JSON sidecar of a NIfTI or TSV derivative."""
    name = path.name.removesuffix(".gz").removesuffix(".nii").removesuffix(".tsv")
    return path.with_name(f"{name}.json")
