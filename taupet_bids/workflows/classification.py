"""``--classify``: the AD-vs-CN classifier run on a scan's template-space SUVR image."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids.interfaces.classification import ClassifyADvsCN
from taupet_bids.plan import ScanPlan

#: Outputs written as derivatives: the prediction JSON, the occlusion and attribution maps and
#: their regional TSVs.
DERIVATIVES = (
    "classification",
    "occlusion_map",
    "occlusion_regions",
    "attribution_map",
    "attribution_regions",
)


def init_classification_wf(plan: ScanPlan, name: str = "classification_wf") -> pe.Workflow:
    """inputs: ``suvr_std``; outputs: :data:`DERIVATIVES`.

    One node: P(AD), its label at the bundle's threshold, the occlusion-sensitivity map, which
    takes most of the time (docs/classification.md), so it gets the scan's threads, and the
    attribution map.
    """
    if plan.classifier_bundle is None:
        raise ValueError("init_classification_wf needs a plan made with --classify")
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["suvr_std"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=list(DERIVATIVES)), name="outputnode")
    classify = pe.Node(
        ClassifyADvsCN(bundle=str(plan.classifier_bundle), num_threads=plan.omp_nthreads),
        name="classify_ad_vs_cn",
        n_procs=plan.omp_nthreads,
    )
    workflow.connect([
        (inputnode, classify, [("suvr_std", "in_file")]),
        (classify, outputnode, [
            ("prediction", "classification"),
            ("occlusion_map", "occlusion_map"),
            ("regions", "occlusion_regions"),
            ("attribution_map", "attribution_map"),
            ("attribution_regions", "attribution_regions"),
        ]),
    ])  # fmt: skip
    return workflow
