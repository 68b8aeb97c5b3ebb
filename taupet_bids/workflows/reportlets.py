"""QC record and report figures of one scan: graph nodes, staged and committed like any output.

The subject report is assembled from these files by the CLI after the run; nothing is read back
from Nipype's working folder.
"""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids.core.figures import FIGURES
from taupet_bids.interfaces.qc import ScanQC
from taupet_bids.interfaces.reportlets import (
    AttributionMontage,
    CoregistrationOverlay,
    HarmonizationMontage,
    MotionPlot,
    NormalisationOverlay,
    OcclusionMontage,
    RegionOverlay,
    SUVRMontage,
)
from taupet_bids.plan import ScanPlan

#: Inputs, by the workflow that makes them.
FROM_PET = ("motion_params", "pet_average")
FROM_QUANT = ("coreg_score", "normalisation", "suvr_std", "pet2t1w_xfm")
FROM_ANAT = ("t1w2std_score", "t1w2std_margin", "t1w_preproc", "t1w_mask", "t1w2std_xfm")
FROM_CLASSIFY = ("occlusion_map", "attribution_map")
FROM_HARMONIZE = ("correction_map",)
#: Outputs written as derivatives: the QC record and one field per figure.
DERIVATIVES = ("qc_json", *(f"figure_{key}" for key in FIGURES))


def figure_keys(plan: ScanPlan) -> tuple[str, ...]:
    """The figures a scan gets: registration overlays depend on the path (MR-based or not)."""
    registration = ("pet2std",) if plan.mr_less else ("coreg", "t1w2std")
    classification = ("occlusion", "attribution") if plan.classify else ()
    harmonization = ("harmonization",) if plan.harmonize else ()
    return ("motion", *registration, "regions", "montage", *classification, *harmonization)


def _figure_nodes(plan: ScanPlan) -> dict[str, tuple[pe.Node, list[tuple[str, str]]]]:
    """Each figure's node and the inputnode fields it reads."""
    node = {
        "motion": (MotionPlot(), [("motion_params", "in_file")]),
        "coreg": (CoregistrationOverlay(), [
            ("t1w_preproc", "t1w"), ("pet_average", "pet"), ("pet2t1w_xfm", "pet2t1w"),
            ("t1w_mask", "mask"),
        ]),
        "t1w2std": (NormalisationOverlay(title="T1w"), [
            ("t1w_preproc", "in_file"), ("t1w2std_xfm", "transforms"),
        ]),
        "pet2std": (NormalisationOverlay(title="SUVR (MR-less)"), [("suvr_std", "in_file")]),
        "regions": (RegionOverlay(reference_region=plan.reference_region),
                    [("suvr_std", "in_file")]),
        "montage": (SUVRMontage(), [("suvr_std", "in_file")]),
        "occlusion": (OcclusionMontage(), [("occlusion_map", "in_file")]),
        "attribution": (AttributionMontage(), [("attribution_map", "in_file")]),
        "harmonization": (HarmonizationMontage(), [("correction_map", "in_file")]),
    }  # fmt: skip
    return {
        key: (pe.Node(node[key][0], name=f"figure_{key}"), node[key][1])
        for key in figure_keys(plan)
    }


def init_reportlets_wf(plan: ScanPlan, name: str = "reportlets_wf") -> pe.Workflow:
    """inputs: motion, registration scores and images, normalisation QC, SUVR image.

    outputs: ``qc_json`` and ``figure_<key>`` for each of :func:`figure_keys`.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(
            fields=[*FROM_PET, *FROM_QUANT, *FROM_ANAT, *FROM_CLASSIFY, *FROM_HARMONIZE]
        ),
        name="inputnode",
    )
    outputnode = pe.Node(niu.IdentityInterface(fields=list(DERIVATIVES)), name="outputnode")
    scan_qc = pe.Node(ScanQC(), name="scan_qc", run_without_submitting=True)
    fields = ["motion_params", "normalisation"]
    if not plan.mr_less:
        fields += ["t1w2std_score", "t1w2std_margin"]
        fields += [] if plan.use_fsl else ["coreg_score"]
    workflow.connect([
        (inputnode, scan_qc, [(f, f) for f in fields]),
        (scan_qc, outputnode, [("out_file", "qc_json")]),
    ])  # fmt: skip
    for key, (node, reads) in _figure_nodes(plan).items():
        workflow.connect([
            (inputnode, node, reads),
            (node, outputnode, [("out_file", f"figure_{key}")]),
        ])  # fmt: skip
    return workflow
