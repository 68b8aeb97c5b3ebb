"""Which scans were attenuation-corrected from MRI: the ``--harmonize auto`` decision.

Read from the PET sidecar only, before any work: ``AttenuationCorrection`` (free text in BIDS)
naming an MR-based method, or ``ManufacturersModelName`` naming a PET/MR system. The text is
matched on words, case-insensitively, after punctuation becomes spaces, so "MR-based",
"MRAC", "DIXON Brain HiRes" (a Biograph mMR's text) and "SIGNA PET/MR" are found, and
"measured,AC_CT_Brain" (a Siemens PET-CT's text), "CT-based" and "CTAC" are CT-based. An MR word
wins over "CT" ("MR-based pseudo-CT" is MR-based). No torch here: the plan imports this module.

The same text names the scan's AC method (:func:`ac_method`), which the harmoniser is told: one
image does not show which AC it had (docs/harmonisation.md), the sidecar does.
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
#: AC methods the harmoniser knows, in the order of its conditioning index: ``ct`` (the target
#: scale: zero correction), the simulator's three MR-based methods, and ``mr``, any other or
#: unnamed MR-based method (trained on all three).
AC_METHODS = ("ct", "dixon", "atlas", "ute", "mr")
#: Words that name a measured mu-map, from a CT or a transmission scan (checked after the MR
#: words): bone is right in both, so neither is harmonised.
CT_AC_WORDS = ("ct", "ctac", "computed tomography", "transmission")
#: Scanner models that are PET/MR systems (matched as words in ``ManufacturersModelName``).
PET_MR_MODELS = ("biograph mmr", "mmr", "signa pet mr", "signa pet", "upmr", "pet mr", "petmr")


@dataclass(frozen=True)
class Decision:
    """Whether one scan is harmonised and why (for the plan, the log and the sidecar)."""

    harmonize: bool
    reason: str
    #: The AC method the harmoniser is told (:data:`AC_METHODS`); None when not harmonised.
    ac_method: str | None = None


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


def ac_method(sidecar: dict) -> str:
    """The scan's AC method from its sidecar, one of :data:`AC_METHODS`: the MR method named in
    ``AttenuationCorrection`` when the harmoniser was trained on it, ``mr`` for any other
    MR-based text, a PET/MR scanner or no recognisable text, ``ct`` for a CT-based text."""
    text = sidecar.get("AttenuationCorrection")
    method = mr_based_attenuation(text)
    if method:
        return method if method in AC_METHODS else "mr"
    if isinstance(text, str) and _names(text, CT_AC_WORDS):
        return "ct"
    return "mr"


def _told(method: str) -> str:
    """The reason's note of the AC method the harmoniser is given (which of it a model uses is
    its ``conditioning``, in the record)."""
    if method == "ct":
        return "; its AC is CT- or transmission-based, the harmoniser's target: zero correction"
    if method == "mr":
        return "; AC method given to the harmoniser: MR-based, method not named"
    return f"; AC method given to the harmoniser: {method}"


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
    method = ac_method(sidecar)
    if mode == "all":
        reason = "--harmonize all (every scan, whatever its attenuation correction)"
        return Decision(True, reason + _told(method), method)
    text = sidecar.get("AttenuationCorrection")
    model = sidecar.get("ManufacturersModelName")
    if mr_based_attenuation(text):
        reason = f"AttenuationCorrection {text!r} names an MR-based method"
        return Decision(True, reason + _told(method), method)
    if method == "ct":
        return Decision(False, f"AttenuationCorrection {text!r} is CT- or transmission-based")
    scanner = pet_mr_scanner(model)
    if scanner:
        reason = f"ManufacturersModelName {model!r} is a PET/MR system"
        return Decision(True, reason + _told(method), method)
    return Decision(
        False,
        f"neither AttenuationCorrection ({text!r}) nor ManufacturersModelName ({model!r}) "
        "names MR-based attenuation correction",
    )
