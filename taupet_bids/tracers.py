"""Tracers taupet-bids knows, as data: names, aliases, default window and reference region.

A tracer is recognised from the sidecar's ``TracerName`` first and the ``trc-`` entity of the file
name second (the sidecar is the more specific of the two). Aliases are compared after lower-casing
and removing everything that is not a letter or a digit, so ``"[18F]AV-1451"``, ``"18F-AV1451"``
and ``"av1451"`` all match the alias ``"AV1451"``.

Default late-frame windows (minutes post injection) and their sources:

- flortaucipir 80-100: Baker, Maass & Jagust 2017 (Data in Brief 15:648); ADNI acquires 75-105
  and analyses 80-100 (Jack et al. 2017, Alzheimer's & Dementia 13:205).
- MK-6240 90-110: Pascoal et al. 2018 (EJNMMI 45:1129); Betthauser et al. 2019 (J Nucl Med
  60:93) showed SUVR 70-90 and 90-110 track DVR; 90-110 is the common late window.
- RO-948 70-90: Kuwabara et al. 2018 (J Nucl Med 59:1877); Leuzy et al. 2020 (JAMA Neurol 77:955).
- PI-2620 30-60: Mueller et al. 2020 (J Nucl Med 61:911), who found a 30-60 min window gave
  SUVRs close to the full dynamic DVR; some sites use 45-75 min, so pass a window if yours does.
- PM-PBB3 (florzolotau, APN-1607) 90-110: Tagai et al. 2021 (Neuron 109:42).
- GTP1 60-90: Sanabria Bohorquez et al. 2019 (EJNMMI 46:2077).
- FDG 30-60: EANM procedure guidelines for brain FDG PET (Guedj et al. 2022, EJNMMI 49:632),
  static acquisition starting 30-60 min post injection.
- PBR28 60-90: Lyoo et al. 2015 (J Nucl Med 56:701), SUV 60-90 min.
- Amyloid tracers, with the windows and whole-cerebellum reference of the Centiloid project's
  calibrations: PiB 50-70 (Klunk et al. 2015, Alzheimer's & Dementia 11:1), florbetapir 50-70
  (the ADNI analysis window), florbetaben 90-110, flutemetamol 90-110 and NAV4694 50-70 (the
  tracers' Centiloid calibration papers: Rowe et al. 2017, Battle et al. 2018, Rowe et al.
  2016). taupet-bids does not quantify amyloid (no Centiloid); they are known so that an
  amyloid scan is skipped by name in a tau run and, with ``--tracer``, normalised and
  quality-checked without being judged against the tau template.

Reference region labels are keys of ``taupet_bids/atlases/reference_regions.json``. Tau tracers
default to inferior cerebellar grey (Baker et al. 2017), FDG to pons, PBR28 to none: TSPO has no
region free of specific binding, so the user must name one (or accept SUV). MK-6240 takes the
deep part of the inferior cerebellar grey (at least 8 mm inside the brain's surface): its
meningeal and skull signal, blurred into the cerebellum's edge, made the full region's mean move
by about 4 % per 2 mm of misplacement (docs/mrless.md, "The MK-6240 reference").
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Tracer:
    """One tracer: how to recognise it and what to do with it by default."""

    name: str
    aliases: tuple[str, ...]
    target: str
    window_min: tuple[float, float]
    reference_region: str | None


TRACERS: tuple[Tracer, ...] = (
    Tracer(
        "flortaucipir",
        ("flortaucipir", "AV1451", "AV-1451", "18FAV1451", "FTP", "T807", "18FT807", "Tauvid"),
        "tau",
        (80.0, 100.0),
        "InfCerebGrey",
    ),
    Tracer(
        "MK6240",
        ("MK6240", "MK-6240", "18FMK6240", "florquinitau"),
        "tau",
        (90.0, 110.0),
        "InfCerebGreyDeep",
    ),
    Tracer(
        "RO948", ("RO948", "RO-948", "18FRO948", "RO6958948"), "tau", (70.0, 90.0), "InfCerebGrey"
    ),
    Tracer("PI2620", ("PI2620", "PI-2620", "18FPI2620"), "tau", (30.0, 60.0), "InfCerebGrey"),
    Tracer(
        "PMPBB3",
        ("PMPBB3", "PM-PBB3", "18FPMPBB3", "APN1607", "APN-1607", "florzolotau"),
        "tau",
        (90.0, 110.0),
        "InfCerebGrey",
    ),
    Tracer(
        "GTP1",
        ("GTP1", "GTP-1", "18FGTP1", "Genentech Tau Probe 1"),
        "tau",
        (60.0, 90.0),
        "InfCerebGrey",
    ),
    Tracer(
        "FDG",
        ("FDG", "18FFDG", "18F-FDG", "fluorodeoxyglucose", "fludeoxyglucose", "2-FDG"),
        "glucose metabolism",
        (30.0, 60.0),
        "Pons",
    ),
    Tracer("PBR28", ("PBR28", "PBR-28", "11CPBR28"), "TSPO", (60.0, 90.0), None),
    Tracer(
        "PiB", ("PiB", "11CPiB", "Pittsburgh compound B"), "amyloid", (50.0, 70.0), "WholeCereb"
    ),
    Tracer(
        "florbetapir",
        ("florbetapir", "AV45", "AV-45", "18FAV45", "Amyvid", "FBP"),
        "amyloid",
        (50.0, 70.0),
        "WholeCereb",
    ),
    Tracer(
        "florbetaben",
        ("florbetaben", "FBB", "BAY94-9172", "Neuraceq"),
        "amyloid",
        (90.0, 110.0),
        "WholeCereb",
    ),
    Tracer(
        "flutemetamol",
        ("flutemetamol", "FMM", "GE067", "Vizamyl"),
        "amyloid",
        (90.0, 110.0),
        "WholeCereb",
    ),
    Tracer(
        "NAV4694",
        ("NAV4694", "NAV-4694", "AZD4694", "flutafuranol"),
        "amyloid",
        (50.0, 70.0),
        "WholeCereb",
    ),
)


def _key(text: str) -> str:
    """Normalise a tracer name for matching: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


_BY_ALIAS: dict[str, Tracer] = {_key(a): t for t in TRACERS for a in (t.name, *t.aliases)}


def _lookup(text: str | None) -> Tracer | None:
    """Match an alias, also after dropping a leading radionuclide ("[18F]flortaucipir")."""
    if not text or not text.strip():
        return None
    key = _key(text)
    found = _BY_ALIAS.get(key)
    if found is None and key[:3] in ("18f", "11c"):
        found = _BY_ALIAS.get(key[3:])
    return found


def identify_tracer(tracer_name: str | None, trc_entity: str | None = None) -> Tracer | None:
    """Recognise a tracer from the sidecar ``TracerName``, else from the ``trc-`` entity.

    Returns None when neither names a known tracer: the caller then needs an explicit
    reference region (and window) from the user.
    """
    return _lookup(tracer_name) or _lookup(trc_entity)
