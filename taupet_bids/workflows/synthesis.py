"""``--synthesize``: a synthetic PET image and its regional tables, for one session's T1w (with
the template-space T1w it was made from) or one FDG scan's template-space SUVR, committed like a
scan's derivatives."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids import templates
from taupet_bids.interfaces.derivatives import CommitDerivatives
from taupet_bids.interfaces.registration import ApplyTransforms
from taupet_bids.interfaces.synthesis import StageSynthetic, SynthesizePET
from taupet_bids.plan import SynthesisPlan
from taupet_bids.workflows.tables import init_tables_wf

#: What the synthesis needs from a T1w workflow.
FROM_ANAT = ("t1w_preproc", "t1w2std_xfm")
#: What a synthesis from PET needs from its scan's graph (``<node>.outputnode.<field>``).
FROM_SCAN = {"quantification_wf.outputnode.suvr_std": "inputnode.suvr_std"}


def _bids_uri(raw: str, bids_dir: str) -> str:
    from pathlib import Path

    return f"bids:raw:{Path(raw).relative_to(bids_dir).as_posix()}"


def init_synthesis_wf(plan: SynthesisPlan, bids_dir: str) -> pe.Workflow:
    """inputs: :data:`FROM_ANAT` of the session's T1w workflow (connected by
    :func:`taupet_bids.workflows.base.init_participant_wf`, which shares it between the scans and
    tasks of the session).

    The T1w after N4 is resampled to the template's 2 mm grid with its own registration, the
    bundle synthesises SUVR from it, the regional tables are made as a real scan's (template
    masks), and everything is staged and committed for the session.
    """
    if plan.input_pet is not None:
        return init_pet_synthesis_wf(plan, bids_dir)
    workflow = pe.Workflow(name=plan.name)
    inputnode = pe.Node(niu.IdentityInterface(fields=list(FROM_ANAT)), name="inputnode")
    reference = str(templates.t1w_path(templates.WORKING_RESOLUTION))
    to_template = pe.Node(
        ApplyTransforms(
            reference_image=reference, out_suffix="_std", num_threads=plan.omp_nthreads
        ),
        name="t1w_to_template_grid",
    )
    synthesise, tables, stage = _synthesis_nodes(plan, _bids_uri(str(plan.t1w), bids_dir))
    commit = _commit(plan)
    workflow.connect([
        (inputnode, to_template, [("t1w_preproc", "in_file"), ("t1w2std_xfm", "transforms")]),
        (to_template, synthesise, [("out_file", "in_file")]),
        (synthesise, tables, [("out_file", "inputnode.suvr")]),
        (synthesise, stage, [("out_file", "image"), ("sidecar", "sidecar"),
                             ("extra_files", "extra_files")]),
        (tables, stage, [("outputnode.tables", "tables")]),
        (to_template, stage, [("out_file", "t1w_std")]),
        (stage, commit, [("out_files", "staged_files")]),
    ])  # fmt: skip
    return workflow


def _synthesis_nodes(plan: SynthesisPlan, source_uri: str) -> tuple[pe.Node, pe.Workflow, pe.Node]:
    """The bundle, the synthetic image's tables, and its staging (shared by every input)."""
    diffusion = (
        {"clinical": dict(plan.clinical), "n_samples": plan.n_samples, "seed": plan.seed}
        if plan.clinical is not None
        else {}
    )
    synthesise = pe.Node(
        SynthesizePET(bundle=str(plan.bundle), num_threads=plan.omp_nthreads, **diffusion),
        name="synthesise",
        n_procs=plan.omp_nthreads,
    )
    stage = pe.Node(
        StageSynthetic(
            atlases=list(plan.atlases), reference_region=plan.reference_region,
            source_uri=source_uri, staging_dir=str(plan.staging_dir),
        ),
        name="stage",
        run_without_submitting=True,
    )  # fmt: skip
    return synthesise, init_tables_wf(plan.reference_region, plan.atlases), stage


def _commit(plan: SynthesisPlan) -> pe.Node:
    return pe.Node(
        CommitDerivatives(
            staging_dir=str(plan.staging_dir), output_dir=str(plan.output_dir),
            marker=str(plan.marker),
        ),
        name="commit",
        run_without_submitting=True,
        overwrite=True,
    )  # fmt: skip


def init_pet_synthesis_wf(plan: SynthesisPlan, bids_dir: str) -> pe.Workflow:
    """inputs: ``suvr_std``, the template-space SUVR of the planned scan ``plan.scan_name`` (an
    FDG scan, processed like any other, so no registration is written twice).

    The SUVR is given its BIDS name (the output is named after its input's entities), the
    bundle synthesises from it, and the image and tables are staged and committed.
    """
    from taupet_bids import naming

    workflow = pe.Workflow(name=plan.name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["suvr_std"]), name="inputnode")
    named = pe.Node(
        niu.Rename(format_string=f"{plan.stem}_{naming.SPACE}_desc-suvr_pet.nii.gz"),
        name="bids_name",
    )
    synthesise, tables, stage = _synthesis_nodes(plan, _bids_uri(str(plan.input_pet), bids_dir))
    commit = _commit(plan)
    workflow.connect([
        (inputnode, named, [("suvr_std", "in_file")]),
        (named, synthesise, [("out_file", "in_file")]),
        (synthesise, tables, [("out_file", "inputnode.suvr")]),
        (synthesise, stage, [("out_file", "image"), ("sidecar", "sidecar"),
                             ("extra_files", "extra_files")]),
        (tables, stage, [("outputnode.tables", "tables")]),
        (stage, commit, [("out_files", "staged_files")]),
    ])  # fmt: skip
    return workflow
