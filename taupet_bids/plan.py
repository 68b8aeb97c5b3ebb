"""One frozen plan per PET scan: every decision about the scan, made once, before any graph.

The run configuration says what the user asked for; the checked scan says what the files hold.
:func:`plan_scan` combines them (normalisation path, PSF, CenTauRz tracer, staging thresholds,
output units, where the scan's files wait before the commit, the scan's resolution and any
smoothing to a uniform one), and the workflow factories read
the plan instead of a dozen loose arguments and look nothing up again. A plan that cannot be
made (no PSF for ``--pvc``, no T1w with ``--mr-less never``) refuses the scan with a clear
error, before any work.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from taupet_bids import centaurz, naming, scanners, staging
from taupet_bids.bids import CheckedScan
from taupet_bids.config import RunConfig
from taupet_bids.core.pvc import psf_fwhm_from_sidecar
from taupet_bids.core.resolution import kernel_fwhm
from taupet_bids.errors import InputError
from taupet_bids.harmonisation import detection

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
    #: Where the PVC PSF came from (an option, a table row, the smoothing target), or None.
    pvc_fwhm_source: str | None
    #: The scan's own resolution (FWHM, mm) and its source, when PVC or smoothing needs it.
    scan_fwhm_mm: float | None
    scan_fwhm_source: str | None
    #: ``--smooth-to-fwhm`` (mm), or None; and the Gaussian (FWHM, mm) that gets this scan
    #: there (0 for a scan already at or coarser than the target).
    smooth_to_fwhm_mm: float | None
    smooth_kernel_mm: float | None
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
    #: ``--pvc-regions`` as asked (:attr:`pvc_soft_regions` says whether this scan uses soft).
    pvc_regions: str = "hard"
    #: ``--classify``: the trained AD-vs-CN bundle run on the template-space SUVR, or None.
    classifier_bundle: Path | None = None
    #: ``--harmonize``: the harmoniser bundle when this scan is harmonised, else None; why
    #: (:mod:`taupet_bids.harmonisation.detection`), and the anatomy it uses (``subject``: the
    #: T1w warped to the template; ``template``: the template's T1w, for an MR-less scan).
    harmonization_bundle: Path | None = None
    harmonization_reason: str = ""
    harmonization_anatomy: str | None = None
    #: The AC method the harmoniser is told (:func:`taupet_bids.harmonisation.detection.ac_method`).
    harmonization_ac_method: str | None = None

    @property
    def harmonize(self) -> bool:
        """The scan gets a harmonised SUVR image and tables beside the measured ones."""
        return self.harmonization_bundle is not None

    @property
    def classify(self) -> bool:
        """The scan gets P(AD), its label and an occlusion map (``--classify``)."""
        return self.classifier_bundle is not None

    @property
    def subject_gm(self) -> bool:
        """Regional means and the reference follow the subject's grey matter."""
        return self.regional_mask == "subject-gm"

    @property
    def pvc_soft_regions(self) -> bool:
        """PVC shares brain voxels between tissues by the T1w's fractions (``--pvc-regions
        soft``): only where it runs in PET space with the subject's tissues (subject-gm)."""
        return bool(self.pvc_methods) and self.subject_gm and self.pvc_regions == "soft"

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
    def tau_tracer(self) -> bool:
        """A tau tracer, or one taupet-bids does not know (processed as tau); False for FDG, TSPO
        and amyloid tracers, whose uptake the tau PET template does not describe."""
        return self.checked.tracer is None or self.checked.tracer.target == "tau"

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


def _sidecar_path(checked: CheckedScan) -> Path:
    return checked.scan.sidecar or checked.scan.pet


def _scanner_name(metadata: dict) -> str:
    parts = [metadata.get(key) for key in ("Manufacturer", "ManufacturersModelName")]
    scanner = " ".join(str(part) for part in parts if part) or "an unnamed scanner"
    recon = metadata.get("ReconMethodName")
    filt = scanners.sidecar_filter_mm(metadata)
    filt = "a non-Gaussian filter" if filt is None else f"filter {filt:g} mm"
    return f"{scanner!r} (recon {recon!r}, {filt})"


