"""One frozen plan per PET scan: every decision about the scan, made once, before any graph.

The run configuration says what the user asked for; the checked scan says what the files hold.
:func:`plan_scan` combines them (normalisation path, PSF, CenTauRz tracer, staging thresholds,
output units, where the scan's files wait before the commit), and the workflow factories read
the plan instead of a dozen loose arguments and look nothing up again. A plan that cannot be
made (no PSF for ``--pvc``, no T1w with ``--mr-less never``) refuses the scan with a clear
error, before any work.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from taupet_bids import centaurz, naming, staging
from taupet_bids.bids import CheckedScan
from taupet_bids.config import RunConfig
from taupet_bids.core.pvc import psf_fwhm_from_sidecar
from taupet_bids.errors import InputError

#: Output units of the averaged PET and the reference value when the input is an activity
#: concentration (every such input is converted: see :attr:`ScanPlan.units_scale`).
ACTIVITY_UNITS = "Bq/mL"


@dataclass(frozen=True)
class ScanPlan:
    """Everything the graph of one scan needs, resolved from the checked scan and the config."""

    checked: CheckedScan
    stem: str
    bids_dir: Path
    output_dir: Path
    staging_dir: Path
    marker: Path
    atlases: tuple[str, ...]
    #: ``mr`` (PET -> T1w -> template) or an MR-less method (``network``, ``ants``).
    normalisation: str
    mr_less_bundle: Path | None
    pvc_methods: tuple[str, ...]
    pvc_fwhm_mm: float | None
    centaurz_tracer: str | None
    centaur_masks: Path | None
    braak_uncorrected: staging.ThresholdSet | None
    #: Factor that brings the image's values into :attr:`units` (1 for SUV inputs).
    units_scale: float
    #: Units of the averaged PET and of the SUVR's reference value, as the sidecars say.
    units: str
    seed: int
    omp_nthreads: int
    use_fsl: bool
    #: ``template`` or ``subject-gm`` (:data:`taupet_bids.config.REGIONAL_MASKS`), as used.
    regional_mask: str = "template"
    #: Why :attr:`regional_mask` is what it is, for logs and the tables' sidecars.
    regional_mask_reason: str = ""

    @property
    def subject_gm(self) -> bool:
        """Regional means and the reference follow the subject's grey matter."""
        return self.regional_mask == "subject-gm"

    @property
    def name(self) -> str:
        """The scan's Nipype-safe name (``sub_001_ses_M000_trc_X``)."""
        return naming.node_name(self.stem)

    @property
    def mr_less(self) -> bool:
        return self.normalisation != "mr"

    @property
    def pet(self) -> Path:
        return self.checked.scan.pet

    @property
    def t1w(self) -> Path | None:
        return self.checked.scan.t1w

    @property
    def reference_region(self) -> str:
        return self.checked.reference_region

    @property
    def tracer(self) -> str | None:
        """The tracer's canonical name, or None when taupet-bids does not know it."""
        return self.checked.tracer.name if self.checked.tracer else None

    @property
    def write_centaurz(self) -> bool:
        return self.centaurz_tracer is not None


def normalisation_method(config: RunConfig, checked: CheckedScan) -> str:
    """``mr``, or the MR-less method for this scan.

    ``--mr-less auto`` goes MR-less exactly when the session has no T1w; ``always`` ignores any
    T1w; ``never`` requires one.
    """
    no_t1w = checked.scan.t1w is None
    if config.mr_less == "always" or (config.mr_less == "auto" and no_t1w):
        return config.mr_less_method
    if no_t1w:
        raise InputError(
            checked.scan.pet, "no T1w for this participant/session",
            "add a T1w, or normalise without MRI with --mr-less auto",
        )  # fmt: skip
    return "mr"


def regional_mask(config: RunConfig, normalisation: str) -> tuple[str, str]:
    """(mask, reason): ``--regional-mask`` on the MR-based path; the template without a T1w.

    An MR-less scan has no segmentation to cut the masks with, so it keeps the template's
    whatever was asked, and the reason says so.
    """
    if normalisation != "mr" and config.regional_mask != "template":
        return "template", (
            f"--regional-mask {config.regional_mask} needs a T1w; this scan is normalised "
            "without MRI, so the template's labels and reference mask are used"
        )
    if config.regional_mask == "subject-gm":
        return "subject-gm", "--regional-mask subject-gm (Atropos segmentation of the T1w)"
    return "template", f"--regional-mask {config.regional_mask}"


