"""The BIDS-App command line: ``taupet-bids bids_dir output_dir {participant,group}``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from taupet_bids import __version__, atlases, scanners
from taupet_bids.config import (
    DEFAULT_ATLASES,
    DEFAULT_PVC_REGIONS,
    DEFAULT_REGIONAL_MASK,
    PVC_REGIONS,
    REGIONAL_MASKS,
    RunConfig,
)
from taupet_bids.interfaces.fsl import fsl_available
from taupet_bids.models import SHIPPED_CLASSIFIER

#: The tasks of ``--synthesize`` (taupet_bids.synthesis.networks.TASKS, not imported here so
#: that ``--help`` does not load torch).
SYNTHESIS_TASKS = ("tau-from-t1w", "tau-from-fdg", "tspo-from-t1w")

DESCRIPTION = """\
taupet-bids: regional tau PET SUVR from a BIDS dataset.

participant level: for every PET scan selected, select the frames of the late window,
correct inter-frame motion, average, register to the subject's T1w, normalise to
MNI152NLin6Asym, compute SUVR against a reference region, and write regional tables
(Desikan-Killiany, Braak I-VI, meta-temporal) as BIDS-Derivatives.
"""

EPILOG = """\
examples:
  taupet-bids /data/bids /data/derivatives/taupet participant --participant-label 001 002
  taupet-bids /data/bids /data/derivatives/taupet participant --pet-window 80 100 \\
      --reference-region InfCerebGrey --nprocs 8 --work-dir /scratch/taupet-work