def scan_resolution(config: RunConfig, checked: CheckedScan, purpose: str) -> tuple[float, str]:
    """The scan's own resolution (FWHM, mm) and where it came from, first found of:

    1. ``--pvc-fwhm``: taken as given, for every scan;
    2. the scanner resolution table (a ``--scanner-resolution`` file's rows before the
       shipped ones), matched on the sidecar's scanner and reconstruction: an ``effective``
       row as it is, a ``system`` row combined in quadrature with the sidecar's Gaussian
       filter;
    3. ``--pvc-scanner-fwhm`` combined in quadrature with the sidecar's Gaussian filter.

    A scan none of them covers, or whose filter is not Gaussian where a filter must be added,
    is refused with the sidecar named. ``purpose`` names the option that needs the value.
    """
    sidecar = _sidecar_path(checked)
    if config.pvc_fwhm:
        return float(config.pvc_fwhm), f"--pvc-fwhm {config.pvc_fwhm:g} (given for every scan)"
    row = scanners.lookup(checked.metadata, config.scanner_resolution)
    try:
        if row is not None and row.fwhm_kind == "effective":
            return row.fwhm_mm, row.describe()
        if row is not None:
            fwhm = psf_fwhm_from_sidecar(checked.metadata, row.fwhm_mm)
            return fwhm, f"{row.describe()}; combined with the sidecar's Gaussian filter"
        if config.pvc_scanner_fwhm:
            fwhm = psf_fwhm_from_sidecar(checked.metadata, config.pvc_scanner_fwhm)
            return fwhm, (
                f"--pvc-scanner-fwhm {config.pvc_scanner_fwhm:g} combined with the sidecar's "
                "Gaussian filter"
            )
    except (TypeError, ValueError) as err:
        raise InputError(
            sidecar, f"no resolution for {purpose}: {err}",
            "give the effective resolution with --pvc-fwhm or in a --scanner-resolution table",
        ) from err  # fmt: skip
    raise InputError(
        sidecar, f"no resolution for {purpose}: the scanner {_scanner_name(checked.metadata)} "
        "is not in the scanner resolution table and --pvc-scanner-fwhm was not given",
        "add the scanner to a --scanner-resolution table, or give --pvc-fwhm or "
        "--pvc-scanner-fwhm",
    )  # fmt: skip


def _needs_resolution(config: RunConfig) -> str | None:
    """The options that need the scan's resolution ("--pvc and --smooth-to-fwhm"), or None."""
    options = []
    if config.pvc:
        options.append("--pvc")
    if config.smooth_to_fwhm:
        options.append("--smooth-to-fwhm")
    return " and ".join(options) or None


def pvc_psf(config: RunConfig, checked: CheckedScan) -> tuple[float, str] | None:
    """The PSF FWHM (mm) for this scan's partial-volume correction and its source.

    None without ``--pvc``. Without smoothing it is the scan's own resolution
    (:func:`scan_resolution`). With ``--smooth-to-fwhm T`` every later step sees the smoothed
    image, whose FWHM is ``T``, or the scan's own when that is already coarser.
    """
    if not config.pvc:
        return None
    fwhm, source = scan_resolution(config, checked, _needs_resolution(config) or "--pvc")
    target = config.smooth_to_fwhm
    if target and target > fwhm:
        return float(target), (
            f"--smooth-to-fwhm {target:g}: the image was smoothed from {fwhm:.2f} mm ({source})"
        )
    if target:
        return fwhm, f"{source}; not smoothed: already at or coarser than --smooth-to-fwhm"
    return fwhm, source


