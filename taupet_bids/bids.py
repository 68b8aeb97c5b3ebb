"""Finding PET scans in a BIDS dataset and refusing, with a clear message, the ones we cannot use.

Everything a quantification depends on is checked here, before any workflow is built, so a bad
file fails in a second with one line naming it instead of an hour later inside a Nipype node.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taupet_bids import atlases
from taupet_bids.errors import InputError
from taupet_bids.image_headers import load_image
from taupet_bids.tracers import TRACERS, Tracer, identify_tracer

#: Sidecar fields without which frames cannot be selected or values interpreted.
QUANTIFICATION_FIELDS = ("FrameTimesStart", "FrameDuration", "Units", "TracerName")

#: The rest of the fields BIDS-PET marks REQUIRED: reported as warnings when missing.
OTHER_REQUIRED_FIELDS = (
    "Manufacturer",
    "ManufacturersModelName",
    "TracerRadionuclide",
    "InjectedRadioactivity",
    "InjectedRadioactivityUnits",
    "InjectedMass",
    "InjectedMassUnits",
    "SpecificRadioactivity",
    "SpecificRadioactivityUnits",
    "ModeOfAdministration",
    "TimeZero",
    "ScanStart",
    "InjectionStart",
    "AcquisitionMode",
    "ImageDecayCorrected",
    "ImageDecayCorrectionTime",
    "ReconMethodName",
    "ReconMethodParameterLabels",
    "ReconFilterType",
    "AttenuationCorrection",
)

#: Activity-concentration units and the factor that converts them to Bq/mL (keys normalised by
#: ``_unit_key``). 1 cc = 1 mL; 1 nCi = 37 Bq.
ACTIVITY_UNITS = {
    "bq/ml": 1.0,
    "kbq/ml": 1e3,
    "mbq/ml": 1e6,
    "nci/ml": 37.0,
    "uci/ml": 37e3,
    "mci/ml": 37e6,
}

#: Units accepted without a conversion to Bq/mL. An SUV image is activity concentration divided
#: by injected dose per body weight: the SUVR, a ratio of two regions, is the same either way.
SUV_UNITS = ("suv", "g/ml")

#: Frames may overhang the requested window by this much (minutes) and still count as inside.
WINDOW_TOLERANCE_MIN = 1.0

#: Largest sidecar read (bytes). A BIDS-PET sidecar is a few kB; 1 MiB holds thousands of frames.
MAX_SIDECAR_BYTES = 2**20

#: Deepest nesting of lists and objects in a sidecar. BIDS-PET needs 2 (an object of lists);
#: deeper is refused before anything walks it.
MAX_SIDECAR_DEPTH = 16

#: Largest frame time or duration (seconds from TimeZero, either sign): 30 days. Larger numbers
#: are in the wrong unit or corrupt, and would overflow the arithmetic on frame times.
MAX_FRAME_TIME_S = 30 * 24 * 3600.0

#: A frame may start this many seconds before the previous one ends (rounding in the sidecar).
FRAME_OVERLAP_TOLERANCE_S = 1.0

#: Fewest non-zero voxels (a fraction of the image) a PET or T1w image must have; a brain fills
#: far more of any field of view than 1%.
MIN_NONZERO_FRACTION = 0.01

_PET_EXTENSIONS = [".nii", ".nii.gz"]
_ENTITY_NAMES = {"trc": "tracer", "rec": "reconstruction", "run": "run", "task": "task"}


@dataclass(frozen=True)
class PetScan:
    """One PET image to process, with the files that go with it.

    ``entities`` holds the BIDS ``trc``, ``rec``, ``run`` and ``task`` labels present in the name.
    ``t1w`` is the subject's T1w from the same session; failing that, a T1w without a session;
    else None (the MR-less path). A T1w from another session is never used, because anatomy can
    change between visits. When several T1w match, the first in sorted order is taken.
    """

    subject: str
    session: str | None
    pet: Path
    sidecar: Path | None
    entities: dict[str, str] = field(default_factory=dict)
    t1w: Path | None = None


@dataclass(frozen=True)
class CheckedScan:
    """A PET scan that passed every check, with the facts the workflows need.

    Frame times are minutes post injection for every frame of the image; ``frames`` indexes the
    ones inside ``window_min``. ``units_scale`` multiplies image values into Bq/mL (None for SUV
    images, which have no activity scale but give the same SUVR).
    """

    scan: PetScan
    tracer: Tracer | None
    tracer_name: str
    reference_region: str
    window_min: tuple[float, float]
    frames: tuple[int, ...]
    frame_start_min: tuple[float, ...]
    frame_end_min: tuple[float, ...]
    frame_duration_min: tuple[float, ...]
    units: str
    units_scale: float | None
    metadata: dict[str, Any]
    warnings: tuple[str, ...] = ()

    @property
    def n_frames(self) -> int:
        return len(self.frame_start_min)

    @property
    def weights(self) -> tuple[float, ...]:
        """Durations (minutes) of the selected frames: the weights of a time-weighted average."""
        return tuple(self.frame_duration_min[i] for i in self.frames)


# --------------------------------------------------------------------------------------------
# Dataset queries


def _strip(label: str, prefix: str) -> str:
    return label[len(prefix) :] if label.startswith(prefix) else label


def _layout(bids_dir: Path):
    from bids import BIDSLayout
    from bids.layout.index import BIDSLayoutIndexer

    if not (bids_dir / "dataset_description.json").is_file():
        raise InputError(
            bids_dir / "dataset_description.json",
            f"missing, so {bids_dir} is not a BIDS dataset",
            "point bids_dir at the dataset root (the folder holding dataset_description.json)",
        )
    try:
        # No metadata indexing: one unreadable sidecar must not stop every participant (it
        # is reported for its own scan by check_pet_scan), and indexing is faster without it.
        return BIDSLayout(
            bids_dir,
            validate=False,
            derivatives=False,
            indexer=BIDSLayoutIndexer(validate=False, index_metadata=False),
        )
    except Exception as err:  # pybids raises several unrelated types for a bad dataset
        raise InputError(bids_dir, f"pybids cannot index the dataset ({err})") from err


def _t1w_for(layout, subject: str, session: str | None) -> Path | None:
    from bids.layout import Query

    query = dict(subject=subject, suffix="T1w", datatype="anat", extension=_PET_EXTENSIONS)
    candidates = layout.get(session=session, **query) if session else []
    if not candidates:
        candidates = layout.get(session=Query.NONE, **query)
    paths = sorted(Path(f.path) for f in candidates)
    return paths[0] if paths else None


def _sidecar_for(layout, pet: Path) -> Path | None:
    """The image's own ``_pet.json``, else the nearest one BIDS inheritance would apply."""
    name = pet.name.removesuffix(".gz").removesuffix(".nii") + ".json"
    own = pet.with_name(name)
    if own.is_file():
        return own
    nearest = layout.get_nearest(str(pet), suffix="pet", extension=".json", strict=True)
    return Path(nearest) if nearest else None