A rerun with the same --work-dir reuses every finished step. The exit code is 0 when
every selected scan succeeded and 1 when any failed (each failure is listed at the end).
SIGTERM (exit code 143) and Ctrl-C (130) stop the workers and leave no scan half-written
in output_dir; a rerun resumes. A scan's files appear in output_dir all together or not
at all.
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, kept separate so docs and tests can inspect it."""
    parser = argparse.ArgumentParser(
        prog="taupet-bids",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bids_dir", type=Path, help="the root of the BIDS dataset")
    parser.add_argument(
        "output_dir",
        type=Path,
        help="where the derivatives are written: a new folder, or one taupet-bids made; "
        "not bids_dir itself, nor inside it except under bids_dir/derivatives/",
    )
    parser.add_argument(
        "analysis_level",
        choices=["participant", "group"],
        help="participant: process scans; group: gather participant tables",
    )
    parser.add_argument("--version", action="version", version=f"taupet-bids {__version__}")

    select = parser.add_argument_group("selecting scans")
    select.add_argument(
        "--participant-label",
        "--participant_label",
        nargs="+",
        default=[],
        metavar="LABEL",
        help="participants to process, with or without 'sub-' (default: all)",
    )
    select.add_argument("--session", "--session-id", help="only this session (ses- label)")
    select.add_argument("--tracer", "--trc", help="only PET with this trc- label")
    select.add_argument("--rec", help="only PET with this rec- label")
    select.add_argument("--run", help="only PET with this run- index")

    quant = parser.add_argument_group("quantification")
    quant.add_argument(
        "--reference-region",
        choices=list(atlases.reference_regions()),
        help="SUVR reference (default: the tracer's: InfCerebGrey for tau tracers, its deep part "
        "InfCerebGreyDeep for MK-6240, Pons for FDG)",
    )
    quant.add_argument(
        "--pet-window",
        nargs=2,
        type=float,
        metavar=("START", "END"),
        help="time window in minutes post-injection (default: the tracer's, e.g. 80 100)",
    )
    quant.add_argument(
        "--atlas",
        nargs="+",
        choices=list(DEFAULT_ATLASES),
        default=list(DEFAULT_ATLASES),
        help="atlases for regional tables (default: all)",
    )
    quant.add_argument(
        "--pvc",
        nargs="+",
        choices=["none", "gtm", "rbv", "mg"],
        default=["none"],
        help="partial-volume correction(s), written beside the uncorrected tables with a pvc- "
        "entity: gtm (regional), rbv, mg (voxel-wise); see docs/pvc.md (default: none)",
    )
    quant.add_argument(
        "--pvc-fwhm",
        type=float,
        metavar="MM",
        help="effective resolution (PSF FWHM, mm) of every PET for --pvc and --smooth-to-fwhm; "
        "overrides the scanner resolution table and --pvc-scanner-fwhm",
    )
    quant.add_argument(
        "--pvc-regions",
        choices=PVC_REGIONS,
        default=DEFAULT_PVC_REGIONS,
        help="regions of the PET-space correction with --regional-mask subject-gm: hard = each "
        "voxel one label; soft = each brain voxel shared between grey matter, white matter and "
        "CSF by its fractions, estimated from the T1w's intensity histogram (docs/pvc.md); "
        f"other scans always use hard labels (default: {DEFAULT_PVC_REGIONS})",
    )
    quant.add_argument(
        "--pvc-scanner-fwhm",
        type=float,
        metavar="MM",
        help="the scanner's own resolution (FWHM, mm, e.g. from its NEMA NU-2 report) for scans "
        "whose scanner is not in the scanner resolution table: each such scan's PSF is this "
        "combined with the Gaussian filter in its sidecar (ReconFilterType/ReconFilterSize)",
    )
    quant.add_argument(
        "--scanner-resolution",
        type=Path,
        metavar="FILE",
        help="a TSV of scanner resolutions (columns manufacturer, model, recon_method, "
        "filter_mm, fwhm_mm, fwhm_kind, source; docs/pvc.md) whose rows take precedence over "
        "the shipped table; without --pvc-fwhm, each scan's resolution for --pvc and "
        "--smooth-to-fwhm is looked up by the scanner and reconstruction in its sidecar",
    )
    quant.add_argument(
        "--smooth-to-fwhm",
        type=float,
        metavar="MM",
        help="smooth every averaged PET to this uniform resolution (FWHM, mm; ADNI uses 8) "
        "before registration, SUVR and tables, with a Gaussian of sqrt(MM^2 - scan^2); a scan "
        "already at or coarser than MM is left as it is (default: no smoothing)",
    )
    quant.add_argument(
        "--braak-thresholds",
        nargs=3,
        type=float,
        metavar=("I_II", "III_IV", "V_VI"),
        help="SUVR thresholds of the Braak I/II, III/IV and V/VI composites for staging the "
        "*uncorrected* tables (no verified published set ships; PVC tables use Maass et al. "
        "2017); needs --braak-thresholds-source",
    )
    quant.add_argument(
        "--braak-thresholds-source",
        metavar="TEXT",
        help="where --braak-thresholds come from (a citation), written beside every stage",
    )
    quant.add_argument(
        "--regional-mask",
        choices=REGIONAL_MASKS,
        default=DEFAULT_REGIONAL_MASK,
        help="where regional means and the reference region are taken: template = the "
        "template's atlas labels and reference mask; subject-gm = the grey-matter regions and "
        "the inferior cerebellar grey reference cut to the subject's own grey matter (Atropos "
        "segmentation of the T1w, a few seconds per subject). Scans normalised without a T1w "
        f"(--mr-less) always use the template (default: {DEFAULT_REGIONAL_MASK})",
    )
    quant.add_argument(
        "--centaur-masks",
        type=Path,
        metavar="DIR",
        help="official CenTauR masks (universal.nii.gz, ... on the MNI152NLin6Asym 2 mm grid); "
        "without them CenTauRz uses approximate DK-based masks and says so",
    )

    mrless = parser.add_argument_group("MR-less normalisation (see docs/mrless.md)")
    mrless.add_argument(
        "--mr-less",
        choices=["auto", "always", "never"],
        default="auto",
        help="normalise the PET to the template without MRI: auto = only for sessions without a "
        "T1w; always = ignore T1w images; never = skip scans without a T1w (default: auto)",
    )
    mrless.add_argument(
        "--mr-less-method",
        choices=["network", "ants", "network+ants"],
        default="network+ants",
        help="network+ants = the shipped trained network refined by a short antspyx affine "
        "registration to the tau PET template (about 2.5 s per scan; the most accurate in "
        "docs/benchmarks.md); network = the network alone (under a second); ants = antspyx "
        "affine registration to the tau PET template alone (default: network+ants)",
    )
    mrless.add_argument(
        "--mr-less-model",
        type=Path,
        metavar="BUNDLE",
        help="a MONAI bundle folder retrained with taupet-bids-train (default: the shipped one)",
    )

    synth = parser.add_argument_group("synthetic PET from other modalities (docs/synthesis.md)")
    synth.add_argument(
        "--synthesize",
        nargs="+",
        choices=SYNTHESIS_TASKS,
        default=[],
        metavar="TASK",
        help="make a clearly labelled synthetic image for every session that has the task's "
        f"input ({', '.join(SYNTHESIS_TASKS)}; tau-from-fdg reads the FDG scans of a run with "
        "--tracer FDG). Sessions without the input are logged and skipped; the others go on",
    )
    synth.add_argument(
        "--synthesis-model",
        nargs="+",
        type=Path,
        default=[],
        metavar="BUNDLE",
        help="trained synthesis bundle(s) (made by `taupet-bids-train synthesis`; none ships), "
        "one per --synthesize task: each bundle's metadata says which task it serves",
    )
    synth.add_argument(
        "--synthesis-architecture",
        choices=("unet", "vqgan", "diffusion"),
        default="unet",
        help="network family of tau-from-t1w: unet (3-D U-Net), vqgan (MCR-VQGAN on 2-D "
        "slices) or diffusion (latent diffusion conditioned on the T1w and clinical values); "
        "the bundle's metadata must say the same family",
    )
    synth.add_argument(
        "--clinical",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="diffusion only: mmse, amyloid_status (positive/negative) and age for every "
        "session, over the values of participants.tsv / sessions.tsv (the default); a value "
        "missing from both (or n/a) is not conditioned on, and with none the sample is "
        "unconditional (the sidecar says so)",
    )
    synth.add_argument(
        "--n-samples",
        type=int,
        default=1,
        metavar="N",
        help="diffusion only: samples per session; writes their mean and a voxel-wise SD map",
    )
    classify = parser.add_argument_group("AD vs CN classification (see docs/classification.md)")
    classify.add_argument(
        "--classify",
        type=Path,
        nargs="?",
        const=SHIPPED_CLASSIFIER,
        metavar="BUNDLE",
        help="classify every scan's template-space SUVR image as AD or CN and write P(AD), the "
        "label at the bundle's threshold and an occlusion-sensitivity map with its regional "
        "summary (about 1 min per scan on one CPU thread); with no BUNDLE, the shipped one "
        "(trained on simulated phantoms only: read its model card), or a bundle made by "
        "`taupet-bids-train classifier`",
    )

    harmonize = parser.add_argument_group(
        "PET-MR to PET-CT harmonisation (see docs/harmonisation.md)"
    )
    harmonize.add_argument(
        "--harmonize",
        choices=("none", "auto", "all"),
        default="none",
        help="write a harmonised SUVR image and regional tables (desc-harmonized) beside the "
        "measured ones, corrected for MR-based attenuation correction: auto = scans whose "
        "AttenuationCorrection names an MR-based method (Dixon, UTE, ZTE, atlas, MR-based) or "
        "whose scanner is a PET/MR system; all = every scan; none (default) = no scan",
    )
    harmonize.add_argument(
        "--harmonization-model",
        type=Path,
        metavar="BUNDLE",
        help="the trained harmoniser bundle (made by `taupet-bids-train harmoniser`; none "
        "ships); required with --harmonize auto or all",
    )

    group = parser.add_argument_group("group level (see docs/group.md)")
    group.add_argument(
        "--tau-cutpoint",
        type=float,
        help="meta-temporal SUVR cut-point for tau positivity (default: the tracer's, "
        "1.23 for flortaucipir; other tracers have none)",
    )
    group.add_argument(
        "--braak-reference-diagnosis",
        default="CN",
        help="participants.tsv diagnosis whose scans set the Braak stage thresholds (default: CN)",
    )

    perf = parser.add_argument_group("performance and execution")
    perf.add_argument(
        "-w",
        "--work-dir",
        type=Path,
        help="working folder (resumable; one run at a time; not inside bids_dir unless under "
        "its derivatives/; default: taupet-work beside output_dir)",
    )
    perf.add_argument(
        "--force-output-dir",
        action="store_true",
        help="write into an output folder that another pipeline made (its "
        "dataset_description.json names e.g. fMRIPrep in GeneratedBy): taupet-bids adds "
        "itself to GeneratedBy and writes beside that pipeline's files (default: refuse)",
    )
    perf.add_argument(
        "--nprocs",
        "--n-cpus",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="processes run in parallel (default: all cores)",
    )
    perf.add_argument(
        "--omp-nthreads",
        type=_positive_int,
        default=1,
        help="threads per registration or correction step (default: 1)",
    )
    perf.add_argument("--mem-gb", type=float, help="memory limit for the scheduler, in GB")
    perf.add_argument(
        "--plugin",
        default="MultiProc",
        choices=["MultiProc", "Linear", "SLURM", "SLURMGraph"],
        help="Nipype execution plugin (default: MultiProc)",
    )
    perf.add_argument(
        "--skip-bids-validation",
        "--skip_bids_validation",
        action="store_true",
        help="do not run bids-validator-deno on the input dataset",
    )
    perf.add_argument(
        "--use-fsl",
        action="store_true",
        help="motion correction with FSL MCFLIRT and PET-to-T1w with FLIRT (needs FSLDIR); "
        "default: antspyx for every step",
    )
    perf.add_argument("--seed", type=int, default=42, help="random seed for registrations")
    perf.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    return parser


def _check_harmonization(args) -> None:
    """``--harmonize`` needs a trained bundle, and a bundle is only used with ``--harmonize``."""
    if args.harmonize == "none":
        build_parser().error("--harmonization-model needs --harmonize auto or all")
    if not args.harmonization_model:
        build_parser().error(
            f"--harmonize {args.harmonize} needs --harmonization-model BUNDLE (taupet-bids ships "
            "no harmoniser weights: train one with `taupet-bids-train harmoniser`)"
        )
    from taupet_bids.harmonisation.bundle import InvalidBundle, check_bundle

    try:
        check_bundle(args.harmonization_model.absolute())
    except InvalidBundle as err:
        build_parser().error(f"--harmonization-model: {err}")


def _names_fdg(tracer: str | None) -> bool:
    """``--tracer`` selects FDG scans (any alias: ``FDG``, ``18FFDG``)."""
    from taupet_bids.tracers import identify_tracer

    known = identify_tracer(None, tracer) if tracer else None
    return known is not None and known.name == "FDG"


def _synthesis_models(args: argparse.Namespace) -> tuple[tuple[str, Path], ...]:
    """(task, bundle) for every ``--synthesize`` task; refuse a task without a network or
    without a bundle, and a bundle that is not one, before any scan runs."""
    _check_diffusion_options(args)
    if not args.synthesize and not args.synthesis_model:
        return ()  # nothing asked: torch is not imported
    from taupet_bids.synthesis.bundle import InvalidBundle, check_bundle, check_network
    from taupet_bids.synthesis.networks import TASKS

    if args.synthesis_model and not args.synthesize:
        build_parser().error("--synthesis-model needs --synthesize TASK")
    for task in dict.fromkeys(args.synthesize):
        if not TASKS[task].available:
            build_parser().error(
                f"--synthesize {task}: no pipeline path for it yet (its bundle runs through "
                "MONAI's runner; docs/synthesis.md); available: "
                + ", ".join(name for name, t in TASKS.items() if t.available)
            )
        if TASKS[task].source == "FDG" and not _names_fdg(args.tracer):
            build_parser().error(
                f"--synthesize {task} reads the FDG scans this run processes, and taupet-bids "
                "processes FDG only when asked: add --tracer FDG"
            )
    found: dict[str, Path] = {}
    for bundle in args.synthesis_model:
        try:
            card = check_bundle(bundle.absolute())
            if card.task == "tau-from-t1w":
                check_network(card, args.synthesis_architecture, bundle)
        except InvalidBundle as err:
            build_parser().error(f"--synthesis-model: {err}")
        if card.task in found:
            build_parser().error(f"--synthesis-model: two bundles for {card.task}")
        found[card.task] = bundle.absolute()
    for task in dict.fromkeys(args.synthesize):
        if task not in found:
            build_parser().error(
                f"--synthesize {task} needs a trained bundle: --synthesis-model BUNDLE "
                "(taupet-bids ships none; train one with `taupet-bids-train synthesis`)"
            )
    return tuple((task, found[task]) for task in dict.fromkeys(args.synthesize))


def _check_diffusion_options(args: argparse.Namespace) -> None:
    """--clinical and --n-samples belong to a diffusion bundle; bad values are refused."""
    from taupet_bids.synthesis.clinical import parse

    if args.synthesis_architecture != "diffusion" and (args.clinical or args.n_samples != 1):
        build_parser().error("--clinical and --n-samples need --synthesis-architecture diffusion")
    if args.n_samples < 1:
        build_parser().error("--n-samples must be at least 1")
    try:
        parse(args.clinical)
    except ValueError as err:
        build_parser().error(f"--clinical: {err}")


def parse_args(argv: list[str] | None = None) -> RunConfig:
    """Parse the command line into a :class:`RunConfig`."""
    args = build_parser().parse_args(argv)
    output_dir = args.output_dir.absolute()
    if args.pet_window and not 0 <= args.pet_window[0] < args.pet_window[1]:
        build_parser().error(f"--pet-window needs 0 <= START < END, got {args.pet_window}")
    pvc = tuple(method for method in args.pvc if method != "none")
    for option in ("pvc_fwhm", "pvc_scanner_fwhm", "smooth_to_fwhm"):
        value = getattr(args, option)
        if value is not None and not 0 < value < 30:
            flag = "--" + option.replace("_", "-")
            build_parser().error(f"{flag} must be a FWHM in mm between 0 and 30, got {value}")
    # Whether each scan has a resolution (--pvc-fwhm, the table, or --pvc-scanner-fwhm with its
    # sidecar's filter) is decided per scan by its plan (taupet_bids.plan.scan_resolution);
    # a user table is read here so that a bad one stops the run before any scan.
    if args.scanner_resolution:
        if not args.scanner_resolution.is_file():
            build_parser().error(f"--scanner-resolution: {args.scanner_resolution} is not a file")
        try:
            scanners.read_table(args.scanner_resolution.absolute())
        except scanners.ScannerTableError as err:
            build_parser().error(f"--scanner-resolution: {err}")
    if args.braak_thresholds or args.braak_thresholds_source:
        from taupet_bids import staging

        try:
            staging.user_threshold_set(
                tuple(args.braak_thresholds or ()), args.braak_thresholds_source or "", "any"
            )
        except ValueError as err:
            build_parser().error(f"--braak-thresholds: {err}")
    if args.centaur_masks and not args.centaur_masks.is_dir():
        build_parser().error(f"--centaur-masks: {args.centaur_masks} is not a folder")
    if args.mr_less_model and not (args.mr_less_model / "configs" / "metadata.json").is_file():
        build_parser().error(
            f"--mr-less-model: {args.mr_less_model} is not a bundle (no configs/metadata.json)"
        )
    if args.classify:
        from taupet_bids.classification.bundle import InvalidBundle, check_bundle

        try:
            check_bundle(args.classify.absolute())
        except InvalidBundle as err:
            build_parser().error(f"--classify: {err}")
    if args.harmonize != "none" or args.harmonization_model:
        _check_harmonization(args)
    synthesis_models = _synthesis_models(args)
    if args.use_fsl and not fsl_available():
        build_parser().error("--use-fsl needs FSL: set FSLDIR to an installation with flirt")
    return RunConfig(
        # resolved: pybids resolves symlinks, and every input path is made relative to this root
        bids_dir=args.bids_dir.resolve(),
        output_dir=output_dir,
        analysis_level=args.analysis_level,
        work_dir=(args.work_dir or output_dir.parent / "taupet-work").absolute(),
        participant_label=tuple(label.removeprefix("sub-") for label in args.participant_label),
        session=args.session.removeprefix("ses-") if args.session else None,
        tracer=args.tracer,
        rec=args.rec,
        run=args.run,
        reference_region=args.reference_region,
        pet_window=tuple(args.pet_window) if args.pet_window else None,
        atlases=tuple(args.atlas),
        nprocs=args.nprocs,
        omp_nthreads=args.omp_nthreads,
        mem_gb=args.mem_gb,
        plugin=args.plugin,
        skip_bids_validation=args.skip_bids_validation,
        use_fsl=args.use_fsl,
        pvc=pvc,
        pvc_fwhm=args.pvc_fwhm,
        pvc_scanner_fwhm=args.pvc_scanner_fwhm,
        scanner_resolution=(
            args.scanner_resolution.absolute() if args.scanner_resolution else None
        ),
        smooth_to_fwhm=args.smooth_to_fwhm,
        centaur_masks=args.centaur_masks.absolute() if args.centaur_masks else None,
        mr_less=args.mr_less,
        mr_less_method=args.mr_less_method,
        mr_less_model=args.mr_less_model.absolute() if args.mr_less_model else None,
        regional_mask=args.regional_mask,
        pvc_regions=args.pvc_regions,
        classifier_bundle=args.classify.absolute() if args.classify else None,
        harmonize=args.harmonize,
        harmonization_bundle=(
            args.harmonization_model.absolute() if args.harmonization_model else None
        ),
        synthesize=tuple(dict.fromkeys(args.synthesize)),
        synthesis_models=synthesis_models,
        synthesis_architecture=args.synthesis_architecture,
        clinical=tuple(args.clinical),
        n_samples=args.n_samples,
        seed=args.seed,
        verbose=args.verbose,
        tau_cutpoint=args.tau_cutpoint,
        braak_reference_diagnosis=args.braak_reference_diagnosis,
        braak_thresholds=tuple(args.braak_thresholds) if args.braak_thresholds else None,
        braak_thresholds_source=args.braak_thresholds_source,
        force_output_dir=args.force_output_dir,
    )