def pvc_fwhm(config: RunConfig, checked: CheckedScan) -> float | None:
    """The PSF FWHM (mm) for this scan's partial-volume correction; None without ``--pvc``."""
    psf = pvc_psf(config, checked)
    return None if psf is None else psf[0]


def resolution_fields(config: RunConfig, checked: CheckedScan) -> dict:
    """The plan's resolution fields: the scan's FWHM, the PVC PSF and any smoothing kernel."""
    purpose = _needs_resolution(config)
    scan = scan_resolution(config, checked, purpose) if purpose else (None, None)
    psf = pvc_psf(config, checked) or (None, None)
    target = config.smooth_to_fwhm
    return {
        "scan_fwhm_mm": scan[0], "scan_fwhm_source": scan[1],
        "pvc_fwhm_mm": psf[0], "pvc_fwhm_source": psf[1],
        "smooth_to_fwhm_mm": float(target) if target else None,
        "smooth_kernel_mm": kernel_fwhm(target, scan[0]) if target else None,
    }  # fmt: skip


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


def harmonization_fields(config: RunConfig, checked: CheckedScan, normalisation: str) -> dict:
    """``--harmonize``: whether this scan is harmonised, why, and with which anatomy.

    An MR-less scan (no T1w, or ``--mr-less always``) has no T1w in template space, so the
    network gets the template's T1w instead, and the reason says so.
    """
    decision = detection.decide(config.harmonize, checked.metadata)
    if not decision.harmonize or config.harmonization_bundle is None:
        return {"harmonization_reason": decision.reason}
    anatomy, reason = "subject", decision.reason
    if normalisation != "mr":
        anatomy = "template"
        why = "no T1w" if checked.scan.t1w is None else "normalised without MRI"
        reason += f"; {why}, so the harmoniser uses the template's T1w as anatomy"
    return {
        "harmonization_bundle": config.harmonization_bundle,
        "harmonization_reason": reason,
        "harmonization_anatomy": anatomy,
        "harmonization_ac_method": decision.ac_method,
    }


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
        **resolution_fields(config, checked),
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
        pvc_regions=config.pvc_regions,
        classifier_bundle=config.classifier_bundle,
        **harmonization_fields(config, checked, normalisation),
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


@dataclass(frozen=True)
class SynthesisPlan:
    """One synthesis task for one session's input (``--synthesize``), resolved once.

    From a T1w: sessions are found by their T1w, not their PET, so a T1w-only session gets its
    synthetic image too. When an MR-based scan of the same T1w is planned, its T1w registration
    is reused (:attr:`scan_name`); otherwise the session's T1w tasks share one registration.
    From an FDG scan (:attr:`input_pet`): the scan is planned like any other (``--tracer FDG``)
    and its template-space SUVR (:attr:`scan_name`'s) is the network's input.
    """

    task: str
    #: The session's raw T1w (None for a PET input).
    t1w: Path | None
    #: The input's source entities (``sub-01_ses-01``, ``sub-01_acq-mprage``, or the FDG
    #: scan's ``sub-01_ses-01_trc-18FFDG``).
    stem: str
    bundle: Path
    #: The ``desc-`` label of the outputs and the tracer the network imitates (``trc-``).
    desc: str
    tracer: str
    reference_region: str
    output_dir: Path
    staging_dir: Path
    marker: Path
    atlases: tuple[str, ...]
    seed: int
    omp_nthreads: int
    #: The Nipype name of a planned MR-based scan with this T1w, whose registration is reused.
    scan_name: str | None = None
    #: The T1w workflow's options, as a scan plan has them (the synthesis needs no tissues).
    subject_gm: bool = False
    #: The raw PET the network reads (the FDG scan of ``tau-from-fdg``), else None.
    input_pet: Path | None = None
    #: A diffusion bundle's clinical values for this session ((variable, value or None) pairs;
    #: None for other networks) and the number of samples averaged.
    clinical: tuple[tuple[str, float | str | None], ...] | None = None
    n_samples: int = 1

    @property
    def name(self) -> str:
        """Nipype-safe name of this task and session (``synth_tau_from_t1w_sub_01_ses_01``)."""
        return naming.node_name(f"synth_{self.task}_{self.stem}")


