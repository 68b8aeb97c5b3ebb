"""Entry point of the BIDS App: check inputs, build the graph, run it, report every scan."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from taupet_bids import __version__, naming, templates
from taupet_bids.boilerplate import methods_text
from taupet_bids.cli.parser import parse_args
from taupet_bids.config import RunConfig
from taupet_bids.errors import InputError, TaupetError
from taupet_bids.reports.progress import ProgressTracker

LOG = logging.getLogger("taupet_bids")

BIDSIGNORE = [
    "*_suvr.tsv",
    "*_suvr.json",
    "*_timeseries.tsv",
    "*_timeseries.json",
    "*_centaurz.tsv",
    "*_centaurz.json",
    "*_braakstage.tsv",
    "*_braakstage.json",
    "*_xfm.mat",
    "*_xfm.nii.gz",
    "*_xfm.json",
    "*_qc.json",
    "*.html",
    "logs/",
    "**/figures",  # the validator wants the folder itself ignored, not only its files
    "/group",
]


@dataclass
class ScanOutcome:
    """What happened to one PET scan."""

    pet: Path
    ok: bool
    reason: str = ""


def _setup_logging(config: RunConfig) -> None:
    """Log to the terminal from the start; the log file is added once the output folder exists."""
    from nipype import config as nipype_config
    from nipype import logging as nipype_logging

    level = logging.DEBUG if config.verbose > 1 else logging.INFO
    handler = logging.StreamHandler(sys.stdout)
    logging.basicConfig(
        level=level, format="%(asctime)s %(message)s", handlers=[handler], force=True
    )
    # Nipype prints through its own handler: quiet unless asked (-v), and not echoed twice.
    nipype_level = "INFO" if config.verbose else "WARNING"
    nipype_config.set("logging", "workflow_level", nipype_level)
    nipype_config.set("logging", "interface_level", nipype_level)
    nipype_logging.update_logging(nipype_config)
    logging.getLogger("nipype").propagate = False


def _add_log_file(config: RunConfig) -> Path:
    log_dir = config.output_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"taupet-bids_{time.strftime('%Y%m%d-%H%M%S')}.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger().addHandler(handler)
    return log_file


def prepare_output_dir(config: RunConfig) -> None:
    """Create the output folder with its dataset description, or fail with one clear line."""
    output = config.output_dir
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".taupet-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise InputError(
            output,
            f"cannot write to the output folder ({error.strerror})",
            "choose a folder you can write to",
        ) from None
    description = output / "dataset_description.json"
    if not description.exists():
        description.write_text(json.dumps({
            "Name": "taupet-bids derivatives",
            "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "taupet-bids", "Version": __version__,
                             "CodeURL": "https://github.com/taupet-bids/taupet-bids"}],
            "SourceDatasets": [{"URL": config.bids_dir.as_uri()}],
            "DatasetLinks": {"raw": config.bids_dir.as_uri()},
        }, indent=2) + "\n")  # fmt: skip
    ignore = output / ".bidsignore"
    present = ignore.read_text().splitlines() if ignore.exists() else []
    missing = [pattern for pattern in BIDSIGNORE if pattern not in present]
    if missing:  # outputs of an older version get the newer patterns too
        ignore.write_text("\n".join([*present, *missing]) + "\n")


def _crash_reason(config: RunConfig, name: str) -> str:
    """The last line of the first Nipype crash report of one scan."""
    from nipype.utils.filemanip import loadcrash

    for crash in sorted((config.work_dir / "crashes").glob("crash-*.pklz")):
        try:
            report = loadcrash(str(crash))
        except Exception:  # noqa: BLE001 - a crash file we cannot read is someone else's
            continue
        if f"scan_{name}." not in getattr(report.get("node"), "fullname", ""):
            continue
        lines = [line for line in "".join(report["traceback"]).splitlines() if line.strip()]
        return f"{lines[-1].strip() if lines else 'failed'} (details: {crash})"
    return "failed without a crash report; rerun with -vv"


def select_scans(config: RunConfig) -> tuple[list, list[ScanOutcome]]:
    """Find, check and plan every selected scan; the ones that fail are reported, not run."""
    from taupet_bids import bids
    from taupet_bids.plan import plan_scan

    if not config.skip_bids_validation:
        LOG.info("Validating %s with bids-validator-deno", config.bids_dir)
        bids.validate_dataset(config.bids_dir)
    scans = bids.collect_scans(
        config.bids_dir,
        participant_labels=list(config.participant_label) or None,
        session=config.session,
        tracer=config.tracer,
        rec=config.rec,
        run=config.run,
    )
    LOG.info("Found %d PET scan(s)", len(scans))
    plans, outcomes = [], []
    for scan in scans:
        try:
            checked = bids.check_pet_scan(
                scan, window=config.pet_window, reference_region=config.reference_region
            )
            plan = plan_scan(config, checked)
            if not plan.mr_less:
                bids.check_t1w(scan.t1w)
            if plan.pvc_fwhm_mm is not None and not config.pvc_fwhm:
                LOG.info("%s: PSF for --pvc %.2f mm FWHM (scanner and sidecar filter)",
                         scan.pet.name, plan.pvc_fwhm_mm)  # fmt: skip
        except InputError as error:
            outcomes.append(ScanOutcome(scan.pet, False, str(error)))
            LOG.error("SKIPPED %s", error)
            continue
        for warning in checked.warnings:
            LOG.warning("%s: %s", scan.pet.name, warning)
        plans.append(plan)
    return plans, outcomes


def process_scans(config: RunConfig, plans: list) -> list[ScanOutcome]:
    """Run one graph over every planned scan; a scan succeeded when its commit node ran."""
    from taupet_bids.cli.multiproc import ReportingMultiProcPlugin
    from taupet_bids.plan import reset_scan_folders
    from taupet_bids.workflows.base import init_participant_wf

    if not plans:
        return []
    workflow = init_participant_wf(plans, config.work_dir)
    for plan in plans:
        reset_scan_folders(plan)
    # Crash reports of an earlier run would be mistaken for this run's.
    for stale in (config.work_dir / "crashes").glob("crash-*.pklz"):
        stale.unlink()
    LOG.info("Processing %d scan(s) with %s (%d processes)", len(plans), config.plugin,
             config.nprocs)  # fmt: skip
    progress = ProgressTracker([plan.name for plan in plans])
    plugin_args = {**config.plugin_args(), "status_callback": progress}
    plugin = (
        ReportingMultiProcPlugin(plugin_args=plugin_args)
        if config.plugin == "MultiProc"
        else config.plugin
    )
    try:
        workflow.run(plugin=plugin, plugin_args=plugin_args)
    except RuntimeError as error:  # Nipype: some nodes failed; which scans is told below
        LOG.debug("Nipype reported: %s", error)
    outcomes = []
    for plan in plans:
        done = plan.marker.exists()
        reason = "" if done else _crash_reason(config, plan.name)
        outcomes.append(ScanOutcome(plan.pet, done, reason))
    return outcomes


def _report(outcomes: list[ScanOutcome], output_dir: Path) -> None:
    good = [o for o in outcomes if o.ok]
    LOG.info("Finished: %d of %d scan(s) succeeded", len(good), len(outcomes))
    for outcome in outcomes:
        if outcome.ok:
            LOG.info("OK %s", outcome.pet.name)
            _warn_normalisation(output_dir, outcome.pet)
    for outcome in outcomes:
        if not outcome.ok:
            LOG.error("FAILED %s: %s", outcome.pet.name, outcome.reason)


def _warn_normalisation(output_dir: Path, pet: Path) -> None:
    """Repeat a finished scan's normalisation QC flags in the log, where people look first."""
    from taupet_bids.reports import qc

    found = qc.scan_metrics(output_dir, naming.scan_stem(pet.name))
    for flag in found.get("normalisation_flags", []):
        LOG.warning("QC %s: %s", pet.name, flag)


