"""Entry point of the BIDS App: check inputs, build the graph, run it, report every scan."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from taupet_bids import __version__, naming, templates
from taupet_bids.boilerplate import methods_text
from taupet_bids.cli import signals
from taupet_bids.cli.parser import parse_args
from taupet_bids.cli.signals import StopRun
from taupet_bids.config import RunConfig
from taupet_bids.errors import InputError, TaupetError, report_unexpected
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
    "*_classification.json",
    "*_map.nii.gz",
    "*_map.json",
    "*_regions.tsv",
    "*_regions.json",
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


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_folders(config: RunConfig) -> None:
    """Refuse output and work folders that would damage the input or another pipeline's files.

    Reads only: nothing is written before every check passed. The output folder may not be the
    input dataset, hold it, or lie inside it except under its ``derivatives/`` (which pybids
    and the BIDS validator skip); the work folder likewise. An output folder whose
    dataset_description.json does not name taupet-bids in GeneratedBy (fMRIPrep's, a raw
    dataset) is refused unless ``--force-output-dir``.
    """
    bids = config.bids_dir.resolve()
    derivatives = bids / "derivatives"
    output = config.output_dir.resolve()
    suggestion = f"write the derivatives to {derivatives / 'taupet-bids'} or outside the dataset"
    if output == bids:
        raise InputError(None, f"the output folder {output} is the input dataset", suggestion)
    if bids in output.parents and not _inside(output, derivatives):
        raise InputError(
            None, f"the output folder {output} is inside the input dataset {bids}", suggestion
        )
    if output in bids.parents:
        raise InputError(
            None, f"the output folder {output} holds the input dataset {bids}", suggestion
        )
    if config.analysis_level == "participant":
        work = config.work_dir.resolve()
        if _inside(work, bids) and not _inside(work, derivatives):
            raise InputError(
                None,
                f"the work folder {work} is inside the input dataset {bids}",
                "give --work-dir a folder outside the dataset",
            )
    owner = _output_owner(output)
    if owner and not config.force_output_dir:
        raise InputError(
            None,
            f"the output folder {output} was made by {owner}, not taupet-bids",
            "choose another output folder, or pass --force-output-dir to write beside its files",
        )


def _output_owner(output: Path) -> str:
    """Who made an existing output folder other than taupet-bids ("" for taupet-bids or none)."""
    description = output / "dataset_description.json"
    if not description.is_file():
        return ""
    try:
        data = json.loads(description.read_text())
    except (OSError, ValueError) as error:
        return f"an unknown tool (its dataset_description.json cannot be read: {error})"
    generated = data.get("GeneratedBy") if isinstance(data, dict) else None
    entries = generated if isinstance(generated, list) else []
    names = [str(entry.get("Name")) for entry in entries if isinstance(entry, dict)]
    if "taupet-bids" in names:
        return ""
    if names:
        return ", ".join(names)
    kind = data.get("DatasetType", "raw") if isinstance(data, dict) else "unknown"
    return f"another tool (its dataset_description.json has no GeneratedBy; DatasetType {kind})"


def _our_generator() -> dict:
    return {
        "Name": "taupet-bids",
        "Version": __version__,
        "CodeURL": "https://github.com/taupet-bids/taupet-bids",
    }


def _write_whole(path: Path, text: str) -> None:
    """Write a small file by rename, so a reader (another task) never sees half of it."""
    partial = path.with_name(f".taupet-partial-{os.getpid()}-{path.name}")
    try:
        partial.write_text(text)  # a new file: the umask's mode
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def prepare_output_dir(config: RunConfig, lock_work: bool = False) -> None:
    """Check the folders can be written, then create the output's description; one clear line.

    With ``lock_work``, the work folder is checked and locked for this run (one run per work
    folder) before anything is written into the output folder, so a run that cannot start
    leaves no description, .bidsignore or log behind. Commits that a killed run left half-done
    are rolled back here.
    """
    from taupet_bids.cli.locks import lock_work_folder
    from taupet_bids.interfaces.derivatives import output_lock, sweep_unfinished_commits

    output = config.output_dir
    created = not output.exists()
    try:
        output.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=output, prefix=".taupet-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise InputError(
            output,
            f"cannot write to the output folder ({error.strerror})",
            "choose a folder you can write to",
        ) from None
    if lock_work:
        try:
            lock_work_folder(config.work_dir)
        except InputError:
            if created:
                with contextlib.suppress(OSError):
                    output.rmdir()
            raise
    with output_lock(output):
        removed = sweep_unfinished_commits(output, older_versions=True)
        if removed:
            LOG.warning("Rolled back what a killed run left half-written in %s: %s", output,
                        ", ".join(str(path.relative_to(output)) for path in removed))  # fmt: skip
        _describe_output(config)


def _describe_output(config: RunConfig) -> None:
    output = config.output_dir
    description = output / "dataset_description.json"
    if not description.exists():
        _write_whole(description, json.dumps({
            "Name": "taupet-bids derivatives",
            "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [_our_generator()],
            "SourceDatasets": [{"URL": config.bids_dir.as_uri()}],
            "DatasetLinks": {"raw": config.bids_dir.as_uri()},
        }, indent=2) + "\n")  # fmt: skip
    elif _output_owner(output) and config.force_output_dir:
        LOG.warning("--force-output-dir: writing beside another pipeline's files in %s", output)
        with contextlib.suppress(OSError, ValueError, AttributeError):  # unreadable: left as is
            data = json.loads(description.read_text())
            if not isinstance(data.get("GeneratedBy"), list):
                data["GeneratedBy"] = []
            data["GeneratedBy"].append(_our_generator())
            _write_whole(description, json.dumps(data, indent=2) + "\n")
    ignore = output / ".bidsignore"
    present = ignore.read_text().splitlines() if ignore.exists() else []
    missing = [pattern for pattern in BIDSIGNORE if pattern not in present]
    if missing:  # outputs of an older version get the newer patterns too
        _write_whole(ignore, "\n".join([*present, *missing]) + "\n")


def _crash_reason(config: RunConfig, *workflows: str) -> str:
    """The last line of the first Nipype crash report of one scan (or synthesis workflow), or
    of the T1w workflow it depends on; ``workflows`` are their names in the graph."""
    from nipype.utils.filemanip import loadcrash

    for crash in sorted((config.work_dir / "crashes").glob("crash-*.pklz")):
        try:
            report = loadcrash(str(crash))
        except Exception:  # noqa: BLE001 - a crash file we cannot read is someone else's
            continue
        fullname = getattr(report.get("node"), "fullname", "")
        if not any(f".{name}." in f".{fullname}" for name in workflows):
            continue
        lines = [line for line in "".join(report["traceback"]).splitlines() if line.strip()]
        return f"{lines[-1].strip() if lines else 'failed'} (details: {crash})"
    return "failed without a crash report; rerun with -vv"


def log_resolution(plan) -> None:
    """One log line per scan: its resolution, the PVC PSF and any smoothing, with sources."""
    name = plan.pet.name
    if plan.scan_fwhm_mm is None:
        return
    LOG.info("%s: resolution %.2f mm FWHM from %s", name, plan.scan_fwhm_mm,
             plan.scan_fwhm_source)  # fmt: skip
    if plan.smooth_to_fwhm_mm and plan.smooth_kernel_mm:
        LOG.info("%s: smoothed to %.2f mm FWHM with a %.2f mm Gaussian", name,
                 plan.smooth_to_fwhm_mm, plan.smooth_kernel_mm)  # fmt: skip
    elif plan.smooth_to_fwhm_mm:
        LOG.info("%s: not smoothed: %.2f mm is already at or coarser than --smooth-to-fwhm "
                 "%.2f mm", name, plan.scan_fwhm_mm, plan.smooth_to_fwhm_mm)  # fmt: skip
    if plan.pvc_fwhm_mm is not None:
        LOG.info("%s: PSF for --pvc %.2f mm FWHM", name, plan.pvc_fwhm_mm)


def check_t1w(plan) -> None:
    """The MR-based path's T1w must be usable; a scan that was to be harmonised says what its
    T1w meant for harmonisation, and how to get its outputs without it."""
    from taupet_bids import bids

    try:
        bids.check_t1w(plan.t1w)
    except InputError as error:
        if not plan.harmonize:
            raise
        raise InputError(
            plan.t1w,
            f"{error.problem}; this PET/MR scan was to be harmonised with it "
            "(--harmonize), and its MR-based normalisation needs it too",
            "fix the T1w, or run with --mr-less always: the scan is then normalised without "
            "MRI and harmonised with the template's anatomy",
        ) from None


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
        allow_none=bool(config.synthesize),
    )
    LOG.info("Found %d PET scan(s)", len(scans))
    plans, outcomes = [], []
    for scan in scans:
        other = bids.non_tau_tracer(scan) if config.tracer is None else None
        if other is not None:
            article = "an" if other.target[0] in "aeiou" else "a"
            LOG.info("SKIPPED %s: %s is %s %s tracer, not tau; pass --tracer %s to process it",
                     scan.pet.name, other.name, article, other.target, other.name)  # fmt: skip
            continue
        try:
            checked = bids.check_pet_scan(
                scan, window=config.pet_window, reference_region=config.reference_region
            )
            plan = plan_scan(config, checked)
            if not plan.mr_less:
                check_t1w(plan)
            if config.harmonize != "none":
                LOG.info("%s: %s: %s", scan.pet.name,
                         "harmonised" if plan.harmonize else "not harmonised",
                         plan.harmonization_reason)  # fmt: skip
            if plan.regional_mask != config.regional_mask:
                LOG.info("%s: regional means use the %s masks: %s", scan.pet.name,
                         plan.regional_mask, plan.regional_mask_reason)  # fmt: skip
            log_resolution(plan)
        except InputError as error:
            outcomes.append(ScanOutcome(scan.pet, False, str(error)))
            LOG.error("SKIPPED %s", error)
            continue
        for warning in checked.warnings:
            LOG.warning("%s: %s", scan.pet.name, warning)
        plans.append(plan)
    return plans, outcomes


def select_synthesis(config: RunConfig, plans: list) -> list:
    """``--synthesize``: one plan per task and session with the task's input.

    From a T1w, sessions are found by their T1w, so a T1w-only session is planned too; a
    planned scan whose session has no T1w is refused for the task with one log line. From FDG,
    each planned FDG scan (``--tracer FDG``) is the input. The rest go on.
    """
    if not config.synthesize:
        return []
    from taupet_bids.synthesis.networks import TASKS  # PyTorch: only when a task asks for it

    t1w_tasks = [task for task in config.synthesize if TASKS[task].source == "T1w"]
    synthesis = _t1w_synthesis(config, plans, t1w_tasks) if t1w_tasks else []
    for task in config.synthesize:
        if TASKS[task].source == "FDG":
            synthesis += _fdg_synthesis(config, plans, task)
    LOG.info("Planned %d synthesis run(s) (%s)", len(synthesis), ", ".join(config.synthesize))
    return synthesis


def _t1w_synthesis(config: RunConfig, plans: list, tasks: list[str]) -> list:
    from taupet_bids import bids
    from taupet_bids.plan import plan_synthesis

    sessions = bids.collect_t1w_sessions(
        config.bids_dir, list(config.participant_label) or None, config.session
    )
    synthesis = []
    for task in tasks:
        for plan in plans:
            if plan.t1w is None:
                LOG.warning("SYNTHESIS SKIPPED %s: --synthesize %s needs a T1w and this "
                            "session has none", plan.pet.name, task)  # fmt: skip
        for session in sessions:
            try:
                synthesis.append(plan_synthesis(config, task, session.t1w, plans))
            except InputError as error:
                LOG.error("SYNTHESIS SKIPPED %s", error)
    return synthesis


def _fdg_synthesis(config: RunConfig, plans: list, task: str) -> list:
    """One plan per planned FDG scan; none planned is said once, with what to add."""
    from taupet_bids.plan import plan_pet_synthesis

    fdg = [plan for plan in plans if plan.tracer == "FDG"]
    if not fdg:
        LOG.warning("SYNTHESIS SKIPPED: --synthesize %s found no FDG scan in this run (FDG "
                    "scans are processed with --tracer FDG)", task)  # fmt: skip
    synthesis = []
    for plan in fdg:
        try:
            synthesis.append(plan_pet_synthesis(config, task, plan))
        except InputError as error:
            LOG.error("SYNTHESIS SKIPPED %s", error)
    return synthesis


def process_scans(config: RunConfig, plans: list, synthesis: list = ()) -> list[ScanOutcome]:
    """Run one graph over every planned scan (and ``--synthesize`` session); a scan succeeded
    when its commit node ran."""
    from taupet_bids.cli.multiproc import ReportingMultiProcPlugin
    from taupet_bids.plan import reset_scan_folders
    from taupet_bids.workflows.base import anat_name, init_participant_wf, registering_plan

    if not plans and not synthesis:
        return []
    workflow = init_participant_wf(plans, config.work_dir, list(synthesis), config.bids_dir)
    for plan in [*plans, *synthesis]:
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
        anat = [] if plan.mr_less else [anat_name(plan)]
        reason = "" if done else _crash_reason(config, f"scan_{plan.name}", *anat)
        outcomes.append(ScanOutcome(plan.pet, done, reason))
    by_name = {plan.name: plan for plan in plans}
    for plan in synthesis:
        done = plan.marker.exists()
        registered = registering_plan(plan, by_name)
        anat = [] if plan.input_pet is not None else [anat_name(registered)]
        reason = "" if done else _crash_reason(config, plan.name, *anat)
        # Named by its input: the T1w, or the FDG scan of tau-from-fdg.
        outcomes.append(ScanOutcome(plan.t1w or plan.input_pet, done, reason))
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


def _subject_reports(
    config: RunConfig, outcomes: list[ScanOutcome], methods: str
) -> list[ScanOutcome]:
    """One HTML report per participant with at least one finished scan.

    A report that cannot be written fails the participant's finished scans, with one line.
    """
    from taupet_bids.reports.subject import write_subject_report

    subjects = sorted({naming.subject_of(o.pet.name) for o in outcomes if o.ok})
    if subjects:
        LOG.info("Writing %d subject report(s)", len(subjects))
    failed: dict[str, str] = {}
    for subject in subjects:
        report = config.output_dir / f"{subject}.html"
        try:
            LOG.info("Report: %s", write_subject_report(config.output_dir, subject, methods))
        except StopRun:  # stopped while writing it: no half-written report is left
            report.unlink(missing_ok=True)
            raise
        except Exception as error:  # noqa: BLE001 - one report must not stop the others
            report.unlink(missing_ok=True)  # perhaps half-written
            message = f"{type(error).__name__}: {' '.join(str(error).split())}"
            failed[subject] = f"its report {report.name} could not be written ({message})"
    return [
        ScanOutcome(o.pet, False, failed[naming.subject_of(o.pet.name)])
        if o.ok and naming.subject_of(o.pet.name) in failed
        else o
        for o in outcomes
    ]


def run_group_level(config: RunConfig) -> int:
    """Gather the participant tables into group tables and a group report.

    Every file is read and checked before anything is written (``group.gather``): with no
    usable participant table the run stops with one line and writes nothing, not even the
    output's description. A scan with a damaged file is left out with a warning naming the
    file, and so is a broken participants.tsv; the group tables of the others are written and
    the exit code is 1 (as at the participant level, 0 only when nothing was left out).
    """
    from taupet_bids.group import NothingToGather, gather, write_group

    try:
        inputs = gather(config.output_dir)
    except NothingToGather as error:
        print(f"taupet-bids: error: {error}", file=sys.stderr)
        return 1
    prepare_output_dir(config)
    result = write_group(inputs, config.bids_dir, config.output_dir, config.tau_cutpoint,
                         config.braak_reference_diagnosis)  # fmt: skip
    LOG.info("Group report: %s", result.report)
    if result.skipped:
        print(f"taupet-bids: {result.summary()}", file=sys.stderr)
        return 1
    return 0


def _stopped(config: RunConfig, stop: StopRun) -> int:
    """After SIGTERM or SIGINT: kill the workers, roll back a commit left half-way, one line."""
    from taupet_bids.cli.multiproc import shut_down_pools
    from taupet_bids.interfaces.derivatives import output_lock, sweep_unfinished_commits

    signals.ignore()
    signals.kill_descendants()
    shut_down_pools()
    output = config.output_dir
    try:
        if output.is_dir():
            with output_lock(output):
                sweep_unfinished_commits(output)
        line = f"nothing half-written was left in {output}; rerun to resume"
    except OSError as error:
        line = f"could not clean {output} ({error.strerror}); rerun to resume, which cleans it"
    LOG.warning("Stopped by %s", stop.name)
    print(f"taupet-bids: stopped by {stop.name}; {line}", file=sys.stderr, flush=True)
    return stop.exit_code


def main(argv: list[str] | None = None) -> int:
    """Run the BIDS App; exit code 0 only when every selected scan succeeded.

    SIGTERM and SIGINT stop the run cleanly (see ``cli/signals.py``): 143 and 130. An
    unexpected error (a bug) gives 2, one line and a crash file (:func:`_internal_error`).
    """
    config = parse_args(argv)
    _setup_logging(config)
    previous = signals.install()
    try:
        return _run(config)
    except StopRun as stop:
        return _stopped(config, stop)
    except Exception as error:  # noqa: BLE001 - a bug: one line for the user, the trace in a file
        return _internal_error(config, error)
    finally:
        signals.restore(previous)


def _internal_error(config: RunConfig, error: Exception) -> int:
    """A bug: one line for the user, the traceback in the run's ``logs/`` (errors.py)."""
    LOG.debug("internal error", exc_info=error)
    return report_unexpected("taupet-bids", error, config.output_dir / "logs")


def _run(config: RunConfig) -> int:
    try:
        LOG.info("taupet-bids %s: %s level on %s", __version__, config.analysis_level,
                 config.bids_dir)  # fmt: skip
        check_folders(config)
        if config.analysis_level == "group":
            return run_group_level(config)
        templates.ensure_templateflow()
        plans, outcomes = select_scans(config)
        synthesis = select_synthesis(config, plans)
        if not plans and not outcomes and not synthesis:
            raise InputError(config.bids_dir, "no PET scan and no T1w to synthesise from")
        prepare_output_dir(config, lock_work=True)
    except TaupetError as error:
        print(f"taupet-bids: error: {error}", file=sys.stderr)
        return 1
    log_file = _add_log_file(config)
    outcomes += process_scans(config, plans, synthesis)
    citation = config.output_dir / "logs" / "CITATION.md"
    methods = methods_text(config)
    written = True
    try:
        _write_whole(citation, methods)
    except OSError as error:
        LOG.error("FAILED %s: %s", citation, error.strerror)
        written = False
    outcomes = _subject_reports(config, outcomes, methods)
    _report(outcomes, config.output_dir)
    LOG.info("Methods boilerplate: %s; log: %s", citation, log_file)
    return 0 if written and outcomes and all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
