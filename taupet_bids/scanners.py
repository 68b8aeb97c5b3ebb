"""Scanner model -> image resolution (FWHM, mm): the shipped table, extendable by the user.

Why: a multi-scanner cohort (ADNI has dozens of models) has no single PSF. One assumed FWHM
biases partial-volume correction scan by scan, and smoothing to a uniform resolution needs each
scan's own resolution. BIDS has no field for it, but the PET sidecar names the scanner
(``Manufacturer``, ``ManufacturersModelName``) and the reconstruction (``ReconMethodName``,
``ReconFilterType``/``ReconFilterSize``), which is what a resolution depends on.

The table (``data/scanner_resolution.tsv``; a user file with ``--scanner-resolution`` has the
same columns) holds one row per scanner and reconstruction:

* ``manufacturer``, ``model``: matched case-insensitively, runs of whitespace as one space;
* ``recon_method``: the sidecar's ``ReconMethodName`` (same matching), or ``*`` for any;
* ``filter_mm``: the sidecar's Gaussian post-filter FWHM (0 for none; within 0.05 mm), or ``*``;
* ``fwhm_mm``: 1-20 mm;
* ``fwhm_kind``: ``effective`` (the image's FWHM with that reconstruction and filter, used as
  it is) or ``system`` (the scanner's own resolution, e.g. NEMA NU-2; the sidecar's Gaussian
  filter is added in quadrature by the caller);
* ``source``: where the value comes from.

Lines starting with ``#`` and blank lines are ignored. The most specific matching row wins (a
recon and a filter that match beat ``*``); a user file's matching rows are all tried before the
shipped ones. Plain Python, no Nipype: the plan and the CLI's argument checks both read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: The table that ships with taupet-bids.
SHIPPED_TABLE = Path(__file__).parent / "data" / "scanner_resolution.tsv"
COLUMNS = ("manufacturer", "model", "recon_method", "filter_mm", "fwhm_mm", "fwhm_kind", "source")
KINDS = ("effective", "system")
#: Plausible image resolutions of human PET (a value outside is a typo or the wrong unit).
FWHM_RANGE_MM = (1.0, 20.0)
#: Sidecar filter sizes this close to a row's ``filter_mm`` match it.
FILTER_TOLERANCE_MM = 0.05
ANY = "*"


class ScannerTableError(ValueError):
    """A resolution table that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class ScannerResolution:
    """One row of a resolution table."""

    manufacturer: str
    model: str
    recon_method: str
    filter_mm: float | None  # None: any filter
    fwhm_mm: float
    fwhm_kind: str
    source: str
    #: ``<file>:<line>``, so a logged or recorded value can be traced to its row.
    origin: str

    @property
    def specificity(self) -> int:
        return int(self.recon_method != ANY) + int(self.filter_mm is not None)

    def describe(self) -> str:
        """One line for logs and sidecars: the row, its value and its source."""
        filt = ANY if self.filter_mm is None else f"{self.filter_mm:g} mm"
        return (
            f"scanner resolution table ({self.origin}): {self.manufacturer} {self.model}, "
            f"recon {self.recon_method}, filter {filt} -> {self.fwhm_mm:g} mm "
            f"{self.fwhm_kind} FWHM; source: {self.source}"
        )


def normalise(text: object) -> str:
    """Case-folded, whitespace-collapsed text: how names are compared."""
    return " ".join(str(text).split()).casefold()


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScannerTableError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ScannerTableError(f"{where}: {column} {text!r} is not a finite number")
    return value


def _row(fields: dict[str, str], where: str, origin: str) -> ScannerResolution:
    for column in ("manufacturer", "model", "recon_method", "source"):
        if not fields[column]:
            raise ScannerTableError(f"{where}: {column} is empty")
    fwhm = _number(fields["fwhm_mm"], "fwhm_mm", where)
    low, high = FWHM_RANGE_MM
    if not low <= fwhm <= high:
        raise ScannerTableError(
            f"{where}: fwhm_mm {fwhm:g} is outside {low:g}-{high:g} mm (a FWHM in mm?)"
        )
    filt = None
    if fields["filter_mm"] != ANY:
        filt = _number(fields["filter_mm"], "filter_mm", where)
        if filt < 0:
            raise ScannerTableError(f"{where}: filter_mm {filt:g} is negative")
    kind = fields["fwhm_kind"].lower()
    if kind not in KINDS:
        raise ScannerTableError(
            f"{where}: fwhm_kind {fields['fwhm_kind']!r} is not one of {', '.join(KINDS)}"
        )
    return ScannerResolution(
        manufacturer=fields["manufacturer"], model=fields["model"],
        recon_method=fields["recon_method"], filter_mm=filt, fwhm_mm=fwhm, fwhm_kind=kind,
        source=fields["source"], origin=origin,
    )  # fmt: skip


