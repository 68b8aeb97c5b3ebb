"""PET -> T1w -> template, SUVR against the reference region, regional tables per atlas."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids import centaurz, templates
from taupet_bids.atlases.regions import region_groups
from taupet_bids.core import pvc
from taupet_bids.interfaces.centaurz import CenTauRzTable
from taupet_bids.interfaces.mrless import (
    ANTsPETNormalisation,
    NetworkPETNormalisation,
    NormalisationQC,
    RefineNormalisation,
)
from taupet_bids.interfaces.pvc import PaintRegions, PartialVolumeCorrection, PVCSegmentation
from taupet_bids.interfaces.quantification import ComputeSUVR, RegionalStatistics
from taupet_bids.interfaces.registration import ApplyTransforms
from taupet_bids.plan import ScanPlan
from taupet_bids.workflows.coregistration import init_coregistration_wf
from taupet_bids.workflows.tables import init_tables_wf

OUTPUT_FIELDS = [
    "pet2t1w_xfm", "coreg_score", "pet2std_xfm", "normalisation", "pet_std", "suvr_std",
    "reference_value", "reference_mask", "tables", "table_meta", "pvc_tables", "centaurz",
]  # fmt: skip
#: Outputs written as derivatives (``pet2t1w_xfm`` or ``pet2std_xfm`` by path; the rest when
#: the plan asks for them; ``reference_mask`` and ``table_meta`` go into sidecars).
DERIVATIVES = (
    "pet2t1w_xfm", "pet2std_xfm", "normalisation", "suvr_std", "reference_value",
    "reference_mask", "tables", "table_meta", "pvc_tables", "centaurz",
)  # fmt: skip
MR_LESS_METHODS = ("network", "ants", "network+ants")


def _compose(t1w2std: list[str], pet2t1w: list[str]) -> list[str]:
    """Template -> PET for resampling the PET: antspyx maps each output point through the list
    in order (tests/test_pvc.py checks it), so first the T1w registration's transforms (template
    point to T1w point), then the rigid (T1w point to PET point)."""
    return list(t1w2std) + list(pet2t1w)


def _compose_inverse(
    pet2t1w: list[str], std2t1w: list[str], std2t1w_invert: list[bool]
) -> tuple[list[str], list[bool]]:
    """PET -> template points, for pulling template labels onto the PET grid: the PET-to-T1w
    chain inverted (reversed, each transform inverted) first, then the T1w registration's
    inverse with its own flags."""
    transforms = list(reversed(pet2t1w)) + list(std2t1w)
    flags = [True] * len(pet2t1w) + [bool(flag) for flag in std2t1w_invert]
    return transforms, flags


def init_quantification_wf(plan: ScanPlan, name: str = "quantification_wf") -> pe.Workflow:
    """Coregister the averaged PET, resample it to MNI152NLin6Asym 2 mm, compute SUVR and tables.

    outputs: ``pet2t1w_xfm``, ``coreg_score``, ``suvr_std``, ``reference_value``, ``tables``
    (one TSV per atlas, in the order of the plan's atlases), ``pvc_tables`` (per PVC method, per
    atlas) and ``centaurz`` (when the tracer has a CenTauRz conversion).

    On an MR-less plan the PET is normalised to the template directly, without the T1w inputs;
    ``pet2std_xfm`` then holds that transform list. ``normalisation`` is a JSON file with the
    method and its QC values, for either path. ``reference_mask`` says which reference mask the
    SUVR used (``template``, ``subject-gm``, ``template-fallback``).

    With a ``subject-gm`` plan the input ``tissues_std`` (the subject's tissue probabilities
    on the template grid) cuts the reference and the grey-matter regions to the subject's grey
    matter, and ``table_meta`` holds each table's sidecar fields. The PVC label image follows
    the subject's tissues too (MR-based path); CenTauRz keeps the template's labels, on which
    its constants were calibrated.
    """
    reference_region, atlases = plan.reference_region, plan.atlases
    resolution = templates.WORKING_RESOLUTION
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(
            fields=[
                "pet_average",
                "t1w_brain",
                "t1w_mask",
                "t1w2std_xfm",
                "std2t1w_xfm",
                "std2t1w_invert",
                "tissues_std",
                "tissue_fractions",
            ]  # fmt: skip
        ),
        name="inputnode",
    )
    outputnode = pe.Node(niu.IdentityInterface(fields=OUTPUT_FIELDS), name="outputnode")
    to_template = pe.Node(
        ApplyTransforms(
            reference_image=str(templates.t1w_path(resolution)),
            interpolation="linear",
            out_suffix="_std",
            num_threads=plan.omp_nthreads,
        ),
        name="pet_to_template",
    )
    suvr = pe.Node(
        ComputeSUVR(
            reference_mask=str(templates.reference_mask_path(reference_region, resolution))
        ),
        name="suvr",
    )
    tables = init_tables_wf(reference_region, atlases, subject_gm=plan.subject_gm)
    if plan.subject_gm:
        workflow.connect([
            (inputnode, suvr, [("tissues_std", "tissues_file")]),
            (inputnode, tables, [("tissues_std", "inputnode.tissues_std")]),
            (suvr, tables, [
                ("reference_mask_file", "inputnode.reference_mask"),
                ("reference_mask", "inputnode.reference_kind"),
            ]),
            (tables, outputnode, [("outputnode.table_meta", "table_meta")]),
        ])  # fmt: skip
    qc = pe.Node(
        NormalisationQC(
            reference_region=reference_region,
            method=NORMALISATION_NAMES[plan.normalisation],
            tau_tracer=plan.tau_tracer,
        ),
        name="normalisation_qc",
    )
    if plan.mr_less:
        _add_mr_less(workflow, inputnode, to_template, outputnode, plan, qc)
    else:
        coregister = _add_mr_based(workflow, inputnode, to_template, outputnode, plan)
    workflow.connect([
        (inputnode, to_template, [("pet_average", "in_file")]),
        (to_template, qc, [("out_file", "in_file")]),
        (qc, outputnode, [("out_file", "normalisation")]),
        (to_template, suvr, [("out_file", "in_file")]),
        (suvr, tables, [("out_file", "inputnode.suvr")]),
        (to_template, outputnode, [("out_file", "pet_std")]),
        (suvr, outputnode, [
            ("out_file", "suvr_std"),
            ("reference_value", "reference_value"),
            ("reference_mask", "reference_mask"),
        ]),
        (tables, outputnode, [("outputnode.tables", "tables")]),
    ])  # fmt: skip

    if plan.centaurz_tracer:
        centaur = pe.Node(
            CenTauRzTable(
                tracer=plan.centaurz_tracer,
                reference_mask=str(
                    templates.reference_mask_path(centaurz.REFERENCE_REGION, resolution)
                ),
            ),
            name="centaurz",
            run_without_submitting=True,
        )
        if plan.centaur_masks:
            centaur.inputs.masks_dir = str(plan.centaur_masks)
        if plan.subject_gm:
            # CenTauRz's constants were fitted to template masks: its DK means stay template.
            dk_stats = pe.Node(
                RegionalStatistics(
                    atlas_file=str(templates.atlas_path("DK", resolution)),
                    labels_file=str(templates.atlas_labels_path("DK")),
                    groups=region_groups("DK"),
                ),
                name="stats_DK_template",
                run_without_submitting=True,
            )
            workflow.connect([
                (suvr, dk_stats, [("out_file", "in_file")]),
                (dk_stats, centaur, [("out_table", "dk_table")]),
            ])  # fmt: skip
        else:
            pick_dk = pe.Node(niu.Select(index=[atlases.index("DK")]), name="pick_dk")
            workflow.connect([
                (tables, pick_dk, [("outputnode.tables", "inlist")]),
                (pick_dk, centaur, [("out", "dk_table")]),
            ])  # fmt: skip
        workflow.connect([
            (suvr, centaur, [("out_file", "suvr_file")]),
            (centaur, outputnode, [("out_table", "centaurz")]),
        ])  # fmt: skip
    if plan.pvc_methods and plan.mr_less:
        _add_pvc(workflow, suvr, outputnode, plan)
    elif plan.pvc_methods:
        _add_native_pvc(workflow, inputnode, coregister, suvr, outputnode, plan)
    return workflow


#: How each path is named in sidecars, QC files and reports.
NORMALISATION_NAMES = {
    "mr": "MR-based (PET-to-T1w rigid, T1w-to-template SyN)",
    "network": "MR-less, network (taupet-bids MONAI bundle)",
    "ants": "MR-less, ANTs registration to the tau PET template",
    "network+ants": "MR-less, network refined by a short ANTs affine registration",
}


def _add_mr_based(workflow, inputnode, to_template, outputnode, plan: ScanPlan):
    """PET -> T1w (rigid), composed with the T1w -> template transforms."""
    coregister = init_coregistration_wf(plan)
    compose = pe.Node(
        niu.Function(function=_compose, output_names=["transforms"]),
        name="compose",
        run_without_submitting=True,
    )
    workflow.connect([
        (inputnode, coregister, [
            ("t1w_brain", "inputnode.t1w_brain"),
            ("pet_average", "inputnode.pet_average"),
        ]),
        (inputnode, compose, [("t1w2std_xfm", "t1w2std")]),
        (coregister, compose, [("outputnode.transforms", "pet2t1w")]),
        (compose, to_template, [("transforms", "transforms")]),
        (coregister, outputnode, [
            ("outputnode.transforms", "pet2t1w_xfm"),
            ("outputnode.score", "coreg_score"),
        ]),
    ])  # fmt: skip
    return coregister


def _add_mr_less(workflow, inputnode, to_template, outputnode, plan: ScanPlan, qc):
    """PET -> template directly: the trained network, ANTs to the tau PET template, or the
    network refined by a short ANTs affine (``network+ants``, whose disagreement with the
    network goes to the QC)."""
    method, threads = plan.normalisation, plan.omp_nthreads
    if method not in MR_LESS_METHODS:
        raise ValueError(f"unknown MR-less method {method!r}; choose from {MR_LESS_METHODS}")
    if method == "ants":
        normalise = pe.Node(
            ANTsPETNormalisation(seed=plan.seed, num_threads=threads),
            name="pet_to_template_ants",
            n_procs=threads,
        )
        last = normalise
    else:
        normalise = pe.Node(
            NetworkPETNormalisation(
                reference_image=str(templates.t1w_path(templates.WORKING_RESOLUTION)),
                num_threads=threads,
            ),
            name="pet_to_template_network",
            n_procs=threads,
        )
        if plan.mr_less_bundle:
            normalise.inputs.bundle = str(plan.mr_less_bundle)
        workflow.connect([(normalise, qc, [("model_version", "model_version")])])
        last = normalise
    if method == "network+ants":
        last = pe.Node(
            RefineNormalisation(seed=plan.seed, num_threads=threads),
            name="pet_to_template_refine",
            n_procs=threads,
        )
        workflow.connect([
            (inputnode, last, [("pet_average", "in_file")]),
            (normalise, last, [("transforms", "network_transforms")]),
            (last, qc, [("shift_mean_mm", "refinement_shift_mm")]),
        ])  # fmt: skip
    workflow.connect([
        (inputnode, normalise, [("pet_average", "in_file")]),
        (last, to_template, [("transforms", "transforms")]),
        (last, outputnode, [("transforms", "pet2std_xfm")]),
    ])  # fmt: skip
    return normalise


def _pvc_segmentation_node(reference_region: str) -> pe.Node:
    """The PVC label image on the template grid, with the reference as its own label.

    Its ``tissues_file`` input, when connected, redraws it by the subject's tissues.
    """
    resolution = templates.WORKING_RESOLUTION
    return pe.Node(
        PVCSegmentation(
            dk_file=str(templates.atlas_path("DK", resolution)),
            brain_mask=str(templates.brain_mask_path(resolution)),
            t1w_file=str(templates.t1w_path(resolution)),
            reference_mask=str(templates.reference_mask_path(reference_region, resolution)),
            reference_region=reference_region,
        ),
        name="pvc_segmentation",
    )


def _add_native_pvc(workflow, inputnode, coregister, suvr, outputnode, plan: ScanPlan):
    """PVC on the subject's own PET grid (the MR-based path), then the usual template tables.

    The template label image is pulled onto the PET grid through the inverse of the subject's
    registrations (the subject's segmentation in PET space), so the correction runs where the
    PSF is the scanner's, before any resampling widens it. The corrected image is already SUVR
    (it is divided by its own corrected reference). Each label's corrected value (GTM; the
    RBV/MG image's mean over the label) is painted on the template labels, so the tables are
    the usual ones without resampling a sharpened image, which would blur it again.

    With a ``subject-gm`` plan the label image follows the subject's grey and white matter and
    the reference is the subject's grey matter of the template reference mask (without the
    SUVR reference's margins: ``PVCSegmentation``); the tables then read the painted
    values over the subject's grey matter, as the uncorrected tables do. The regions are hard,
    or with ``--pvc-regions soft`` shared between the tissues by the T1w's fractions, pulled
    onto the PET grid through the inverse of the PET-to-T1w registration (docs/pvc.md).
    """
    segmentation = _pvc_segmentation_node(plan.reference_region)
    if plan.subject_gm:
        workflow.connect([(inputnode, segmentation, [("tissues_std", "tissues_file")])])
    inverse = pe.Node(
        niu.Function(function=_compose_inverse, output_names=["transforms", "flags"]),
        name="compose_inverse",
        run_without_submitting=True,
    )
    labels_to_pet = pe.Node(
        ApplyTransforms(
            interpolation="genericLabel",
            default_value=float(pvc.OUTSIDE_LABEL),  # PET voxels beyond the template's box
            out_suffix="_pet",
            num_threads=plan.omp_nthreads,
        ),
        name="pvc_labels_to_pet",
    )
    workflow.connect([
        (coregister, inverse, [("outputnode.transforms", "pet2t1w")]),
        (inputnode, inverse, [("std2t1w_xfm", "std2t1w"), ("std2t1w_invert", "std2t1w_invert")]),
        (segmentation, labels_to_pet, [("out_file", "in_file")]),
        (inputnode, labels_to_pet, [("pet_average", "reference_image")]),
        (inverse, labels_to_pet, [
            ("transforms", "transforms"), ("flags", "invert_transform_flags"),
        ]),
    ])  # fmt: skip
    fractions = _fractions_to_pet(workflow, inputnode, coregister, plan)
    for method, correct, tables in _pvc_method_nodes(workflow, outputnode, plan, plan.subject_gm):
        if fractions is not None:
            workflow.connect([(fractions, correct, [("out_file", "tissues_file")])])
        if plan.subject_gm:
            workflow.connect([
                (inputnode, tables, [("tissues_std", "inputnode.tissues_std")]),
                (suvr, tables, [
                    ("reference_mask_file", "inputnode.reference_mask"),
                    ("reference_mask", "inputnode.reference_kind"),
                ]),
            ])  # fmt: skip
        workflow.connect([
            (inputnode, correct, [("pet_average", "in_file")]),
            (labels_to_pet, correct, [("out_file", "seg_file")]),
            (segmentation, correct, [("labels_file", "labels_file")]),
        ])  # fmt: skip
        to_std = pe.Node(PaintRegions(), name=f"pvc_{method}_to_template")
        workflow.connect([
            (segmentation, to_std, [("out_file", "seg_file")]),
            (correct, to_std, [("out_values", "values_file")]),
        ])  # fmt: skip
        workflow.connect([(to_std, tables, [("out_file", "inputnode.suvr")])])


def _add_pvc(workflow, suvr, outputnode, plan: ScanPlan):
    """Partial-volume correction of the template-space SUVR image (the MR-less path, whose
    network transform has no inverse to pull labels onto the PET), then the same tables.

    The reference region is its own GTM region and every corrected image is divided by its
    own mean over it, so corrected SUVRs are ratios of corrected values throughout.
    """
    segmentation = _pvc_segmentation_node(plan.reference_region)
    for _, correct, tables in _pvc_method_nodes(workflow, outputnode, plan):
        workflow.connect([
            (suvr, correct, [("out_file", "in_file")]),
            (segmentation, correct, [("out_file", "seg_file"), ("labels_file", "labels_file")]),
            (correct, tables, [("out_file", "inputnode.suvr")]),
        ])  # fmt: skip


def _fractions_to_pet(workflow, inputnode, coregister, plan: ScanPlan) -> pe.Node | None:
    """With ``--pvc-regions soft``: the T1w's tissue fractions on the PET grid (linear), through
    the PET-to-T1w registration inverted, for the correction's soft regions; else None."""
    if not plan.pvc_soft_regions:
        return None
    inverse = pe.Node(
        niu.Function(function=_compose_inverse, output_names=["transforms", "flags"]),
        name="invert_pet2t1w",
        run_without_submitting=True,
    )
    inverse.inputs.std2t1w, inverse.inputs.std2t1w_invert = [], []
    to_pet = pe.Node(
        ApplyTransforms(interpolation="linear", out_suffix="_pet", num_threads=plan.omp_nthreads),
        name="pvc_fractions_to_pet",
    )
    workflow.connect([
        (coregister, inverse, [("outputnode.transforms", "pet2t1w")]),
        (inputnode, to_pet, [("tissue_fractions", "in_file"), ("pet_average", "reference_image")]),
        (inverse, to_pet, [("transforms", "transforms"), ("flags", "invert_transform_flags")]),
    ])  # fmt: skip
    return to_pet


def _pvc_method_nodes(workflow, outputnode, plan: ScanPlan, subject_gm: bool = False):
    """Per method: the correction node (divided by the corrected reference) and its tables
    workflow, whose tables are gathered method-major, atlas-minor into ``pvc_tables``."""
    methods = plan.pvc_methods
    gather = pe.Node(niu.Merge(len(methods)), name="gather_pvc", run_without_submitting=True)
    workflow.connect([(gather, outputnode, [("out", "pvc_tables")])])
    for position, method in enumerate(methods, start=1):
        correct = pe.Node(
            PartialVolumeCorrection(
                method=method, fwhm_mm=plan.pvc_fwhm_mm, reference_label=pvc.REFERENCE_LABEL
            ),
            name=f"pvc_{method}",
        )
        tables = init_tables_wf(
            plan.reference_region, plan.atlases, subject_gm=subject_gm, name=f"tables_pvc_{method}"
        )
        workflow.connect([(tables, gather, [("outputnode.tables", f"in{position}")])])
        yield method, correct, tables
