"""The BIDS layout of a simulated dataset: names, images, sidecars and top-level files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib

from taupet_bids import __version__
from taupet_bids.simulate.diagnosis import DIAGNOSIS_TEXT, MMSE_TEXT
from taupet_bids.simulate.population import SubjectSpec

BIDS_VERSION = "1.10.0"
#: Order of entities in file names (BIDS entity table order).
ENTITY_ORDER = ("sub", "ses", "trc", "rec", "space", "res", "from", "to", "desc")

PARTICIPANT_FIELDS = {
    "participant_id": {"Description": "Participant identifier"},
    "age": {"Description": "Age at the first visit", "Units": "year"},
    "sex": {"Description": "Sex", "Levels": {"F": "female", "M": "male"}},
    "diagnosis": {
        "Description": DIAGNOSIS_TEXT["stage"],
        "Levels": {
            "CN": "cognitively normal",
            "MCI": "mild cognitive impairment",
            "AD": "Alzheimer's disease dementia",
        },
    },
    "braak_stage": {"Description": "Simulated Braak tau stage (0-6) at the first visit"},
    "mmse": {
        "Description": MMSE_TEXT["stage"],
        "Units": "score",
    },
    "amyloid_status": {
        "Description": "Amyloid PET status (simulated; chance of positive rises with the Braak "
        "stage, some cognitively normal participants are positive)",
        "Levels": {"positive": "amyloid positive", "negative": "amyloid negative"},
    },
    "amyloid_centiloid": {
        "Description": "Simulated amyloid burden behind amyloid_status (positive above 20)",
        "Units": "Centiloid",
    },
    "tspo_genotype": {
        "Description": "SIMULATOR TRUTH, not a measured variable: rs6971 TSPO binding class "
        "that scales every simulated [11C]PBR28 scan of the participant; LAB scans carry "
        "almost no specific signal and are usually excluded",
        "Levels": {
            "HAB": "high-affinity binder",
            "MAB": "mixed-affinity binder (about 30 % lower total binding)",
            "LAB": "low-affinity binder (near non-binding)",
        },
    },
}
SESSION_FIELDS = {
    "session_id": {"Description": "Session identifier (months since baseline)"},
    "age": {"Description": "Age at this visit", "Units": "year"},
    "diagnosis": PARTICIPANT_FIELDS["diagnosis"],
    "braak_stage": {"Description": "Simulated Braak tau stage (0-6) at this visit"},
    "mmse": {
        "Description": "Mini-Mental State Examination at this visit (0-30; simulated)",
        "Units": "score",
    },
}


def bids_name(entities: dict[str, str | None], suffix: str, extension: str) -> str:
    """``sub-X_ses-Y_..._suffix.ext`` from entities (None values left out)."""
    unknown = set(entities) - set(ENTITY_ORDER)
    if unknown:
        raise ValueError(f"unknown BIDS entities {sorted(unknown)}")
    parts = [f"{k}-{entities[k]}" for k in ENTITY_ORDER if entities.get(k) is not None]
    return "_".join([*parts, suffix]) + extension


def subject_folder(root: Path, subject: str, session: str | None) -> Path:
    """``root/sub-X[/ses-Y]``."""
    folder = root / f"sub-{subject}"
    return folder / f"ses-{session}" if session else folder


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON (indented, newline-terminated)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_tsv(path: Path, columns: list[str], rows: list[list[Any]]) -> None:
    """Write a TSV with a header row."""
    lines = ["\t".join(columns)] + ["\t".join(str(v) for v in row) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_nifti(path: Path, image: nib.Nifti1Image) -> None:
    """Save an image (nibabel writes gzip with mtime 0, so output is byte-reproducible)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, path)


def _participant_row(subject: SubjectSpec) -> list[Any]:
    clinical = subject.clinical
    baseline = subject.baseline
    return [
        f"sub-{subject.label}",
        baseline.age,
        subject.sex,
        baseline.diagnosis,
        baseline.tau.stage,
        clinical.mmse[0],
        clinical.amyloid_status,
        clinical.centiloid,
        clinical.tspo_genotype,
    ]


def participant_fields(diagnosis_model: str = "stage") -> dict[str, dict]:
    """participants.json, its diagnosis and MMSE saying how the labels were drawn."""
    fields = {key: dict(value) for key, value in PARTICIPANT_FIELDS.items()}
    fields["diagnosis"]["Description"] = DIAGNOSIS_TEXT[diagnosis_model]
    fields["mmse"]["Description"] = MMSE_TEXT[diagnosis_model]
    return fields


def write_dataset_files(
    root: Path, subjects: list[SubjectSpec], description: dict, diagnosis_model: str = "stage"
) -> None:
    """dataset_description.json, README, CHANGES, participants and sessions tables."""
    write_json(
        root / "dataset_description.json",
        {
            "Name": description["name"],
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["taupet-bids simulator"],
            "HowToAcknowledge": "Cite taupet-bids; this dataset is synthetic (digital phantoms).",
            "GeneratedBy": [
                {
                    "Name": "taupet-bids-simulate",
                    "Version": __version__,
                    "Description": description["command"],
                }
            ],
        },
    )
    (root / "README").write_text(description["readme"])
    (root / "CHANGES").write_text(
        f"1.0.0 {description['date']}\n  - Simulated with taupet-bids-simulate {__version__}.\n"
    )
    fields = participant_fields(diagnosis_model)
    write_json(root / "participants.json", fields)
    write_tsv(
        root / "participants.tsv",
        list(fields),
        [_participant_row(s) for s in subjects],
    )
    for subject in subjects:
        if subject.baseline.session is None:
            continue
        stem = root / f"sub-{subject.label}" / f"sub-{subject.label}_sessions"
        write_json(stem.with_suffix(".json"), {**SESSION_FIELDS, "diagnosis": fields["diagnosis"]})
        write_tsv(
            stem.with_suffix(".tsv"),
            list(SESSION_FIELDS),
            [
                [f"ses-{v.session}", v.age, v.diagnosis, v.tau.stage, mmse]
                for v, mmse in zip(subject.visits, subject.clinical.mmse, strict=True)
            ],
        )


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())