def _same_tracer(wanted: str, trc: str | None) -> bool:
    """A ``--tracer`` filter matches the trc label itself or any alias of the same tracer."""
    if trc is None:
        return False
    if trc.lower() == wanted.lower():
        return True
    tracer = identify_tracer(wanted)
    return tracer is not None and identify_tracer(None, trc) == tracer


def non_tau_tracer(scan: PetScan) -> Tracer | None:
    """The scan's tracer when it is a known tracer of something other than tau (FDG, PBR28).

    Read from the sidecar's ``TracerName``, else the ``trc-`` label; an unreadable sidecar is
    left to :func:`check_pet_scan` to report, so here it only means "go by the label".
    """
    name = None
    try:
        # The preflight's reader: a hostile sidecar (huge, deeply nested) is refused, not read.
        meta = _read_sidecar(scan)[1]
        name = meta.get("TracerName") if isinstance(meta, dict) else None
    except (InputError, OSError):
        name = None
    tracer = identify_tracer(str(name) if name else None, scan.entities.get("trc"))
    return tracer if tracer is not None and tracer.target != "tau" else None


def collect_scans(
    bids_dir: str | Path,
    participant_labels: list[str] | tuple[str, ...] | None = None,
    session: str | None = None,
    tracer: str | None = None,
    rec: str | None = None,
    run: int | str | None = None,
    allow_none: bool = False,
) -> list[PetScan]:
    """List the PET scans to process, with sidecar and T1w, sorted by subject then file name.

    Labels are accepted with or without their ``sub-``/``ses-`` prefix. An unknown participant,
    or filters that leave no PET scan, raise ``InputError``: a BIDS App with nothing to do has
    almost always been given the wrong arguments. With ``allow_none`` (``--synthesize``, where
    T1w-only sessions are work too) no PET scan gives an empty list.
    """
    bids_dir = Path(bids_dir).resolve()
    layout = _layout(bids_dir)
    available = sorted(layout.get_subjects())
    subjects = available
    if participant_labels:
        subjects = sorted({_strip(str(label), "sub-") for label in participant_labels})
        unknown = [s for s in subjects if s not in available]
        if unknown:
            raise InputError(
                bids_dir,
                f"participant label(s) {', '.join(unknown)} not found; "
                f"available: {', '.join(available) or 'none'}",
                "check --participant-label",
            )
    filters: dict[str, Any] = {}
    if session:
        filters["session"] = _strip(session, "ses-")
    if rec:
        filters["reconstruction"] = _strip(rec, "rec-")
    if run is not None:
        filters["run"] = int(_strip(str(run), "run-"))
    files = layout.get(
        subject=subjects, datatype="pet", suffix="pet", extension=_PET_EXTENSIONS, **filters
    )
    scans = []
    for bids_file in sorted(files, key=lambda f: f.path):
        ents = bids_file.get_entities()
        entities = {key: str(ents[name]) for key, name in _ENTITY_NAMES.items() if name in ents}
        if tracer and not _same_tracer(_strip(tracer, "trc-"), entities.get("trc")):
            continue
        pet = Path(bids_file.path)
        scans.append(
            PetScan(
                subject=ents["subject"],
                session=ents.get("session"),
                pet=pet,
                sidecar=_sidecar_for(layout, pet),
                entities=entities,
                t1w=_t1w_for(layout, ents["subject"], ents.get("session")),
            )
        )
    if not scans and not allow_none:
        asked = {"participant": participant_labels, "session": session, "tracer": tracer}
        asked |= {"rec": rec, "run": run}
        shown = ", ".join(f"{k}={v}" for k, v in asked.items() if v) or "no filters"
        raise InputError(bids_dir, f"no PET scan (*_pet.nii[.gz]) matches {shown}")
    return scans


