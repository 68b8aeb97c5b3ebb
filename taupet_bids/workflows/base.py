"""The participant-level graph: one sub-workflow per PET scan, one T1w workflow per T1w (shared
by the scans of its session), all run by one Nipype plugin."""

from __future__ import annotations

import re
from pathlib import Path

from nipype.pipeline import engine as pe

from taupet_bids.plan import ScanPlan, SynthesisPlan
from taupet_bids.workflows import (
    classification,
    harmonisation,
    pet,
    quantification,
    reportlets,
    synthesis,
)
from taupet_bids.workflows.anat import DERIVATIVES as ANAT_FIELDS
from taupet_bids.workflows.anat import init_anat_wf
from taupet_bids.workflows.outputs import init_outputs_wf

#: Fields the T1w workflow hands to quantification.
ANAT_TO_QUANT = ("t1w_brain", "t1w_mask", "t1w2std_xfm", "std2t1w_xfm", "std2t1w_invert")


def init_scan_wf(plan: ScanPlan) -> pe.Workflow:
    """Everything for one PET scan: preprocessing, quantification, QC, derivatives; an
    MR-based scan's T1w workflow is added beside it by :func:`connect_anat`.

    Building the graph touches no file: :func:`taupet_bids.plan.reset_scan_folders` prepares
    the staging folder before the graph runs.
    """
    workflow = pe.Workflow(name=f"scan_{plan.name}")
    pet_wf = pet.init_pet_preproc_wf(plan)
    quant_wf = quantification.init_quantification_wf(plan)
    qc_wf = reportlets.init_reportlets_wf(plan)
    outputs_wf = init_outputs_wf(plan)
    pet_wf.inputs.inputnode.pet = str(plan.pet)
    outputs_wf.inputs.inputnode.pet_source = str(plan.pet)
    workflow.connect([
        (pet_wf, quant_wf, [("outputnode.pet_average", "inputnode.pet_average")]),
        (pet_wf, qc_wf, [(f"outputnode.{f}", f"inputnode.{f}") for f in reportlets.FROM_PET]),
        (quant_wf, qc_wf, [(f"outputnode.{f}", f"inputnode.{f}") for f in reportlets.FROM_QUANT]),
    ])  # fmt: skip
    for source, fields in ((pet_wf, pet.DERIVATIVES), (quant_wf, quantification.DERIVATIVES),
                           (qc_wf, reportlets.DERIVATIVES)):  # fmt: skip
        workflow.connect(
            [(source, outputs_wf, [(f"outputnode.{f}", f"inputnode.{f}") for f in fields])]
        )
    if plan.classify:
        classify_wf = classification.init_classification_wf(plan)
        workflow.connect([
            (quant_wf, classify_wf, [("outputnode.suvr_std", "inputnode.suvr_std")]),
            (classify_wf, outputs_wf, [
                (f"outputnode.{f}", f"inputnode.{f}") for f in classification.DERIVATIVES
            ]),
            (classify_wf, qc_wf, [
                (f"outputnode.{f}", f"inputnode.{f}") for f in reportlets.FROM_CLASSIFY
            ]),
        ])  # fmt: skip
    if plan.harmonize:
        harmonise_wf = harmonisation.init_harmonisation_wf(plan)
        workflow.connect([
            (quant_wf, harmonise_wf, [("outputnode.suvr_std", "inputnode.suvr_std")]),
            (harmonise_wf, outputs_wf, [
                (f"outputnode.{f}", f"inputnode.{f}") for f in harmonisation.DERIVATIVES
            ]),
            (harmonise_wf, qc_wf, [
                (f"outputnode.{f}", f"inputnode.{f}") for f in reportlets.FROM_HARMONIZE
            ]),
        ])  # fmt: skip
    if not plan.mr_less:
        outputs_wf.inputs.inputnode.t1w_source = str(plan.t1w)
    return workflow


