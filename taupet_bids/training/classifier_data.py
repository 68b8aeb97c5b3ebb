"""The classifier's training data: labelled template-space SUVR scans, split by participant.

Scans are the ``*_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz`` images of a participant-level
run (partial-volume corrected images left out). Each scan's diagnosis comes from its
``sub-*_sessions.tsv`` row when that has one (a diagnosis per visit), else from
``participants.tsv``. Only AD and CN scans train the classifier; MCI and any other label are
counted and left out, so they can be reported separately.

The split is by participant, never by scan: every scan of one participant lands in one set, so
a participant's later visit cannot leak into the validation or test set of their first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from taupet_bids import naming
from taupet_bids.classification.networks import CLASSES
from taupet_bids.errors import InputError
from taupet_bids.group import read_participants, read_sessions
from taupet_bids.normalisation.pet_template import find_suvr_images

DIAGNOSIS = "diagnosis"
#: What a scan whose participant (and session) has no diagnosis counts as.
NO_DIAGNOSIS = "no diagnosis"
#: The images a participant-level run writes in template space (PVC images are left out).
SUVR_PATTERN = f"*_{naming.SPACE}_desc-suvr_pet.nii.gz"
SETS = ("train", "validation", "test")
#: Fractions of participants (per diagnosis) in the validation and test sets; the rest trains.
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1


@dataclass(frozen=True)
class Scan:
    """One template-space SUVR image with its participant, session and diagnosis."""

    path: Path
    participant: str
    session: str | None
    diagnosis: str

    @property
    def target(self) -> int:
        """Index of the diagnosis in the network's outputs (CN 0, AD 1)."""
        return CLASSES.index(self.diagnosis)


def _diagnoses(bids_dir: Path) -> dict[tuple[str, str | None], str]:
    """(participant_id, session_id or None) -> diagnosis, from participants and sessions TSVs."""
    participants = read_participants(bids_dir)
    sessions = read_sessions(bids_dir)
    found = {}
    for table, has_session in ((participants, False), (sessions, True)):
        if table is None or DIAGNOSIS not in table:
            continue
        for _, row in table.dropna(subset=[DIAGNOSIS]).iterrows():
            session = str(row["session_id"]) if has_session else None
            found[(str(row["participant_id"]), session)] = str(row[DIAGNOSIS]).strip()
    if not found:
        raise InputError(
            bids_dir / "participants.tsv",
            "no diagnosis column (in participants.tsv or any sub-*_sessions.tsv): the classifier "
            "has no labels to learn from, so nothing was trained",
            "add a diagnosis column with AD and CN values",
        )
    return found


def find_scans(derivatives: Sequence[Path], bids_dir: Path) -> list[Scan]:
    """Every template-space SUVR image under ``derivatives`` with its diagnosis (any label, or
    :data:`NO_DIAGNOSIS`)."""
    diagnoses = _diagnoses(Path(bids_dir))
    scans = []
    for path in find_suvr_images(derivatives, SUVR_PATTERN):
        parts = naming.entities(path.name)
        participant = f"sub-{parts['sub']}"
        session = f"ses-{parts['ses']}" if "ses" in parts else None
        diagnosis = diagnoses.get((participant, session), diagnoses.get((participant, None)))
        scans.append(Scan(path, participant, session, diagnosis or NO_DIAGNOSIS))
    return scans


def labelled(scans: Sequence[Scan]) -> tuple[list[Scan], Counter]:
    """AD and CN scans, and the count of scans left out per other diagnosis (e.g. MCI)."""
    kept = [scan for scan in scans if scan.diagnosis in CLASSES]
    return kept, Counter(scan.diagnosis for scan in scans if scan.diagnosis not in CLASSES)


def split_participants(scans: Sequence[Scan], seed: int) -> dict[str, str]:
    """participant -> ``train``, ``validation`` or ``test``: about 80/10/10 within each diagnosis.

    A participant is stratified by the diagnosis of their first scan; sets are drawn from
    ``seed``. With 10 or more participants of a diagnosis, each held-out set gets at least one.
    """
    first: dict[str, str] = {}
    for scan in sorted(scans, key=lambda s: (s.participant, s.session or "")):
        first.setdefault(scan.participant, scan.diagnosis)
    rng = np.random.default_rng(seed)
    assigned = {}
    for diagnosis in sorted(set(first.values())):
        members = sorted(p for p, d in first.items() if d == diagnosis)
        members = [members[i] for i in rng.permutation(len(members))]
        n_val = round(len(members) * VALIDATION_FRACTION)
        n_test = round(len(members) * TEST_FRACTION)
        for index, participant in enumerate(members):
            held = "validation" if index < n_val else "test" if index < n_val + n_test else None
            assigned[participant] = held or "train"
    return assigned


def split_table(scans: Sequence[Scan], sets: dict[str, str]) -> pd.DataFrame:
    """One row per scan: which set it is in, for the run folder's ``split.tsv``."""
    return pd.DataFrame(
        [
            {
                "participant_id": scan.participant,
                "session_id": scan.session or "n/a",
                "diagnosis": scan.diagnosis,
                "set": sets[scan.participant],
                "file": scan.path.name,
            }
            for scan in scans
        ]
    )