def _subject_reports(config: RunConfig, outcomes: list[ScanOutcome], methods: str) -> None:
    """One HTML report per participant with at least one finished scan."""
    from taupet_bids.reports.subject import write_subject_reports

    subjects = sorted({naming.subject_of(o.pet.name) for o in outcomes if o.ok})
    if subjects:
        LOG.info("Writing %d subject report(s)", len(subjects))
        write_subject_reports(config.output_dir, subjects, methods)


def run_group_level(config: RunConfig) -> int:
    """Gather the participant tables into group tables and a group report."""
    from taupet_bids.group import run_group

    prepare_output_dir(config)
    try:
        report = run_group(config.bids_dir, config.output_dir, config.tau_cutpoint,
                           config.braak_reference_diagnosis)  # fmt: skip
    except FileNotFoundError as error:
        print(f"taupet-bids: error: {error}", file=sys.stderr)
        return 1
    LOG.info("Group report: %s", report)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the BIDS App; exit code 0 only when every selected scan succeeded."""
    config = parse_args(argv)
    _setup_logging(config)
    try:
        LOG.info("taupet-bids %s: %s level on %s", __version__, config.analysis_level,
                 config.bids_dir)  # fmt: skip
        if config.analysis_level == "group":
            return run_group_level(config)
        templates.ensure_templateflow()
        plans, outcomes = select_scans(config)
        prepare_output_dir(config)
    except TaupetError as error:
        print(f"taupet-bids: error: {error}", file=sys.stderr)
        return 1
    log_file = _add_log_file(config)
    outcomes += process_scans(config, plans)
    citation = config.output_dir / "logs" / "CITATION.md"
    methods = methods_text(config)
    citation.write_text(methods)
    _subject_reports(config, outcomes, methods)
    _report(outcomes, config.output_dir)
    LOG.info("Methods boilerplate: %s; log: %s", citation, log_file)
    return 0 if outcomes and all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