def anat_name(plan: ScanPlan) -> str:
    """The T1w workflow's name: one per T1w file and tissue option, so the scans of a session
    (tau and FDG, a PET/MR and a PET/CT, several runs) register their T1w once, and a later
    run with another ``--tracer`` and the same work folder finds that registration done."""
    stem = re.sub(r"[^0-9A-Za-z]+", "_", Path(plan.t1w).name.split(".")[0])
    return f"anat_{stem}" + ("_gm" if plan.subject_gm else "")


def registering_plan(
    plan: SynthesisPlan, plans_by_name: dict[str, ScanPlan]
) -> ScanPlan | SynthesisPlan:
    """The plan whose T1w workflow a T1w synthesis task takes: its session's MR-based scan,
    or the task itself in a T1w-only session."""
    return plans_by_name.get(plan.scan_name, plan)


def connect_anat(workflow: pe.Workflow, anat_wf: pe.Workflow, scan_wf: pe.Workflow,
                 plan: ScanPlan) -> None:  # fmt: skip
    """Feed one MR-based scan's workflow from its session's T1w workflow."""
    into = {
        "quantification_wf": list(ANAT_TO_QUANT)
        + (["tissues_std"] if plan.subject_gm else [])
        + (["tissue_fractions"] if plan.pvc_soft_regions else []),
        "outputs_wf": list(ANAT_FIELDS),
        "reportlets_wf": list(reportlets.FROM_ANAT),
    }
    if plan.harmonize and plan.harmonization_anatomy == "subject":
        into["harmonisation_wf"] = ["t1w_std"]
    workflow.connect([
        (anat_wf, scan_wf, [(f"outputnode.{f}", f"{sub}.inputnode.{f}") for f in fields])
        for sub, fields in into.items()
    ])  # fmt: skip


def init_participant_wf(
    plans: list[ScanPlan],
    work_dir: Path,
    synthesis_plans: list[SynthesisPlan] = (),
    bids_dir: Path | None = None,
) -> pe.Workflow:
    """One graph over every scan, so the plugin can run participants in parallel.

    ``--synthesize`` adds one workflow per task and session; one from a T1w takes the session's
    T1w workflow (the one its MR-based scans use, or one of its own that every T1w task of the
    session shares), and one from FDG takes its FDG scan's template-space SUVR.
    """
    workflow = pe.Workflow(name="taupet_participant_wf", base_dir=str(work_dir))
    workflow.config["execution"].update(
        {
            "stop_on_first_crash": False,
            "crashdump_dir": str(work_dir / "crashes"),
            # Nipype waits this long between scheduling rounds (default 2 s): with chains of
            # short nodes that idle time was a large part of a scan's wall time.
            "poll_sleep_duration": 0.1,
        }
    )
    scans = {plan.name: init_scan_wf(plan) for plan in plans}
    workflow.add_nodes(list(scans.values()))
    anats: dict[str, pe.Workflow] = {}

    def anat_of(plan: ScanPlan | SynthesisPlan) -> pe.Workflow:
        name = anat_name(plan)
        if name not in anats:
            anats[name] = init_anat_wf(plan, name=name)
            anats[name].inputs.inputnode.t1w = str(plan.t1w)
        return anats[name]

    for plan in plans:
        if not plan.mr_less:
            connect_anat(workflow, anat_of(plan), scans[plan.name], plan)
    by_name = {plan.name: plan for plan in plans}
    for plan in synthesis_plans:
        synth_wf = synthesis.init_synthesis_wf(plan, str(bids_dir))
        if plan.input_pet is not None:
            links = list(synthesis.FROM_SCAN.items())
            workflow.connect([(scans[plan.scan_name], synth_wf, links)])
            continue
        # a T1w-only session's tasks (tau and TSPO from T1w) share one registration too
        anat = anat_of(registering_plan(plan, by_name))
        links = [(f"outputnode.{f}", f"inputnode.{f}") for f in synthesis.FROM_ANAT]
        workflow.connect([(anat, synth_wf, links)])
    return workflow