def plan_synthesis(config: RunConfig, task: str, t1w: Path, scans: list[ScanPlan]) -> SynthesisPlan:
    """The plan of ``task`` on one T1w, reusing the registration of a scan that has it."""
    from taupet_bids.synthesis.bundle import read_card

    bundle = config.synthesis_bundle(task)
    if bundle is None:
        raise ValueError(f"no --synthesis-model for {task}")
    unknown = naming.unknown_entities(t1w.name)
    if unknown:
        raise InputError(t1w, f"taupet-bids cannot keep the entities {', '.join(unknown)}")
    card = read_card(bundle)
    stem = naming.scan_stem(t1w.name)
    reusable = [plan.name for plan in scans if not plan.mr_less and plan.t1w == t1w]
    values = None
    if card.network == "diffusion":
        from taupet_bids.synthesis.clinical import resolve

        parts = naming.entities(stem)
        session = f"ses-{parts['ses']}" if "ses" in parts else None
        try:
            found = resolve(config.bids_dir, f"sub-{parts['sub']}", session, config.clinical)
        except ValueError as err:  # a bad value in the tables: this session only is skipped
            raise InputError(
                config.bids_dir / "participants.tsv", str(err), "fix it or give --clinical"
            ) from None
        values = tuple(found.items())
    return _synthesis_plan(
        config, task, bundle, card, stem,
        t1w=t1w,
        scan_name=reusable[0] if reusable else None,
        clinical=values,
        n_samples=config.n_samples,
    )  # fmt: skip


def plan_pet_synthesis(config: RunConfig, task: str, scan: ScanPlan) -> SynthesisPlan:
    """The plan of ``task`` on one planned FDG scan: its template-space SUVR is the input.

    A scan whose SUVR has another reference region than the bundle's training inputs is
    refused (a network trained on pons-referenced FDG expects pons-referenced FDG).
    """
    from taupet_bids.synthesis.bundle import read_card

    bundle = config.synthesis_bundle(task)
    if bundle is None:
        raise ValueError(f"no --synthesis-model for {task}")
    card = read_card(bundle)
    trained_on = card.source_reference_regions
    if trained_on and scan.reference_region not in trained_on:
        raise InputError(
            scan.pet,
            f"--synthesize {task}: its SUVR uses the reference {scan.reference_region}, the "
            f"model was trained on {', '.join(trained_on)}",
            f"process it with --reference-region {trained_on[0]}",
        )
    return _synthesis_plan(
        config, task, bundle, card, scan.stem, t1w=None, scan_name=scan.name, input_pet=scan.pet
    )


def _synthesis_plan(
    config: RunConfig, task: str, bundle: Path, card, stem: str, **inputs
) -> SynthesisPlan:
    """The fields every synthesis plan takes from the run and the bundle's card, plus
    ``inputs`` (what the network reads and the scan whose registration it reuses).

    The tables use the card's reference region where the app knows it, else the default."""
    from taupet_bids import atlases as atlas_data

    reference = card.reference_region
    if reference not in atlas_data.reference_regions():
        reference = atlas_data.DEFAULT_REFERENCE
    name = naming.node_name(f"synth_{task}_{stem}")
    return SynthesisPlan(
        task=task,
        stem=stem,
        bundle=bundle,
        desc=card.desc,
        tracer=card.tracer,
        reference_region=reference,
        output_dir=config.output_dir,
        staging_dir=config.work_dir / "staging" / name,
        marker=config.work_dir / "committed" / f"{name}.txt",
        atlases=tuple(config.atlases),
        seed=config.seed,
        omp_nthreads=config.omp_nthreads,
        **inputs,
    )