def pvc_fwhm(config: RunConfig, checked: CheckedScan) -> float | None:
    """The PSF FWHM (mm) for this scan's partial-volume correction; None without ``--pvc``.

    ``--pvc-fwhm`` is taken as given. Otherwise ``--pvc-scanner-fwhm`` is combined in
    quadrature with the Gaussian post-reconstruction filter in the scan's sidecar
    (``ReconFilterType``/``ReconFilterSize``), so scans reconstructed differently get
    different PSFs. A filter that is not Gaussian cannot be turned into a FWHM: that scan is
    refused with the sidecar named.
    """
    if not config.pvc:
        return None
    if config.pvc_fwhm:
        return float(config.pvc_fwhm)
    if not config.pvc_scanner_fwhm:
        raise InputError(None, "--pvc needs --pvc-fwhm or --pvc-scanner-fwhm")
    try:
        return psf_fwhm_from_sidecar(checked.metadata, config.pvc_scanner_fwhm)
    except (TypeError, ValueError) as err:
        raise InputError(
            checked.scan.sidecar or checked.scan.pet, f"no PSF for --pvc: {err}",
            "give the effective resolution with --pvc-fwhm",
        ) from err  # fmt: skip


def centaurz_tracer(config: RunConfig, checked: CheckedScan) -> str | None:
    """The CenTauRz conversion's tracer key, when the tracer has one and DK tables are made."""
    if checked.tracer is None or "DK" not in config.atlases:
        return None
    try:
        return centaurz.canonical_tracer(checked.tracer.name)
    except KeyError:
        return None


def braak_uncorrected_set(config: RunConfig, checked: CheckedScan) -> staging.ThresholdSet | None:
    """The user's ``--braak-thresholds`` for uncorrected SUVR as a threshold set, or None."""
    if not config.braak_thresholds:
        return None
    return staging.user_threshold_set(
        tuple(config.braak_thresholds), config.braak_thresholds_source or "",
        checked.reference_region,
    )  # fmt: skip


def output_units(checked: CheckedScan) -> tuple[float, str]:
    """(scale, units) of the derivatives: activity in Bq/mL; SUV kept as SUV, in its own units."""
    if checked.units_scale is None:
        return 1.0, checked.units
    return float(checked.units_scale), ACTIVITY_UNITS


def check_entities(checked: CheckedScan) -> None:
    """Refuse a PET or T1w whose name has an entity that derivative names could not keep.

    Every derivative carries its source's entities (:data:`naming.SOURCE_ENTITIES`); one it
    would drop could make two scans' files collide, or a report miss a scan's files.
    """
    for path in (checked.scan.pet, checked.scan.t1w):
        unknown = naming.unknown_entities(path.name) if path is not None else []
        if unknown:
            known = ", ".join(f"{key}-" for key in naming.SOURCE_ENTITIES)
            raise InputError(
                path, f"taupet-bids cannot keep the entities {', '.join(unknown)} in the names "
                "of its derivatives", f"name the file with these entities only: {known}",
            )  # fmt: skip


def plan_scan(config: RunConfig, checked: CheckedScan) -> ScanPlan:
    """The plan of one checked scan; raises :class:`InputError` when the scan cannot be run."""
    check_entities(checked)
    stem = naming.scan_stem(checked.scan.pet.name)
    name = naming.node_name(stem)
    scale, units = output_units(checked)
    normalisation = normalisation_method(config, checked)
    mask, mask_reason = regional_mask(config, normalisation)
    return ScanPlan(
        checked=checked,
        stem=stem,
        bids_dir=config.bids_dir,
        output_dir=config.output_dir,
        staging_dir=config.work_dir / "staging" / name,
        marker=config.work_dir / "committed" / f"{name}.txt",
        atlases=tuple(config.atlases),
        normalisation=normalisation,
        mr_less_bundle=config.mr_less_model,
        pvc_methods=tuple(config.pvc),
        pvc_fwhm_mm=pvc_fwhm(config, checked),
        centaurz_tracer=centaurz_tracer(config, checked),
        centaur_masks=config.centaur_masks,
        braak_uncorrected=braak_uncorrected_set(config, checked),
        units_scale=scale,
        units=units,
        seed=config.seed,
        omp_nthreads=config.omp_nthreads,
        use_fsl=config.use_fsl,
        regional_mask=mask,
        regional_mask_reason=mask_reason,
    )


def reset_scan_folders(plan: ScanPlan) -> None:
    """An empty staging folder and no success marker, before the scan's graph runs.

    Files staged by an earlier run would otherwise be committed with this run's, and an old
    marker would report a failed scan as finished.
    """
    shutil.rmtree(plan.staging_dir, ignore_errors=True)
    plan.staging_dir.mkdir(parents=True)
    plan.marker.parent.mkdir(parents=True, exist_ok=True)
    plan.marker.unlink(missing_ok=True)
