"""The clinical condition of the tau diffusion model: MMSE, amyloid status and age.

Each variable is one cross-attention token ``[value, present, one-hot of the variable]``; a
missing value is ``[0, 0, one-hot]``. With every value missing the context is exactly the
*null* context classifier-free guidance was trained with, so a scan without clinical values is
sampled unconditionally (from its T1w only) rather than from an invented value.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

VARIABLES = ("mmse", "amyloid_status", "age")
#: Token width: value, present flag, one-hot of the variable.
CONTEXT_DIM = 2 + len(VARIABLES)
AMYLOID = {"positive": 1.0, "negative": -1.0}
MISSING = {"", "n/a", "na", "nan", "none", "null"}

Clinical = dict  # {variable: value or None}


def _value(name: str, raw) -> float | str | None:
    """One checked value (None when missing); refuses what cannot be a value of ``name``."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    text = str(raw).strip().lower()
    if text in MISSING:
        return None
    if name == "amyloid_status":
        if text not in AMYLOID:
            raise ValueError(f"amyloid_status={raw!r}: give positive, negative or n/a")
        return text
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number (or n/a)") from None
    low, high = (0.0, 30.0) if name == "mmse" else (0.0, 130.0)
    if not low <= number <= high:
        raise ValueError(f"{name}={raw!r} is outside {low:g}-{high:g}")
    return number


def parse(given: Mapping | Iterable[str] | str | None) -> Clinical:
    """Clinical values from a mapping, ``KEY=VALUE`` strings, or one comma-separated string.

    Unknown keys are refused (a typo must not silently fall back to unconditional sampling).
    """
    if given is None:
        pairs: dict = {}
    elif isinstance(given, Mapping):
        pairs = dict(given)
    else:
        items = given.split(",") if isinstance(given, str) else list(given)
        pairs = {}
        for item in items:
            if "=" not in str(item):
                raise ValueError(f"{item!r}: give clinical values as KEY=VALUE")
            key, value = str(item).split("=", 1)
            pairs[key.strip()] = value
    unknown = sorted(set(pairs) - set(VARIABLES))
    if unknown:
        raise ValueError(f"unknown clinical variable(s) {unknown}; known: {list(VARIABLES)}")
    return {name: _value(name, pairs.get(name)) for name in VARIABLES}


def missing(clinical: Clinical) -> list[str]:
    """The variables without a value."""
    return [name for name in VARIABLES if clinical.get(name) is None]


def encode(clinical: Clinical) -> np.ndarray:
    """The (3, CONTEXT_DIM) context of one scan: MMSE and age are centred and scaled so that
    every present value is of order one."""
    scaled = {
        "mmse": None if clinical.get("mmse") is None else (clinical["mmse"] - 25.0) / 5.0,
        "amyloid_status": AMYLOID.get(clinical.get("amyloid_status")),
        "age": None if clinical.get("age") is None else (clinical["age"] - 70.0) / 10.0,
    }
    tokens = np.zeros((len(VARIABLES), CONTEXT_DIM), np.float32)
    for index, name in enumerate(VARIABLES):
        tokens[index, 2 + index] = 1.0
        if scaled[name] is not None:
            tokens[index, :2] = (scaled[name], 1.0)
    return tokens


def null_context() -> np.ndarray:
    """The context with every value missing: the unconditional one."""
    return encode({})


def _rows(path: Path, key: str) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        return {row[key]: row for row in csv.DictReader(handle, delimiter="\t") if key in row}


def from_tables(bids_dir: str | Path, participant: str, session: str | None) -> Clinical:
    """A scan's values from ``participants.tsv``, overridden by the participant's
    ``sessions.tsv`` row (MMSE and age at this visit) where it has one. A column that is absent
    or ``n/a`` is missing."""
    root = Path(bids_dir)
    row = dict(_rows(root / "participants.tsv", "participant_id").get(participant, {}))
    if session is not None:
        sessions = root / participant / f"{participant}_sessions.tsv"
        visit = _rows(sessions, "session_id").get(session, {})
        row.update({k: v for k, v in visit.items() if k in VARIABLES and v.strip() != ""})
    return parse({name: row.get(name) for name in VARIABLES})


def resolve(
    bids_dir: str | Path, participant: str, session: str | None, given: Iterable[str] = ()
) -> Clinical:
    """A session's values for the pipeline: its tables, each overridden by a ``--clinical``
    ``KEY=VALUE`` that names it (``mmse=n/a`` makes a known value missing on purpose)."""
    given = list(given)
    stated = parse(given)
    keys = {str(item).split("=", 1)[0].strip() for item in given}
    tables = from_tables(bids_dir, participant, session)
    return {name: stated[name] if name in keys else tables[name] for name in VARIABLES}
