"""PET -> T1w -> template, SUVR against the reference region, regional tables per atlas."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids import templates
from taupet_bids.interfaces.centaurz import CenTauRzTable
from taupet_bids.interfaces.pvc import PartialVolumeCorrection, PVCSegmentation
from taupet_bids.interfaces.quantification import ComputeSUVR
from taupet_bids.interfaces.registration import ApplyTransforms
from taupet_bids.workflows.coregistration import init_coregistration_wf
from taupet_bids.workflows.tables import init_tables_wf

OUTPUT_FIELDS = [
    "pet2t1w_xfm", "coreg_score", "pet_std", "suvr_std", "reference_value", "tables",
    "pvc_tables", "centaurz",
]  # fmt: skip


def _compose(t1w2std: list[str], pet2t1w: list[str]) -> list[str]:
    """ANTs applies the last transform first: PET -> T1w, then T1w -> template."""
    return list(t1w2std) + list(pet2t1w)


def init_quantification_wf(
    reference_region: str,
    atlases: tuple[str, ...],
    work_dir: Path,
    omp_nthreads: int = 1,
    seed: int = 42,
    use_fsl: bool = False,
    pvc_methods: tuple[str, ...] = (),
    pvc_fwhm_mm: float | None = None,
    centaurz_tracer: str | None = None,
    centaur_masks: Path | None = None,
    name: str = "quantification_wf",
) -> pe.Workflow:
    """Coregister the averaged PET, resample it to MNI152NLin6Asym 2 mm, compute SUVR and tables.

    outputs: ``pet2t1w_xfm``, ``coreg_score``, ``suvr_std``, ``reference_value``, ``tables``
    (one TSV per atlas, in the order of ``atlases``), ``pvc_tables`` (per PVC method, per
    atlas) and ``centaurz`` (when the tracer has a CenTauRz conversion).
    """
    resolution = templates.WORKING_RESOLUTION
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["pet_average", "t1w_brain", "t1w_mask", "t1w2std_xfm"]),
        name="inputnode",
    )
    outputnode = pe.Node(niu.IdentityInterface(fields=OUTPUT_FIELDS), name="outputnode")
    coregister = init_coregistration_wf(use_fsl, omp_nthreads, seed)
    compose = pe.Node(
        niu.Function(function=_compose, output_names=["transforms"]),
        name="compose",
        run_without_submitting=True,
    )
    to_template = pe.Node(
        ApplyTransforms(
            reference_image=str(templates.t1w_path(resolution)),
            interpolation="linear",
            out_suffix="_std",
            num_threads=omp_nthreads,
        ),
        name="pet_to_template",
    )
    suvr = pe.Node(
        ComputeSUVR(
            reference_mask=str(templates.reference_mask_path(reference_region, resolution))
        ),
        name="suvr",
    )
    tables = init_tables_wf(reference_region, atlases, work_dir)
    workflow.connect([
        (inputnode, coregister, [
            ("t1w_brain", "inputnode.t1w_brain"),
            ("pet_average", "inputnode.pet_average"),
        ]),
        (inputnode, compose, [("t1w2std_xfm", "t1w2std")]),
        (coregister, compose, [("outputnode.transforms", "pet2t1w")]),
        (inputnode, to_template, [("pet_average", "in_file")]),
        (compose, to_template, [("transforms", "transforms")]),
        (to_template, suvr, [("out_file", "in_file")]),
        (suvr, tables, [("out_file", "inputnode.suvr")]),
        (coregister, outputnode, [
            ("outputnode.transforms", "pet2t1w_xfm"),
            ("outputnode.score", "coreg_score"),
        ]),
        (to_template, outputnode, [("out_file", "pet_std")]),
        (suvr, outputnode, [("out_file", "suvr_std"), ("reference_value", "reference_value")]),
        (tables, outputnode, [("outputnode.tables", "tables")]),
    ])  # fmt: skip

    if centaurz_tracer:
        centaur = pe.Node(
            CenTauRzTable(tracer=centaurz_tracer), name="centaurz", run_without_submitting=True
        )
        if centaur_masks:
            centaur.inputs.masks_dir = str(centaur_masks)
        pick_dk = pe.Node(niu.Select(index=[atlases.index("DK")]), name="pick_dk")
        workflow.connect([
            (tables, pick_dk, [("outputnode.tables", "inlist")]),
            (pick_dk, centaur, [("out", "dk_table")]),
            (suvr, centaur, [("out_file", "suvr_file")]),
            (centaur, outputnode, [("out_table", "centaurz")]),
        ])  # fmt: skip
    if pvc_methods:
        _add_pvc(workflow, suvr, outputnode, reference_region, atlases, work_dir, pvc_methods,
                 pvc_fwhm_mm)  # fmt: skip
    return workflow


def _add_pvc(workflow, suvr, outputnode, reference_region, atlases, work_dir, methods, fwhm_mm):
    """Partial-volume correction of the SUVR image, then the same tables for each method."""
    resolution = templates.WORKING_RESOLUTION
    segmentation = pe.Node(
        PVCSegmentation(
            dk_file=str(templates.atlas_path("DK", resolution)),
            brain_mask=str(templates.brain_mask_path(resolution)),
            t1w_file=str(templates.t1w_path(resolution)),
        ),
        name="pvc_segmentation",
    )
    # Merge concatenates the per-method lists: method-major, atlas-minor.
    gather = pe.Node(niu.Merge(len(methods)), name="gather_pvc", run_without_submitting=True)
    workflow.connect([(gather, outputnode, [("out", "pvc_tables")])])
    for position, method in enumerate(methods, start=1):
        correct = pe.Node(
            PartialVolumeCorrection(method=method, fwhm_mm=fwhm_mm), name=f"pvc_{method}"
        )
        tables = init_tables_wf(reference_region, atlases, work_dir, name=f"tables_pvc_{method}")
        workflow.connect([
            (suvr, correct, [("out_file", "in_file")]),
            (segmentation, correct, [("out_file", "seg_file"), ("labels_file", "labels_file")]),
            (correct, tables, [("out_file", "inputnode.suvr")]),
            (tables, gather, [("outputnode.tables", f"in{position}")]),
        ])  # fmt: skip