@dataclass(frozen=True)
class T1wSession:
    """The T1w of one subject and session (``session`` None: a T1w without a session)."""

    subject: str
    session: str | None
    t1w: Path


def collect_t1w_sessions(
    bids_dir: str | Path,
    participant_labels: list[str] | tuple[str, ...] | None = None,
    session: str | None = None,
) -> list[T1wSession]:
    """One T1w per subject and session (the first in sorted order, as a PET scan's T1w is
    chosen), for ``--synthesize``: a session with a T1w and no PET still gets synthetic PET."""
    layout = _layout(Path(bids_dir).resolve())
    filters: dict[str, Any] = {}
    if participant_labels:
        filters["subject"] = sorted({_strip(str(label), "sub-") for label in participant_labels})
    if session:
        filters["session"] = _strip(session, "ses-")
    files = layout.get(suffix="T1w", datatype="anat", extension=_PET_EXTENSIONS, **filters)
    found: dict[tuple[str, str | None], Path] = {}
    for bids_file in sorted(files, key=lambda f: f.path):
        ents = bids_file.get_entities()
        key = (ents["subject"], ents.get("session"))
        found.setdefault(key, Path(bids_file.path))
    return [T1wSession(subject, ses, t1w) for (subject, ses), t1w in found.items()]


# --------------------------------------------------------------------------------------------
# The BIDS validator


