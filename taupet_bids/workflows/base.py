"""The participant-level graph: one sub-workflow per PET scan, all run by one Nipype plugin."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from nipype.pipeline import engine as pe

from taupet_bids import centaurz, pvc, staging
from taupet_bids.bids import CheckedScan
from taupet_bids.config import RunConfig
from taupet_bids.errors import InputError
from taupet_bids.workflows.anat import init_anat_wf
from taupet_bids.workflows.outputs import ANAT_FIELDS, init_outputs_wf
from taupet_bids.workflows.pet import init_pet_preproc_wf
from taupet_bids.workflows.quantification import init_quantification_wf

PET_FROM_PREPROC = ("pet_average", "motion_params")
PET_FROM_QUANT = (
    "pet2t1w_xfm", "pet2std_xfm", "normalisation", "suvr_std", "reference_value", "tables",
    "pvc_tables", "centaurz",
)  # fmt: skip


def centaurz_tracer(checked: CheckedScan) -> str | None:
    """The tracer's name when CenTauRz has a conversion for it, else None."""
    if checked.tracer is None:
        return None
    try:
        return centaurz.canonical_tracer(checked.tracer.name)
    except KeyError:
        return None


def scan_id(checked: CheckedScan) -> str:
    """A name for the scan that is safe as a Nipype node name and a folder name."""
    stem = checked.scan.pet.name.split(".")[0].removesuffix("_pet")
    return re.sub(r"[^A-Za-z0-9]", "_", stem)


def staging_dir(config: RunConfig, checked: CheckedScan) -> Path:
    """Where one scan's derivatives wait until all of them exist."""
    return config.work_dir / "staging" / scan_id(checked)


def success_marker(config: RunConfig, checked: CheckedScan) -> Path:
    """Written by the commit node, last: its presence means the scan finished."""
    return config.work_dir / "committed" / f"{scan_id(checked)}.txt"


def pvc_fwhm_for(config: RunConfig, checked: CheckedScan) -> float | None:
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
        return pvc.psf_fwhm_from_sidecar(checked.metadata, config.pvc_scanner_fwhm)
    except (TypeError, ValueError) as err:
        raise InputError(
            checked.scan.sidecar or checked.scan.pet, f"no PSF for --pvc: {err}",
            "give the effective resolution with --pvc-fwhm",
        ) from err  # fmt: skip


def braak_uncorrected_set(config: RunConfig, checked: CheckedScan):
    """The user's ``--braak-thresholds`` for uncorrected SUVR as a threshold set, or None."""
    if not config.braak_thresholds:
        return None
    return staging.user_threshold_set(
        tuple(config.braak_thresholds), config.braak_thresholds_source or "",
        checked.reference_region,
    )  # fmt: skip


def mr_less_method(config: RunConfig, checked: CheckedScan) -> str | None:
    """The MR-less method to use for this scan, or None for the MR-based path.

    ``--mr-less auto`` goes MR-less exactly when the session has no T1w; ``always`` ignores any
    T1w; ``never`` requires one (scans without are rejected before the graph is built).
    """
    if config.mr_less == "always" or (config.mr_less == "auto" and checked.scan.t1w is None):
        return config.mr_less_method
    return None


def init_scan_wf(config: RunConfig, checked: CheckedScan) -> pe.Workflow:
    """Everything for one PET scan: preprocessing, quantification, derivatives."""
    method = mr_less_method(config, checked)
    if method is None and checked.scan.t1w is None:
        raise ValueError(f"{checked.scan.pet.name}: the MR-based pipeline needs a T1w")
    name = scan_id(checked)
    stage = staging_dir(config, checked)
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    marker = success_marker(config, checked)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)

    workflow = pe.Workflow(name=f"scan_{name}")
    seed, threads = config.seed, config.omp_nthreads
    fsl = config.use_fsl
    pet_wf = init_pet_preproc_wf(checked, omp_nthreads=threads, seed=seed, use_fsl=fsl)
    reference = checked.reference_region
    fwhm = pvc_fwhm_for(config, checked)
    quant_wf = init_quantification_wf(
        reference,
        config.atlases,
        config.work_dir,
        omp_nthreads=threads,
        seed=seed,
        use_fsl=fsl,
        pvc_methods=config.pvc,
        pvc_fwhm_mm=fwhm,
        centaurz_tracer=centaurz_tracer(checked) if "DK" in config.atlases else None,
        centaur_masks=config.centaur_masks,
        mr_less_method=method,
        mr_less_bundle=config.mr_less_model,
    )
    outputs_wf = init_outputs_wf(
        checked,
        config.atlases,
        stage,
        config.output_dir,
        marker,
        config.bids_dir,
        pvc_methods=config.pvc,
        pvc_fwhm_mm=fwhm,
        write_centaurz=quant_wf.get_node("centaurz") is not None,
        mr_less_method=method,
        braak_uncorrected=braak_uncorrected_set(config, checked),
    )
    pet_wf.inputs.inputnode.pet = str(checked.scan.pet)
    outputs_wf.inputs.inputnode.pet_source = str(checked.scan.pet)
    from_quant = [f for f in PET_FROM_QUANT if f != ("pet2t1w_xfm" if method else "pet2std_xfm")]
    workflow.connect([
        (pet_wf, quant_wf, [("outputnode.pet_average", "inputnode.pet_average")]),
        (pet_wf, outputs_wf, [(f"outputnode.{f}", f"inputnode.{f}") for f in PET_FROM_PREPROC]),
        (quant_wf, outputs_wf, [(f"outputnode.{f}", f"inputnode.{f}") for f in from_quant]),
    ])  # fmt: skip
    if method is None:
        anat_wf = init_anat_wf(omp_nthreads=threads, seed=seed)
        anat_wf.inputs.inputnode.t1w = str(checked.scan.t1w)
        outputs_wf.inputs.inputnode.t1w_source = str(checked.scan.t1w)
        workflow.connect([
            (anat_wf, quant_wf, [
                ("outputnode.t1w_brain", "inputnode.t1w_brain"),
                ("outputnode.t1w_mask", "inputnode.t1w_mask"),
                ("outputnode.t1w2std_xfm", "inputnode.t1w2std_xfm"),
                ("outputnode.std2t1w_xfm", "inputnode.std2t1w_xfm"),
                ("outputnode.std2t1w_invert", "inputnode.std2t1w_invert"),
            ]),
            (anat_wf, outputs_wf, [(f"outputnode.{f}", f"inputnode.{f}") for f in ANAT_FIELDS]),
        ])  # fmt: skip
    return workflow


def init_participant_wf(config: RunConfig, scans: list[CheckedScan]) -> pe.Workflow:
    """One graph over every scan, so the plugin can run participants in parallel."""
    workflow = pe.Workflow(name="taupet_participant_wf", base_dir=str(config.work_dir))
    workflow.config["execution"].update(
        {
            "stop_on_first_crash": False,
            "crashdump_dir": str(config.work_dir / "crashes"),
            # Nipype waits this long between scheduling rounds (default 2 s): with chains of
            # short nodes that idle time was a large part of a scan's wall time.
            "poll_sleep_duration": 0.1,
        }
    )
    workflow.add_nodes([init_scan_wf(config, checked) for checked in scans])
    return workflow
