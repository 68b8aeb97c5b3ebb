"""Group level: every participant's regional tables as one long and one wide table, plus QC.

The tables are read back from the derivatives the participant level wrote, so the group level
needs nothing but ``OUTPUT_DIR`` (and ``participants.tsv`` from the BIDS folder); values are
copied, never recomputed, so they equal the participant tables exactly.

Every file read is checked first (:func:`gather`): its size (at most :data:`MAX_FILE_BYTES`,
refused unread when larger), UTF-8 text, the same number of fields on every line, the columns
and rows the participant level writes, numbers where numbers belong. A scan with any unusable
file is left out whole (see :func:`gather` for why), with a one-line warning naming the file; a
broken ``participants.tsv`` or ``sessions.tsv`` is left out with a warning and the group tables
are written without its columns. What was left out is listed in each group table's sidecar
(``Skipped``). When nothing usable is left, :class:`NothingToGather` is raised before anything
is written.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from taupet_bids import naming, staging, tracers
from taupet_bids.atlases import ATLAS_NAMES
from taupet_bids.atlases.regions import region_groups
from taupet_bids.core import classification_metrics
from taupet_bids.core.qc import METRICS
from taupet_bids.core.regions import STAT_COLUMNS
from taupet_bids.naming import SCAN_ENTITIES, entities, qc_json, scan_stem
from taupet_bids.reports import qc

LOG = logging.getLogger("taupet_bids")

#: Columns of the participant tables after ``region`` (``suvr_mean`` becomes ``suvr``).
TABLE_COLUMNS = STAT_COLUMNS[1:]
ID_COLUMNS = [
    "scan", *SCAN_ENTITIES.values(), "tracer_name", "method", "harmonized", "synthetic",
    "reference",
]  # fmt: skip
#: ``desc-`` of the tables ``--harmonize`` writes beside the measured ones.
HARMONIZED_DESC = "harmonized"
#: The ``desc-`` of a synthetic image's tables starts with this (``desc-syntheticFromT1w``):
#: their rows are marked ``synthetic`` and get their own ``method``, never a measured one's.
SYNTHETIC_DESC = "synthetic"
GROUP_DIR = "group"
#: Largest file the group level reads (tables, sidecars, QC records, participants.tsv): a
#: larger one is refused from its size, unread. The largest table the participant level
#: writes (Desikan-Killiany, 160 rows) is about 20 kB.
MAX_FILE_BYTES = 50 * 1024 * 1024
#: Columns the group level writes into the wide table besides the region columns; a
#: participants.tsv or sessions.tsv column of the same name is left out (it would replace them).
STAGING_COLUMNS = [
    "tau_cutpoint",
    "tau_positive",
    "braak_stage_estimate",
    "braak_conforming",
    "braak_rule",
]


class NothingToGather(FileNotFoundError):
    """No usable participant table under the output folder: nothing is written."""


class UnusableFile(Exception):
    """A file the group level cannot use; ``str()`` is ``<path>: <problem>`` on one line."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")


@dataclass(frozen=True)
class Skipped:
    """One file the group level could not use, and what was left out because of it."""

    file: Path
    problem: str
    consequence: str
    #: The scan left out because of it; None for a BIDS file (participants.tsv, sessions.tsv).
    scan: str | None = None

    def line(self) -> str:
        """The one-line warning: ``<file>: <problem>; <consequence>``."""
        return f"{self.file}: {self.problem}; {self.consequence}"

    def record(self) -> dict[str, str]:
        """The entry of the group sidecars' ``Skipped`` list."""
        return {"File": str(self.file), "Problem": self.problem, "Consequence": self.consequence}


def _skip(
    skipped: list[Skipped] | None, error: UnusableFile, consequence: str, scan: str | None = None
) -> None:
    """Warn (one line) and record a file left out."""
    entry = Skipped(error.path, error.problem, consequence, scan)
    LOG.warning("%s", entry.line())
    if skipped is not None:
        skipped.append(entry)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.0f} MB" if n_bytes >= 2**20 else f"{n_bytes} bytes"


def read_text(path: Path) -> str:
    """A file's UTF-8 text, refused (:class:`UnusableFile`) when too large, binary or unreadable.

    The size is read first: a file over :data:`MAX_FILE_BYTES` is refused unread.
    """
    too_large = f"the {_size(MAX_FILE_BYTES)} the group level reads"
    try:
        if not path.is_file():
            raise UnusableFile(path, "is not a regular file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UnusableFile(path, f"is {_size(size)}, more than {too_large}")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise UnusableFile(path, f"cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_FILE_BYTES:  # grew since its size was read
        raise UnusableFile(path, f"is more than {too_large}")
    try:
        text = data.decode("utf-8-sig")  # a leading byte-order mark (spreadsheets) is dropped
    except UnicodeDecodeError as error:
        raise UnusableFile(
            path, f"is not UTF-8 text (byte {error.start}); a damaged or binary file"
        ) from None
    if "\x00" in text:
        raise UnusableFile(path, "holds NUL bytes; a damaged or binary file")
    return text


def read_tsv(path: Path, dtype: dict | None = None) -> pd.DataFrame:
    """A TSV table read as the participant level wrote it (``n/a`` is missing), checked first.

    Refused (:class:`UnusableFile`) when :func:`read_text` refuses it, when it is empty, when a
    column name repeats or a line has more or fewer fields than the header, or when pandas
    cannot parse it.
    """
    text = read_text(path)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line]
    if not numbered:
        raise UnusableFile(path, "is empty")
    header = numbered[0][1].split("\t")
    repeated = sorted(name for name, count in Counter(header).items() if count > 1)
    if repeated:
        raise UnusableFile(path, f"repeats column(s) {', '.join(map(repr, repeated))}")
    for number, line in numbered[1:]:
        fields = line.count("\t") + 1
        if fields != len(header):
            raise UnusableFile(
                path,
                f"line {number} has {fields} field(s), the header "
                f"{len(header)}; a ragged or damaged table",
            )
    try:
        return pd.read_csv(io.StringIO(text), sep="\t", na_values="n/a", dtype=dtype)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnusableFile(path, f"cannot be parsed as a TSV table ({first})") from None