def _validator_executable() -> Path:
    name = "bids-validator-deno"
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    if found is None:
        raise InputError(
            name,
            "executable not found next to the Python interpreter or on PATH",
            "pip install bids-validator-deno, or skip validation with --skip-bids-validation",
        )
    return Path(found)


def validate_dataset(bids_dir: str | Path) -> None:
    """Run the official BIDS validator; raise ``InputError`` summarising its errors.

    Warnings are ignored: they are about recommended metadata, which this app does not need.
    """
    bids_dir = Path(bids_dir).resolve()
    cmd = [str(_validator_executable()), "--format", "json", str(bids_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    try:
        issues = json.loads(proc.stdout)["issues"]["issues"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(
            bids_dir, f"the BIDS validator failed (exit code {proc.returncode}): {tail[0]}"
        ) from err
    where: dict[str, list[str]] = defaultdict(list)
    for issue in issues:
        if issue.get("severity") == "error":
            where[issue.get("code", "UNKNOWN")].append(issue.get("location", "").lstrip("/"))
    if where:
        parts = []
        for code, locations in where.items():
            named = [loc for loc in locations if loc]
            shown = ", ".join(named[:2]) + (" ..." if len(named) > 2 else "")
            parts.append(f"{code} ({len(locations)}: {shown})" if named else code)
        raise InputError(
            bids_dir,
            f"the BIDS validator reports errors: {'; '.join(parts)}",
            "fix them (run bids-validator-deno for details) or pass --skip-bids-validation",
        )


# --------------------------------------------------------------------------------------------
# Checking one scan


def _read_sidecar(scan: PetScan) -> tuple[Path, dict[str, Any]]:
    if scan.sidecar is None or not Path(scan.sidecar).is_file():
        expected = scan.sidecar or scan.pet.with_name(
            scan.pet.name.removesuffix(".gz").removesuffix(".nii") + ".json"
        )
        raise InputError(
            expected,
            f"sidecar missing for {scan.pet.name} (needed for frame times, units and tracer)",
            "add the BIDS-PET JSON sidecar next to the image",
        )
    path = Path(scan.sidecar)
    size = path.stat().st_size
    if size > MAX_SIDECAR_BYTES:
        raise InputError(
            path,
            f"sidecar is {size} bytes, more than the {MAX_SIDECAR_BYTES} taupet-bids reads",
            "a BIDS-PET sidecar holds a few kB of metadata; write it again",
        )
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise InputError(path, "sidecar is empty", "fill in the REQUIRED BIDS-PET fields")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            path, f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})"
        ) from err
    except RecursionError as err:
        raise InputError(
            path, f"JSON nested more than {MAX_SIDECAR_DEPTH} levels deep", "write it again"
        ) from err
    except ValueError as err:  # e.g. an integer longer than Python's int/str digit limit
        raise InputError(path, f"not usable JSON ({_short(err)})") from err
    if _depth(meta) > MAX_SIDECAR_DEPTH:
        raise InputError(
            path, f"JSON nested more than {MAX_SIDECAR_DEPTH} levels deep", "write it again"
        )
    if not isinstance(meta, dict) or not meta:
        raise InputError(path, "sidecar holds no JSON object with fields", "fill in the fields")
    return path, meta


def _depth(value: Any) -> int:
    """Nesting depth of lists and objects, walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_SIDECAR_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` cut to ``limit`` characters, so a one-line message stays readable."""
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_numbers(path: Path, meta: dict[str, Any], key: str) -> list[float]:
    value = meta[key]
    values = value if isinstance(value, list) else [value]
    booleans = [v for v in values if isinstance(v, bool)]
    if booleans:  # bool is an int subclass: float(True) would be a 1 s frame
        raise InputError(
            path,
            f"{key} holds a JSON boolean ({str(booleans[0]).lower()}) where numbers (seconds) "
            "are expected",
            f"give {key} as a list of numbers",
        )
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError, OverflowError) as err:
        raise InputError(
            path, f"{key} must be a list of numbers (seconds), got {_short(value)}"
        ) from err
    if not all(math.isfinite(v) for v in numbers):
        raise InputError(path, f"{key} holds a non-finite value")
    largest = max((abs(v) for v in numbers), default=0.0)
    if largest > MAX_FRAME_TIME_S:
        raise InputError(
            path,
            f"{key} holds {largest:g} s, more than {MAX_FRAME_TIME_S / 86400:g} days",
            "frame times and durations are seconds",
        )
    return numbers