@lru_cache(maxsize=8)
def read_table(path: Path) -> tuple[ScannerResolution, ...]:
    """Every row of a resolution table; :class:`ScannerTableError` names the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ScannerTableError(
            f"{path}: cannot read the scanner resolution table ({err})"
        ) from err
    header, rows = None, []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split("\t")]
        if header is None:
            header = [cell.lower() for cell in cells]
            missing = [column for column in COLUMNS if column not in header]
            if missing:
                raise ScannerTableError(
                    f"{path}, line {number}: missing column(s) {', '.join(missing)} (a "
                    f"tab-separated header with {', '.join(COLUMNS)} is needed)"
                )
            continue
        where = f"{path}, line {number}"
        if len(cells) != len(header):
            raise ScannerTableError(
                f"{where}: {len(cells)} tab-separated cells, the header has {len(header)}"
            )
        rows.append(_row(dict(zip(header, cells, strict=True)), where, f"{path.name}:{number}"))
    if header is None:
        raise ScannerTableError(f"{path}: no header line (needs {', '.join(COLUMNS)})")
    return tuple(rows)


def sidecar_filter_mm(sidecar: Mapping) -> float | None:
    """FWHM (mm) of the sidecar's post-reconstruction filter: 0 for none, None if not Gaussian.

    Several Gaussian filters add in quadrature. A filter of another type, or a Gaussian one
    without a size, has no FWHM to match, so only ``filter_mm = *`` rows match it.
    """
    kind = sidecar.get("ReconFilterType")
    kinds = [kind] if isinstance(kind, str) or kind is None else list(kind)
    sizes = sidecar.get("ReconFilterSize")
    sizes = [sizes] if not isinstance(sizes, (list, tuple)) else list(sizes)
    total = 0.0
    for position, name in enumerate(kinds):
        if name is None or normalise(name) in ("", "none", "n/a"):
            continue
        size = sizes[position] if position < len(sizes) else None
        if "gauss" not in normalise(name) or not isinstance(size, (int, float)) or size < 0:
            return None
        total += float(size) ** 2
    return math.sqrt(total)


def _matches(row: ScannerResolution, sidecar: Mapping, filter_mm: float | None) -> bool:
    if normalise(row.manufacturer) != normalise(sidecar.get("Manufacturer", "")):
        return False
    if normalise(row.model) != normalise(sidecar.get("ManufacturersModelName", "")):
        return False
    if row.recon_method != ANY and normalise(row.recon_method) != normalise(
        sidecar.get("ReconMethodName", "")
    ):
        return False
    if row.filter_mm is None:
        return True
    return filter_mm is not None and abs(row.filter_mm - filter_mm) <= FILTER_TOLERANCE_MM


def _best(rows: tuple[ScannerResolution, ...], sidecar: Mapping) -> ScannerResolution | None:
    filter_mm = sidecar_filter_mm(sidecar)
    found = [row for row in rows if _matches(row, sidecar, filter_mm)]
    # max() keeps the first of equally specific rows: the file's order breaks ties.
    return max(found, key=lambda row: row.specificity) if found else None


def lookup(sidecar: Mapping, user_table: Path | None = None) -> ScannerResolution | None:
    """The row for this sidecar's scanner and reconstruction, or None when no row matches.

    The user's table is searched first and wins whenever one of its rows matches, even a
    wildcard one over a more specific shipped row: the user knows their protocol.
    """
    if user_table is not None:
        row = _best(read_table(Path(user_table)), sidecar)
        if row is not None:
            return row
    return _best(read_table(SHIPPED_TABLE), sidecar)