def read_json(path: Path) -> dict:
    """A JSON object, checked like :func:`read_text`; anything but an object is refused."""
    text = read_text(path)
    try:
        value = json.loads(text)
    except ValueError as error:
        raise UnusableFile(path, f"is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise UnusableFile(path, f"holds a JSON {type(value).__name__}, not an object")
    return value


def _numbers(path: Path, frame: pd.DataFrame, column: str, labels: pd.Series) -> pd.Series:
    """``frame[column]`` as floats; a value that is not a number (n/a allowed) is refused."""
    values = frame[column]
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if bad.any():
        where = bad.to_numpy().nonzero()[0][0]
        raise UnusableFile(
            path, f"{column} of {labels.iloc[where]} is {values.iloc[where]!r}, not a number"
        )
    infinite = np.isinf(numbers.to_numpy(dtype=float))
    if infinite.any():
        where = infinite.nonzero()[0][0]
        raise UnusableFile(path, f"{column} of {labels.iloc[where]} is infinite")
    return numbers


def _listed(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def expected_regions(atlas: str, reference: str) -> list[str]:
    """Rows of a regional table, in the order the participant level writes them."""
    return [*region_groups(atlas), f"reference-{reference}"]


def check_regional_table(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Refuse a regional table whose columns, rows or values are not those the participant
    level writes (:class:`UnusableFile`); return it with its statistics as numbers.

    Columns: exactly :data:`~taupet_bids.core.regions.STAT_COLUMNS`. Rows: one per region of
    the ``seg-`` atlas (:func:`~taupet_bids.atlases.regions.region_groups`) and the
    ``reference-<label>`` row, each once, none missing, none extra. Values: numbers or n/a
    (an empty region), finite, never negative for ``suvr_sd``, ``volume_ml`` and ``n_voxels``;
    ``n_voxels`` whole.
    """
    ents = entities(path.name)
    atlas, reference = ents.get("seg"), ents.get("label")
    if atlas not in ATLAS_NAMES:
        raise UnusableFile(
            path, f"seg-{atlas} is not an atlas taupet-bids writes ({', '.join(ATLAS_NAMES)})"
        )
    if not reference:
        raise UnusableFile(path, "has no label- entity naming the reference region")
    columns = list(frame.columns)
    missing = [c for c in STAT_COLUMNS if c not in columns]
    extra = [str(c) for c in columns if c not in STAT_COLUMNS]
    if missing or extra:
        problems = [f"lacks column(s) {', '.join(missing)}"] if missing else []
        problems += [f"has unexpected column(s) {_listed(extra)}"] if extra else []
        raise UnusableFile(path, " and ".join(problems))
    if frame["region"].isna().any():
        raise UnusableFile(path, "a row has no region name")
    regions = frame["region"].astype(str)
    expected = expected_regions(atlas, reference)
    repeated = list(dict.fromkeys(regions[regions.duplicated()]))
    absent = [r for r in expected if r not in set(regions)]
    unknown = [r for r in dict.fromkeys(regions) if r not in set(expected)]
    strange = f"row(s) no seg-{atlas} table has ({_listed(unknown)})"
    if absent:
        missing_rows = (
            f"{len(absent)} of the {len(expected)} rows of a seg-{atlas} table are missing "
            f"({_listed(absent)})"
        )
        truncated = f"{missing_rows}; a truncated table"
        raise UnusableFile(path, f"{missing_rows} and it has {strange}" if unknown else truncated)
    if unknown:
        raise UnusableFile(path, f"has {strange}")
    if repeated:
        raise UnusableFile(path, f"repeats row(s) {_listed(repeated)}")
    labels = "region " + regions
    numbers = {column: _numbers(path, frame, column, labels) for column in STAT_COLUMNS[1:]}
    for column in ("suvr_sd", "volume_ml", "n_voxels"):
        negative = (numbers[column] < 0).to_numpy()
        if negative.any():
            where = negative.nonzero()[0][0]
            raise UnusableFile(path, f"{column} of {labels.iloc[where]} is negative")
    count = numbers["n_voxels"]
    fractional = (count.notna() & (count % 1 != 0)).to_numpy()
    if fractional.any():
        where = fractional.nonzero()[0][0]
        raise UnusableFile(path, f"n_voxels of {labels.iloc[where]} is not a whole number")
    return frame.assign(**numbers)


def find_tables(output_dir: Path) -> list[Path]:
    """Every regional SUVR table the participant level committed."""
    return sorted(output_dir.glob("sub-*/**/pet/*_seg-*_suvr.tsv"))


def _tracer_name(table: Path) -> str:
    """The tracer's canonical name from the table's sidecar (TracerName) or the trc- label."""
    sidecar = table.with_suffix(".json")
    name = read_json(sidecar).get("TracerName") if sidecar.exists() else None
    if name is not None and not isinstance(name, str):
        raise UnusableFile(sidecar, f"TracerName is {name!r}, not a text")
    found = tracers.identify_tracer(name, entities(table.name).get("trc"))
    return found.name if found else (name or entities(table.name).get("trc", "n/a"))


def _method(ents: dict[str, str]) -> str:
    """``SUVR``, ``SUVR-PVC-<method>``, or ``SUVR-<desc>`` for a synthetic image's table."""
    if ents.get("desc", "").startswith(SYNTHETIC_DESC):
        return f"SUVR-{ents['desc']}"
    return f"SUVR-PVC-{ents['pvc']}" if "pvc" in ents else "SUVR"


def read_table(table: Path) -> pd.DataFrame:
    """One participant table, checked (:func:`check_regional_table`), with the scan's
    identifiers as leading columns; :class:`UnusableFile` when it cannot be used."""
    ents = entities(table.name)
    frame = check_regional_table(table, read_tsv(table))
    ids = {column: ents.get(key) for key, column in SCAN_ENTITIES.items()}
    ids["participant_id"] = f"sub-{ents['sub']}"
    ids["session_id"] = f"ses-{ents['ses']}" if "ses" in ents else None
    harmonized = ents.get("desc") == HARMONIZED_DESC
    method = _method(ents)
    ids.update(
        scan=scan_stem(table.name),
        tracer_name=_tracer_name(table),
        method=f"{method}-harmonized" if harmonized else method,
        harmonized=harmonized,
        synthetic=ents.get("desc", "").startswith(SYNTHETIC_DESC),
        reference=ents.get("label"),
        atlas=ents.get("seg"),
    )
    return frame.assign(**ids)


def check_qc_record(path: Path) -> None:
    """Refuse a ``_qc.json`` whose numbers are not numbers or whose flags are not texts.

    A scan without a QC record is kept: its QC row says what is missing.
    """
    if not path.exists():
        return
    record = read_json(path)
    for key in METRICS:
        value = record.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise UnusableFile(path, f"{key} is {value!r}, not a number")
    for key in ("flags", "normalisation_flags"):
        value = record.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UnusableFile(path, f"{key} is {value!r}, not a list of texts")


#: Columns of the participant ``_braakstage.tsv`` tables copied into the wide table, renamed so
#: they are not confused with the data-driven ``braak_stage_estimate``.
PUBLISHED_STAGE_COLUMNS = {
    "braak_stage": "braak_stage_published",
    "braak_stage_label": "braak_stage_published_label",
    "braak_conforming": "braak_published_conforming",
    "threshold_set": "braak_published_thresholds",
}


def find_stage_tables(output_dir: Path) -> list[Path]:
    """Every per-scan Braak stage table the participant level committed."""
    return sorted(output_dir.glob("sub-*/**/pet/*_braakstage.tsv"))


def read_stage_table(path: Path) -> pd.DataFrame:
    """The published-stage columns of one ``_braakstage.tsv``, checked, keyed by scan,
    reference and method; :class:`UnusableFile` when it cannot be used."""
    table = read_tsv(path)
    missing = [c for c in ["method", *PUBLISHED_STAGE_COLUMNS] if c not in table]
    if missing:
        raise UnusableFile(path, f"lacks column(s) {', '.join(missing)}")
    methods = table["method"]
    for method in methods:
        if not isinstance(method, str) or not (method == "SUVR" or method.startswith("SUVR-PVC-")):
            raise UnusableFile(path, f"method {method!r} is neither SUVR nor SUVR-PVC-<method>")
    if methods.duplicated().any():
        raise UnusableFile(path, f"repeats method {methods[methods.duplicated()].iloc[0]}")
    labels = "method " + methods
    stage = _numbers(path, table, "braak_stage", labels)
    wrong = (stage.notna() & ~stage.isin([0, 2, 4, 6])).to_numpy()
    if wrong.any():
        where = wrong.nonzero()[0][0]
        raise UnusableFile(
            path, f"braak_stage of {labels.iloc[where]} is {stage.iloc[where]:g}, not 0, 2, 4 or 6"
        )
    for label, value in zip(labels, table["braak_conforming"], strict=True):
        if not pd.isna(value) and not isinstance(value, bool | np.bool_):
            raise UnusableFile(path, f"braak_conforming of {label} is {value!r}, not true/false")
    table = table.assign(braak_stage=stage.astype("Int64"))
    table = table[["method", *PUBLISHED_STAGE_COLUMNS]].rename(columns=PUBLISHED_STAGE_COLUMNS)
    return table.assign(scan=scan_stem(path.name), reference=entities(path.name).get("label"))


#: The per-scan prediction ``--classify`` writes (docs/outputs.md).
CLASSIFICATION_SUFFIX = naming.CLASSIFICATION_SUFFIX
#: The classifier's labels; only scans with these diagnoses enter its metrics.
AD_CN = ("AD", "CN")
#: Prediction columns, from the JSON's fields.
PREDICTION_FIELDS = {
    "ADProbability": "ad_probability", "Label": "label", "Threshold": "threshold",
    "ModelName": "model_name", "ModelVersion": "model_version", "ModelSHA256": "model_sha256",
}  # fmt: skip
MODEL_COLUMNS = ["model_name", "model_version", "model_sha256"]


def find_classifications(output_dir: Path) -> list[Path]:
    """Every per-scan prediction a ``--classify`` run committed."""
    return sorted(output_dir.glob(f"sub-*/**/pet/*{CLASSIFICATION_SUFFIX}"))


def _fraction(path: Path, record: dict, key: str) -> float:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise UnusableFile(path, f"{key} is {value!r}, not a number from 0 to 1")
    return float(value)


def read_classification(path: Path) -> dict:
    """One scan's prediction, checked: P(AD) and threshold in [0, 1], a label that agrees with
    them, model fields as texts (n/a when absent); :class:`UnusableFile` otherwise."""
    record = read_json(path)
    probability, threshold = (
        _fraction(path, record, "ADProbability"),
        _fraction(path, record, "Threshold"),
    )
    expected = "AD" if probability >= threshold else "CN"
    if record.get("Label") != expected:
        raise UnusableFile(
            path, f"Label is {record.get('Label')!r} but ADProbability {probability:g} and "
            f"Threshold {threshold:g} make it {expected}",
        )  # fmt: skip
    row = {"scan": scan_stem(path.name), "ad_probability": probability, "label": expected,
           "threshold": threshold}  # fmt: skip
    for key in ("ModelName", "ModelVersion", "ModelSHA256"):
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise UnusableFile(path, f"{key} is {value!r}, not a text")
        row[PREDICTION_FIELDS[key]] = value if value is not None else "n/a"
    return row


@dataclass
class GroupInputs:
    """What :func:`gather` read: the long table, the published stages, what was left out, and
    the ``--classify`` predictions (None when no scan has one)."""

    long: pd.DataFrame
    stages: pd.DataFrame | None
    skipped: list[Skipped] = field(default_factory=list)
    predictions: pd.DataFrame | None = None


LONG_COLUMNS = [*ID_COLUMNS, "atlas", "region", "suvr", *TABLE_COLUMNS[1:]]


def gather(output_dir: Path) -> GroupInputs:
    """Read and check every file of every scan the participant level committed; write nothing.

    A scan with any unusable file (a regional table, its sidecar, its ``_braakstage.tsv``, its
    ``_qc.json``) is left out whole, every method and atlas of it, with one warning per
    problem naming the file. Leaving out only the damaged atlas would give that scan a wide
    row with empty region columns beside complete ones: a model fitted on the wide table then
    drops it for some outcomes and not others, and the Braak estimate or positivity of a scan
    whose Braak or meta-temporal table is gone would be n/a without a reason. A scan that is
    absent is visible (it is listed under ``Skipped`` in the sidecars, and its scan has no
    row); a half-filled row is not. The participant's other scans (other sessions) stay.

    Raises :class:`NothingToGather` when no usable table is left.
    """
    problems: dict[str, list[UnusableFile]] = {}
    frames: list[tuple[str, pd.DataFrame]] = []
    seen: dict[tuple, Path] = {}
    for path in find_tables(output_dir):
        scan = scan_stem(path.name)
        try:
            frame = read_table(path)
            first = frame.iloc[0]
            key = (scan, first["atlas"], first["reference"], first["method"])
            if key in seen:
                raise UnusableFile(
                    path,
                    f"holds the same scan, atlas, reference region and method as {seen[key].name}",
                )
            seen[key] = path
        except UnusableFile as error:
            problems.setdefault(scan, []).append(error)
            continue
        frames.append((scan, frame))
    stages: list[tuple[str, pd.DataFrame]] = []
    stage_keys: dict[tuple, Path] = {}
    for path in find_stage_tables(output_dir):
        scan = scan_stem(path.name)
        try:
            table = read_stage_table(path)
            for method in table["method"]:
                key = (scan, entities(path.name).get("label"), method)
                if key in stage_keys and stage_keys[key] != path:
                    raise UnusableFile(
                        path, f"stages {method} of this scan again, as {stage_keys[key].name} does"
                    )
                stage_keys[key] = path
        except UnusableFile as error:
            problems.setdefault(scan, []).append(error)
            continue
        stages.append((scan, table))
    for scan in dict.fromkeys(scan for scan, _ in frames):
        try:
            check_qc_record(qc_json(output_dir, scan))
        except UnusableFile as error:
            problems.setdefault(scan, []).append(error)
    predictions = []
    for path in find_classifications(output_dir):
        try:
            predictions.append(read_classification(path))
        except UnusableFile as error:
            problems.setdefault(scan_stem(path.name), []).append(error)
    skipped: list[Skipped] = []
    for scan, errors in problems.items():
        for error in errors:
            _skip(skipped, error, f"scan {scan} left out of the group tables", scan)
    kept = [frame for scan, frame in frames if scan not in problems]
    if not kept:
        if problems:
            raise NothingToGather(
                f"no usable regional table under {output_dir}: every scan "
                f"was left out ({len(skipped)} damaged file(s), warnings "
                "above); nothing written"
            )
        raise NothingToGather(
            f"no regional tables under {output_dir}; run the participant "
            "level first (nothing written)"
        )
    long = pd.concat(kept, ignore_index=True).rename(columns={"suvr_mean": "suvr"})
    kept_stages = [table for scan, table in stages if scan not in problems]
    stage_frame = pd.concat(kept_stages, ignore_index=True) if kept_stages else None
    kept_predictions = [row for row in predictions if row["scan"] not in problems]
    prediction_frame = pd.DataFrame(kept_predictions) if kept_predictions else None
    return GroupInputs(long[LONG_COLUMNS], stage_frame, skipped, prediction_frame)


def long_table(output_dir: Path) -> pd.DataFrame:
    """One row per scan, atlas and region; ``suvr`` is the participant table's ``suvr_mean``.

    Scans with an unusable file are left out (:func:`gather`); empty when nothing is usable.
    """
    try:
        return gather(output_dir).long
    except NothingToGather:
        return pd.DataFrame(columns=LONG_COLUMNS)


def wide_column(atlas: str, region: str) -> str:
    """Formula-safe column name of one region's SUVR: ``Braak_BraakI``, ``DK_left_entorhinal``."""
    return re.sub(r"[^A-Za-z0-9]", "_", f"{atlas}_{region}")


def wide_table(long: pd.DataFrame) -> pd.DataFrame:
    """One row per scan, one SUVR column per atlas region (reference rows dropped: all 1)."""
    regions = long[~long["region"].str.startswith("reference-")]
    columns = [wide_column(a, r) for a, r in zip(regions["atlas"], regions["region"], strict=True)]
    regions = regions.assign(column=columns)
    key = ["scan", "reference", "method"]
    values = regions.pivot(index=key, columns="column", values="suvr")
    values = values.reindex(columns=list(dict.fromkeys(columns))).reset_index()
    ids = long[ID_COLUMNS].drop_duplicates(subset=key)
    return ids.merge(values, on=key, how="inner").rename_axis(columns=None)


def _check_ids(path: Path, frame: pd.DataFrame, column: str, prefix: str) -> None:
    """Refuse a table without ``column``, or with an id missing, repeated or lacking ``prefix``."""
    if column not in frame:
        raise UnusableFile(path, f"has no {column} column")
    ids = frame[column]
    if ids.isna().any():
        raise UnusableFile(path, f"a row has no {column}")
    ids = ids.astype(str)
    if ids.duplicated().any():
        raise UnusableFile(
            path, f"{column} {ids[ids.duplicated()].iloc[0]} is on more than one row"
        )
    wrong = ids[~ids.str.startswith(prefix)]
    if len(wrong):
        raise UnusableFile(path, f"{column} {wrong.iloc[0]!r} does not start with {prefix}")


def read_participants(bids_dir: Path) -> pd.DataFrame | None:
    """participants.tsv, checked (:class:`UnusableFile`); None when there is none."""
    path = bids_dir / "participants.tsv"
    if not path.exists() and not path.is_symlink():
        return None
    frame = read_tsv(path, dtype={"participant_id": str})
    _check_ids(path, frame, "participant_id", "sub-")
    return frame


def read_sessions(
    bids_dir: Path, skipped: list[Skipped] | None = None, reserved: frozenset[str] = frozenset()
) -> pd.DataFrame | None:
    """Every usable ``sub-*_sessions.tsv`` stacked, with a participant_id column; a file that
    cannot be used is left out with a warning (its participant keeps participants.tsv values),
    and so are its ``reserved`` columns."""
    frames = []
    for path in sorted(bids_dir.glob("sub-*/sub-*_sessions.tsv")):
        subject = path.parent.name
        try:
            if path.name != f"{subject}_sessions.tsv":
                raise UnusableFile(path, f"is not named for its folder {subject}")
            frame = read_tsv(path)
            _check_ids(path, frame, "session_id", "ses-")
        except UnusableFile as error:
            _skip(
                skipped,
                error,
                f"its per-visit values are not used ({subject} keeps those of participants.tsv)",
            )
            continue
        frame = _without_clashes(path, frame, reserved, skipped)
        frames.append(frame.assign(participant_id=subject))
    return pd.concat(frames, ignore_index=True) if frames else None


def _without_clashes(
    path: Path, frame: pd.DataFrame, reserved: set[str], skipped: list[Skipped] | None
) -> pd.DataFrame:
    """Leave out (with a warning) columns that would replace the group tables' own."""
    clash = [str(c) for c in frame.columns if c in reserved]
    if clash:
        _skip(
            skipped,
            UnusableFile(
                path,
                f"column(s) {', '.join(clash)} have the names of the group tables' own columns",
            ),
            "those columns are left out",
        )
    return frame.drop(columns=clash)


def add_demographics(
    wide: pd.DataFrame, bids_dir: Path, skipped: list[Skipped] | None = None
) -> pd.DataFrame:
    """Merge participants.tsv; per-visit values in sessions.tsv replace the baseline ones.

    A participants.tsv that cannot be used (not a TSV, ragged, no or repeated participant_id)
    is left out with a warning and the group tables are written without its columns, rather
    than failing the whole group level: the SUVR values do not depend on it. Without its
    ``diagnosis`` the Braak estimate cannot use the reference-group thresholds and falls back
    to the cut-point rule, which ``braak_rule`` of every row says. A sessions.tsv that cannot
    be used is left out the same way. Problems are appended to ``skipped``.
    """
    reserved = {*wide.columns, *STAGING_COLUMNS, *PUBLISHED_STAGE_COLUMNS.values()}
    try:
        participants = read_participants(bids_dir)
    except UnusableFile as error:
        participants = None
        _skip(
            skipped,
            error,
            "continuing without it: the group tables have no participants.tsv "
            "columns, and without diagnosis the Braak estimate uses the "
            "cut-point rule (see braak_rule)",
        )
    if participants is not None:
        participants = _without_clashes(
            bids_dir / "participants.tsv", participants, reserved - {"participant_id"}, skipped
        )
        wide = wide.merge(participants, on="participant_id", how="left")
    sessions = read_sessions(
        bids_dir, skipped, frozenset(reserved - {"participant_id", "session_id"})
    )
    if sessions is not None and wide["session_id"].notna().any():
        keys = ["participant_id", "session_id"]
        indexed = wide.set_index(keys)
        visit = sessions.set_index(keys)
        for column in visit.columns:
            values = visit[column].reindex(indexed.index)
            if column in indexed:
                indexed[column] = values.where(values.notna(), indexed[column])
            else:
                indexed[column] = values
        wide = indexed.reset_index()[[*wide.columns, *[c for c in visit if c not in wide]]]
    return wide


def _reference_group(rows: pd.DataFrame, diagnosis: str) -> pd.DataFrame:
    """Baseline scans of the reference diagnosis (one per participant)."""
    if "diagnosis" not in rows:
        return rows.iloc[0:0]
    chosen = rows[rows["diagnosis"].astype(str) == diagnosis]
    return chosen.sort_values(["participant_id", "session_id"]).drop_duplicates("participant_id")


def add_staging(
    wide: pd.DataFrame, cutpoint: float | None = None, reference_diagnosis: str = "CN"
) -> pd.DataFrame:
    """Tau positivity and Braak stage estimate per scan (rules: :mod:`taupet_bids.staging`)."""
    braak_columns = {stage: wide_column("Braak", f"Braak{stage}") for stage in staging.STAGES}
    meta = wide_column("MetaTemporal", "metatemporal")
    out = []
    for _, rows in wide.groupby(["tracer_name", "reference", "method"], sort=False, dropna=False):
        rows = rows.copy()
        cut = staging.cutpoint_for(rows["tracer_name"].iloc[0], cutpoint)
        braak = rows.reindex(columns=list(braak_columns.values())).set_axis(
            list(braak_columns), axis=1
        )
        reference = _reference_group(rows, reference_diagnosis)
        thresholds = staging.reference_thresholds(braak.loc[reference.index])
        if thresholds is not None:
            rule = f"{reference_diagnosis} mean + {staging.N_SD:g} SD (n={len(reference)})"
        elif cut is not None:
            thresholds, rule = staging.fixed_thresholds(cut), f"cut-point {cut.value:g} per stage"
        metatemporal = rows[meta] if meta in rows else pd.Series(np.nan, index=rows.index)
        rows["tau_cutpoint"] = cut.value if cut else np.nan
        rows["tau_positive"] = [staging.is_positive(v, cut) for v in metatemporal]
        if thresholds is None:
            rows["braak_stage_estimate"], rows["braak_conforming"] = None, None
            rows["braak_rule"] = "n/a (no reference group and no cut-point)"
        else:
            estimates = [
                staging.braak_stage(values, thresholds) for values in braak.to_dict("records")
            ]
            rows["braak_stage_estimate"] = [e.stage for e in estimates]
            rows["braak_conforming"] = [e.conforming for e in estimates]
            rows["braak_rule"] = rule
        out.append(rows)
    return pd.concat(out) if out else wide


def add_published_stage(wide: pd.DataFrame, stages: pd.DataFrame | None) -> pd.DataFrame:
    """Copy each scan's published-threshold Braak stage (one row per method) into ``wide``;
    ``stages`` are the checked ``_braakstage.tsv`` rows (:func:`gather`)."""
    if stages is None:
        return wide.assign(**{column: None for column in PUBLISHED_STAGE_COLUMNS.values()})
    return wide.merge(stages, on=["scan", "reference", "method"], how="left")


def qc_table(output_dir: Path, wide: pd.DataFrame) -> pd.DataFrame:
    """One row per scan: motion, registration scores, flags (see :mod:`taupet_bids.reports.qc`).

    ``wide`` has a row per scan and method (uncorrected, each PVC method); the staging flags
    of all of a scan's rows are gathered on its one QC row, naming the method.
    """
    rows = []
    for name, scan_rows in wide.groupby("scan", sort=False):
        metrics = qc.scan_metrics(output_dir, name)
        flags = list(metrics["flags"])
        for _, row in scan_rows.iterrows():
            method = f" ({row['method']})" if "method" in row and len(scan_rows) > 1 else ""
            if row.get("braak_conforming") is False:
                flags.append(f"Braak pattern non-conforming{method}")
            if row.get("braak_published_conforming") is False:
                flags.append(f"Braak composites non-conforming (published thresholds){method}")
        first = scan_rows.iloc[0]
        ids = {key: first[key] for key in ("scan", "participant_id", "session_id")}
        numbers = {k: v for k, v in metrics.items() if k not in ("normalisation_flags", "flags")}
        rows.append({**ids, **numbers, "flags": "; ".join(dict.fromkeys(flags))})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ClassificationTables:
    """The group level's ``--classify`` tables; ``metrics`` and ``other`` are None without a
    diagnosis column."""

    predictions: pd.DataFrame
    metrics: pd.DataFrame | None
    other: pd.DataFrame | None


def _diagnoses(wide: pd.DataFrame) -> pd.DataFrame:
    """scan -> participant, session and (when participants/sessions.tsv has one) diagnosis."""
    columns = ["scan", "participant_id", "session_id"]
    if "diagnosis" in wide:
        columns.append("diagnosis")
    ids = wide[columns].drop_duplicates("scan")
    if "diagnosis" in ids:
        ids = ids.assign(diagnosis=ids["diagnosis"].map(
            lambda value: "n/a" if pd.isna(value) else str(value).strip()
        ))  # fmt: skip
    return ids


def _model_metrics(rows: pd.DataFrame) -> list[dict]:
    """The AD-vs-CN metrics of one model's AD and CN scans, one row per metric."""
    is_ad = (rows["diagnosis"] == "AD").to_numpy()
    found = classification_metrics.ad_cn_metrics(
        rows["ad_probability"].to_numpy(), (rows["label"] == "AD").to_numpy(), is_ad,
        rows["participant_id"].astype(str).to_numpy(),
    )  # fmt: skip
    counts = {"n_scans": len(rows), "n_participants": rows["participant_id"].nunique(),
              "n_AD": int(is_ad.sum()), "n_CN": int((~is_ad).sum())}  # fmt: skip
    return [
        {"metric": name, "value": estimate.value, "ci_low": estimate.low,
         "ci_high": estimate.high, "ci_resamples": estimate.resamples, **counts}
        for name, estimate in found.items()
    ]  # fmt: skip


def _other_diagnoses(rows: pd.DataFrame) -> list[dict]:
    """Scans of one model whose diagnosis is neither AD nor CN: counts and mean P(AD)."""
    return [
        {"diagnosis": diagnosis, "n_scans": len(group),
         "n_participants": group["participant_id"].nunique(),
         "n_labelled_AD": int((group["label"] == "AD").sum()),
         "mean_ad_probability": float(group["ad_probability"].mean())}
        for diagnosis, group in rows.groupby("diagnosis", sort=True)
    ]  # fmt: skip


def classification_tables(predictions: pd.DataFrame, wide: pd.DataFrame) -> ClassificationTables:
    """Predictions of the scans in the group tables, and per model, where diagnoses exist, the
    AD-vs-CN metrics with participant-bootstrap 95 % intervals and the other diagnoses apart.

    Only scans whose diagnosis is exactly AD or CN enter the metrics: MCI, other labels and
    scans without a diagnosis (``n/a``) are counted in ``other`` with their mean P(AD).
    """
    table = _diagnoses(wide).merge(predictions, on="scan", how="inner")
    if "diagnosis" not in table:
        return ClassificationTables(table, None, None)
    metrics, other = [], []
    for model, rows in table.groupby(MODEL_COLUMNS, sort=True, dropna=False):
        ids = dict(zip(MODEL_COLUMNS, model, strict=True))
        labelled = rows[rows["diagnosis"].isin(AD_CN)]
        if len(labelled):
            metrics += [{**ids, **row} for row in _model_metrics(labelled)]
        other += [{**ids, **row} for row in _other_diagnoses(rows[~rows["diagnosis"].isin(AD_CN)])]
    metric_columns = [*MODEL_COLUMNS, "metric", "value", "ci_low", "ci_high", "ci_resamples",
                      "n_scans", "n_participants", "n_AD", "n_CN"]  # fmt: skip
    other_columns = [*MODEL_COLUMNS, "diagnosis", "n_scans", "n_participants", "n_labelled_AD",
                     "mean_ad_probability"]  # fmt: skip
    return ClassificationTables(
        table, pd.DataFrame(metrics, columns=metric_columns),
        pd.DataFrame(other, columns=other_columns),
    )  # fmt: skip


#: The group level's ``--classify`` tables (``group/<name>.tsv``).
CLASSIFICATION_TABLES = ("classification", "classification_metrics", "classification_other")
_BOOTSTRAP = (
    f"percentile interval ({classification_metrics.LEVEL:.0%}) of "
    f"{classification_metrics.RESAMPLES} bootstrap resamples of participants (all of a "
    f"participant's AD/CN scans together), NumPy seed {classification_metrics.SEED}"
)


SIDECARS = {
    "suvr_long": {
        "Description": "every participant regional SUVR table stacked: one row per scan, atlas "
        "and region; values copied from the participant tables",
        "suvr": "the participant table's suvr_mean",
        "synthetic": "true for a synthetic image's rows (--synthesize: predicted from another "
        "modality, not measured; method SUVR-<desc>); false for measured scans",
    },
    "suvr_wide": {
        "Description": "one row per scan: SUVR (participant tables' suvr_mean) per atlas region "
        "as <atlas>_<region> columns, participants.tsv/sessions.tsv columns, positivity, "
        "data-driven Braak stage estimate and the participant level's published-threshold "
        "Braak stage (rules and sources: docs/group.md, taupet_bids/staging.py)",
        "braak_stage_published": "braak_stage of the participant _braakstage.tsv table for "
        "this scan and method (0, 2, 4, 6; n/a: no published threshold set applies, e.g. "
        "uncorrected SUVR)",
        "braak_stage_published_label": "0, I-II, III-IV or V-VI",
        "braak_published_conforming": "false when an earlier Braak composite is not abnormal",
        "braak_published_thresholds": "key of the published threshold set (Maass2017_PVC)",
        "synthetic": "true for a synthetic image's row (--synthesize: predicted from another "
        "modality, not measured; method SUVR-<desc>); false for measured scans",
    },
    "qc": {"Description": "per-scan quality control: motion, registration scores, flags"},
    "classification": {
        "Description": "--classify: one row per scan of the group tables with a prediction: "
        "P(AD), the label at the model's threshold, the model, and the diagnosis of "
        "participants.tsv/sessions.tsv when there is one",
    },
    "classification_metrics": {
        "Description": "per model: accuracy, sensitivity (AD labelled AD), specificity (CN "
        "labelled CN) at the model's threshold and ROC AUC of P(AD), on the scans whose "
        "diagnosis is AD or CN only",
        "ci_low": f"lower end of the {_BOOTSTRAP}",
        "ci_high": f"upper end of the {_BOOTSTRAP}",
        "ci_resamples": "resamples in which the metric was defined (both classes drawn for "
        "ROC AUC)",
    },
    "classification_other": {
        "Description": "per model, scans whose diagnosis is neither AD nor CN (MCI, other "
        "labels, n/a: no diagnosis): kept out of the AD-vs-CN metrics; counts and mean P(AD)",
    },
}


def _write(frame: pd.DataFrame, path: Path, sidecar: dict) -> None:
    frame.to_csv(path, sep="\t", index=False, na_rep="n/a")  # full precision: values are copies
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")


@dataclass(frozen=True)
class GroupResult:
    """The group report's path, and every file left out (also in the sidecars' ``Skipped``)."""

    report: Path
    skipped: tuple[Skipped, ...]

    def summary(self) -> str:
        """One line saying what the group tables were written without ("" when nothing)."""
        if not self.skipped:
            return ""
        scans = sorted({s.scan for s in self.skipped if s.scan})
        others = sorted({s.file.name for s in self.skipped if not s.scan})
        parts = [f"{len(scans)} scan(s) ({_listed(scans)})"] if scans else []
        if others:
            parts.append(f"{len(others)} BIDS file(s), in whole or in part ({_listed(others)})")
        return (
            f"group tables written leaving out {' and '.join(parts)}; the warnings above and "
            f"Skipped in {GROUP_DIR}/suvr_wide.json say why"
        )


def write_group(
    inputs: GroupInputs,
    bids_dir: Path,
    output_dir: Path,
    cutpoint: float | None = None,
    reference_diagnosis: str = "CN",
) -> GroupResult:
    """Write the group tables and report of ``inputs`` (:func:`gather`) in ``OUTPUT_DIR/group``.

    Nothing is written before this; a broken participants.tsv or sessions.tsv is left out here
    (:func:`add_demographics`) and recorded with the scans :func:`gather` left out.
    """
    from taupet_bids.reports.group import write_group_report

    skipped = list(inputs.skipped)
    wide = wide_table(inputs.long)
    wide = add_staging(add_demographics(wide, bids_dir, skipped), cutpoint, reference_diagnosis)
    wide = add_published_stage(wide, inputs.stages)
    quality = qc_table(output_dir, wide)
    folder = output_dir / GROUP_DIR
    folder.mkdir(parents=True, exist_ok=True)
    left_out = {"Skipped": [entry.record() for entry in skipped]}
    _write(inputs.long, folder / "suvr_long.tsv", SIDECARS["suvr_long"] | left_out)
    _write(wide, folder / "suvr_wide.tsv", SIDECARS["suvr_wide"] | left_out)
    _write(quality, folder / "qc.tsv", SIDECARS["qc"] | left_out)
    tables: dict[str, pd.DataFrame | None] = {}
    if inputs.predictions is not None:
        classified = classification_tables(inputs.predictions, wide)
        tables = dict(zip(CLASSIFICATION_TABLES, (classified.predictions, classified.metrics,
                                                  classified.other), strict=True))  # fmt: skip
    for name in CLASSIFICATION_TABLES:
        if tables.get(name) is not None:
            _write(tables[name], folder / f"{name}.tsv", SIDECARS[name] | left_out)
        else:  # a table of an earlier group run would describe other outputs
            (folder / f"{name}.tsv").unlink(missing_ok=True)
            (folder / f"{name}.json").unlink(missing_ok=True)
    LOG.info("Group tables: %d scan(s) of %d participant(s) in %s", wide["scan"].nunique(),
             wide["participant_id"].nunique(), folder)  # fmt: skip
    lines = [entry.line() for entry in skipped]
    report = write_group_report(folder, inputs.long, wide, quality, lines, tables)
    result = GroupResult(report, tuple(skipped))
    if result.skipped:
        LOG.warning("%s", result.summary())
    return result


def run_group(
    bids_dir: Path,
    output_dir: Path,
    cutpoint: float | None = None,
    reference_diagnosis: str = "CN",
) -> Path:
    """Gather, check and write the group tables and report; return the report's path.

    Raises :class:`NothingToGather` (a ``FileNotFoundError``) before writing anything when no
    usable participant table is found.
    """
    result = write_group(gather(output_dir), bids_dir, output_dir, cutpoint, reference_diagnosis)
    return result.report