def _check_frame_timing(path: Path, starts: list[float], durations: list[float]) -> None:
    """Frames do not overlap: in order of start, each starts after the previous one ends.

    Gaps are allowed here (``_select_frames`` refuses one inside the window).
    A FrameDuration that holds frame end times (FrameDuration[i] == FrameTimesStart[i + 1]) is
    named as such: it is a known mistake, and it makes frames overlap.
    """
    tol = FRAME_OVERLAP_TOLERANCE_S
    order = sorted(range(len(starts)), key=starts.__getitem__)
    for i, j in zip(order[:-1], order[1:], strict=True):
        end = starts[i] + durations[i]
        if end <= starts[j] + tol:
            continue
        if all(abs(d - e) <= tol for d, e in zip(durations[:-1], starts[1:], strict=True)):
            raise InputError(
                path,
                "FrameDuration holds frame end times (FrameDuration[i] equals "
                "FrameTimesStart[i+1]), so the frames overlap",
                "give each frame's duration in seconds (end minus start)",
            )
        raise InputError(
            path,
            f"frames {i} and {j} overlap: frame {i} runs {starts[i]:g}-{end:g} s but frame "
            f"{j} starts at {starts[j]:g} s",
            "FrameTimesStart must increase and each FrameDuration end before the next start",
        )


def _load_image(pet: Path) -> tuple[Any, np.ndarray]:
    """Header and unscaled voxel array; hostile, corrupt or truncated files become one-line errors.

    The header is checked first (``image_headers.check_header``: size, orientation, grid), so
    no memory is committed to an image taupet-bids would refuse.
    """
    return load_image(pet)


def _scaled_chunks(img: Any, data: np.ndarray, size: int = 2**22):
    """The image's scaled values, flattened, in chunks of ``size`` voxels (float64)."""
    slope, inter = float(img.dataobj.slope), float(img.dataobj.inter)
    flat = data.reshape(-1, order="A")
    for begin in range(0, flat.size, size):
        yield flat[begin : begin + size].astype(np.float64) * slope + inter


def _check_content(path: Path, img: Any, data: np.ndarray, *, negatives: bool) -> None:
    """Refuse an image that is almost all zeros or (with ``negatives``) negated.

    Negated means most non-zero voxels are negative and so is their sum: zero-mean noise around
    a positive brain, as filtered back-projection leaves, is neither.
    """
    nonzero = negative = 0
    total = 0.0
    for chunk in _scaled_chunks(img, data):
        nonzero += int(np.count_nonzero(chunk))
        negative += int(np.count_nonzero(chunk < 0))
        total += float(chunk.sum())
    if nonzero < MIN_NONZERO_FRACTION * data.size:
        raise InputError(
            path,
            f"only {nonzero} of {data.size} voxels are non-zero (fewer than "
            f"{MIN_NONZERO_FRACTION:.0%}); the image holds no usable scan",
        )
    if negatives and negative > nonzero - negative and total < 0:
        raise InputError(
            path,
            f"most non-zero voxels are negative ({negative} of {nonzero}); activity cannot be "
            "negative, so the intensities look negated",
            "check the conversion of the image",
        )


def _check_voxels(pet: Path, img: Any, data: np.ndarray) -> None:
    slope, inter = img.dataobj.slope, img.dataobj.inter
    if not (np.isfinite(slope) and np.isfinite(inter)):
        raise InputError(pet, "the NIfTI scaling (scl_slope/scl_inter) is not finite")
    if np.issubdtype(data.dtype, np.floating):
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        if bad:
            raise InputError(
                pet,
                f"image has {bad} NaN/Inf voxels",
                "replace non-finite voxels (for example with 0) before running",
            )
    lo, hi = data.min(), data.max()
    if lo == hi:
        raise InputError(pet, f"image is constant (every voxel = {float(lo) * slope + inter:g})")


