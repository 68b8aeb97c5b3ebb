"""Which scans were attenuation-corrected from MRI: the ``--harmonize auto`` decision.

Read from the PET sidecar only, before any work: ``AttenuationCorrection`` (free text in BIDS)
naming an MR-based method, or ``ManufacturersModelName`` naming a PET/MR system. The text is
matched on words, case-insensitively, after punctuation becomes spaces, so "MR-based",
"MRAC", "DIXON Brain HiRes" (a Biograph mMR's text) and "SIGNA PET/MR" are found, and
"measured,AC_CT_Brain" (a Siemens PET-CT's text), "CT-based" and "CTAC" are CT-based. An MR word
wins over "CT" ("MR-based pseudo-CT" is MR-based). No torch here: the plan imports this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: ``--harmonize`` choices.
MODES = ("none", "auto", "all")
#: Words in ``AttenuationCorrection`` that name an MR-derived mu-map.
MR_AC_WORDS = (
    "dixon",
    "ute",
    "zte",
    "mrac",
    "atlas",
    "mr based",
    "mri based",
    "mr derived",
    "mr ac",
    "pseudo ct",
    "pseudoct",
    "mlaa",
)
#: Words that name a CT-derived mu-map (checked after the MR words).
CT_AC_WORDS = ("ct", "ctac", "computed tomography")
#: Scanner models that are PET/MR systems (matched as words in ``ManufacturersModelName``).
PET_MR_MODELS = ("biograph mmr", "mmr", "signa pet mr", "signa pet", "upmr", "pet mr", "petmr")


@dataclass(frozen=True)
class Decision:
    """Whether one scan is harmonised and why (for the plan, the log and the sidecar)."""

    harmonize: bool
    reason: str


def _words(text: object) -> str:
    """Lower case, punctuation as spaces, single-spaced, padded: ``" mr based dixon "``."""
    return " " + " ".join(re.sub(r"[^a-z0-9]+", " ", str(text).lower()).split()) + " "


def _names(text: str, phrases: tuple[str, ...]) -> str | None:
    """The first of ``phrases`` found as whole words in ``text``, or None."""
    words = _words(text)
    return next((phrase for phrase in phrases if f" {phrase} " in words), None)


def mr_based_attenuation(text: object) -> str | None:
    """The MR-based method ``AttenuationCorrection`` names, or None (CT-based, or unknown)."""
    return _names(text, MR_AC_WORDS) if isinstance(text, str) else None


def pet_mr_scanner(model: object) -> str | None:
    """The PET/MR system ``ManufacturersModelName`` names, or None."""
    return _names(model, PET_MR_MODELS) if isinstance(model, str) else None


def decide(mode: str, sidecar: dict) -> Decision:
    """``--harmonize`` for one scan from its PET sidecar.

    ``none``: never; ``all``: always; ``auto``: when the attenuation correction is MR-based or
    the scanner is a PET/MR system (an explicit CT-based ``AttenuationCorrection`` wins over
    the scanner model: a PET/MR scan may be reconstructed with a CT acquired elsewhere).
    """
    if mode not in MODES:
        raise ValueError(f"--harmonize must be one of {MODES}, not {mode!r}")
    if mode == "none":
        return Decision(False, "--harmonize none")
    if mode == "all":
        return Decision(True, "--harmonize all (every scan, whatever its attenuation correction)")
    text = sidecar.get("AttenuationCorrection")
    model = sidecar.get("ManufacturersModelName")
    method = mr_based_attenuation(text)
    if method:
        return Decision(True, f"AttenuationCorrection {text!r} names an MR-based method")
    if isinstance(text, str) and _names(text, CT_AC_WORDS):
        return Decision(False, f"AttenuationCorrection {text!r} is CT-based")
    scanner = pet_mr_scanner(model)
    if scanner:
        return Decision(True, f"ManufacturersModelName {model!r} is a PET/MR system")
    return Decision(
        False,
        f"neither AttenuationCorrection ({text!r}) nor ManufacturersModelName ({model!r}) "
        "names MR-based attenuation correction",
    )