def check_t1w(t1w: Path) -> None:
    """A T1w must be a readable, 3D, finite, non-constant image before any registration uses it.

    ITK reads a truncated .nii.gz without complaint (the missing voxels become zeros), so a
    damaged T1w would otherwise give a silently wrong normalisation.
    """
    img, data = _load_image(t1w)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(t1w, f"T1w is {data.ndim}D (shape {data.shape}); it must be one 3D volume")
    _check_voxels(t1w, img, data)
    _check_content(t1w, img, data, negatives=False)


def _units_scale(path: Path, units: str) -> float | None:
    key = units.strip().lower().replace(" ", "").replace("cc", "ml").replace("µ", "u")
    if key in ACTIVITY_UNITS:
        return ACTIVITY_UNITS[key]
    if key in SUV_UNITS:
        return None
    raise InputError(
        path,
        f"Units {units!r} is not an activity concentration or SUV",
        "use Bq/mL (or kBq/mL, MBq/mL, SUV) for reconstructed PET images",
    )


def _resolve_tracer(
    path: Path,
    meta: dict[str, Any],
    scan: PetScan,
    reference_region: str | None,
) -> tuple[Tracer | None, str]:
    tracer = identify_tracer(str(meta["TracerName"]), scan.entities.get("trc"))
    if reference_region is None:
        if tracer is None:
            known = ", ".join(t.name for t in TRACERS)
            raise InputError(
                path,
                f"tracer {meta.get('TracerName')!r} (trc-{scan.entities.get('trc', '')}) is not "
                f"one taupet-bids knows ({known}), so it has no default reference region",
                "pass --reference-region (and --pet-window START END in minutes)",
            )
        if tracer.reference_region is None:
            raise InputError(
                path,
                f"{tracer.name} has no standard reference region",
                "pass --reference-region",
            )
        reference_region = tracer.reference_region
    regions = atlases.reference_regions()
    if reference_region not in regions:
        raise InputError(
            path,
            f"unknown reference region {reference_region!r}",
            f"choose one of {', '.join(regions)}",
        )
    return tracer, reference_region


def _select_frames(
    path: Path, start: np.ndarray, end: np.ndarray, window: tuple[float, float]
) -> tuple[int, ...]:
    tol = WINDOW_TOLERANCE_MIN
    w0, w1 = window
    span = f"frames span {start.min():g}-{end.max():g} min p.i."
    fix = "pass --pet-window START END (minutes post injection) that the frames cover"
    inside = np.flatnonzero((start >= w0 - tol) & (end <= w1 + tol))
    if inside.size == 0:
        raise InputError(path, f"no frame lies within {w0:g}-{w1:g} min p.i. ({span})", fix)
    first, last = start[inside].min(), end[inside].max()
    if first > w0 + tol or last < w1 - tol:
        raise InputError(
            path, f"window {w0:g}-{w1:g} min p.i. is not covered by the frames ({span})", fix
        )
    order = inside[np.argsort(start[inside])]
    gaps = start[order][1:] - end[order][:-1]
    if gaps.size and gaps.max() > tol:
        raise InputError(
            path, f"the frames leave a {gaps.max():g} min gap inside {w0:g}-{w1:g} min p.i.", fix
        )
    return tuple(int(i) for i in order)


def check_pet_scan(
    scan: PetScan,
    window: tuple[float, float] | None = None,
    reference_region: str | None = None,
) -> CheckedScan:
    """Check one PET scan end to end and work out which frames to use.

    ``window`` is (start, end) in minutes post injection; by default the tracer's. Frame times
    in the sidecar are seconds from TimeZero; subtracting InjectionStart (also from TimeZero)
    makes them post-injection. A frame is used when it lies in the window, give or take
    ``WINDOW_TOLERANCE_MIN``. Raises ``InputError`` at the first problem found.
    """
    path, meta = _read_sidecar(scan)
    warnings: list[str] = []

    missing = [k for k in QUANTIFICATION_FIELDS if meta.get(k) in (None, "", [])]
    if missing:
        raise InputError(
            path,
            f"missing required field(s) {', '.join(missing)}",
            "add them; BIDS-PET requires them and SUVR needs them",
        )
    others = [k for k in OTHER_REQUIRED_FIELDS if k not in meta]
    if others:
        warnings.append(f"{path.name}: REQUIRED BIDS-PET field(s) missing: {', '.join(others)}")

    starts = _as_numbers(path, meta, "FrameTimesStart")
    durations = _as_numbers(path, meta, "FrameDuration")
    if len(starts) != len(durations):
        raise InputError(
            path,
            f"FrameTimesStart has {len(starts)} entries but FrameDuration has {len(durations)}",
            "give one start and one duration per frame",
        )
    if min(durations) <= 0:
        raise InputError(path, "FrameDuration holds a zero or negative duration")
    _check_frame_timing(path, starts, durations)

    img, data = _load_image(scan.pet)
    if data.ndim not in (3, 4):
        raise InputError(
            scan.pet,
            f"image is {data.ndim}D (shape {data.shape}); a PET image must be 3D or 4D",
            "store one 3D volume or a 4D time series per file",
        )
    n_frames = 1 if data.ndim == 3 else data.shape[3]
    for key, values in (("FrameTimesStart", starts), ("FrameDuration", durations)):
        if len(values) != n_frames:
            raise InputError(
                path,
                f"{key} has {len(values)} entries but the image has {n_frames} frames",
                "make them match",
            )
    _check_voxels(scan.pet, img, data)
    _check_content(scan.pet, img, data, negatives=True)

    units = str(meta["Units"])
    scale = _units_scale(path, units)
    if scale is None:
        warnings.append(f"{path.name}: image in {units}: SUVR is valid, Bq/mL cannot be reported")
    if meta.get("ImageDecayCorrected") is False:
        warnings.append(f"{path.name}: frames are not decay corrected")

    injection = meta.get("InjectionStart")
    if not isinstance(injection, int | float) or isinstance(injection, bool):
        warnings.append(f"{path.name}: no numeric InjectionStart; assuming injection at TimeZero")
        injection = 0.0
    if not math.isfinite(injection) or abs(injection) > MAX_FRAME_TIME_S:
        raise InputError(
            path,
            f"InjectionStart {injection:g} s is not within {MAX_FRAME_TIME_S / 86400:g} days of "
            "TimeZero",
            "give InjectionStart in seconds relative to TimeZero",
        )
    start_min = (np.asarray(starts) - float(injection)) / 60.0
    duration_min = np.asarray(durations) / 60.0
    end_min = start_min + duration_min

    tracer, reference = _resolve_tracer(path, meta, scan, reference_region)
    if window is None and tracer is not None:
        window = tracer.window_min
    if window is None:
        window = (float(start_min.min()), float(end_min.max()))
        warnings.append(
            f"{path.name}: no default window for tracer {meta['TracerName']!r}; "
            f"using all frames ({window[0]:g}-{window[1]:g} min p.i.)"
        )
    window = (float(window[0]), float(window[1]))
    if not window[0] < window[1]:
        raise InputError(path, f"window {window[0]:g}-{window[1]:g} min is empty")
    frames = _select_frames(path, start_min, end_min, window)

    frame_data = data if data.ndim == 4 else data[..., np.newaxis]
    for i in frames:
        if frame_data[..., i].min() == frame_data[..., i].max():
            raise InputError(scan.pet, f"frame {i} (used for the window) is constant")

    return CheckedScan(
        scan=scan,
        tracer=tracer,
        tracer_name=str(meta["TracerName"]),
        reference_region=reference,
        window_min=window,
        frames=frames,
        frame_start_min=tuple(float(v) for v in start_min),
        frame_end_min=tuple(float(v) for v in end_min),
        frame_duration_min=tuple(float(v) for v in duration_min),
        units=units,
        units_scale=scale,
        metadata=meta,
        warnings=tuple(warnings),
    )
