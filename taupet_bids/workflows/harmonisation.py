"""``--harmonize``: the PET-MR harmoniser run on a scan's template-space SUVR image, and the
regional tables of the harmonised image (written beside the measured ones, never instead)."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids.interfaces.harmonisation import HarmoniseSUVR
from taupet_bids.plan import ScanPlan
from taupet_bids.workflows.tables import init_tables_wf

#: Outputs written as derivatives (``harmonization_meta`` goes into their sidecars).
DERIVATIVES = ("harmonized_suvr", "correction_map", "harmonized_tables", "harmonization_meta")


def init_harmonisation_wf(plan: ScanPlan, name: str = "harmonisation_wf") -> pe.Workflow:
    """inputs: ``suvr_std``, ``t1w_std`` (the T1w warped to the template; left unconnected for
    an MR-less scan, which then uses the template's T1w); outputs: :data:`DERIVATIVES`.

    The harmonised tables use the template's regional masks (also with ``--regional-mask
    subject-gm``; their sidecar says so).
    """
    if not plan.harmonize:
        raise ValueError("init_harmonisation_wf needs a plan that harmonises this scan")
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["suvr_std", "t1w_std"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=list(DERIVATIVES)), name="outputnode")
    harmonise = pe.Node(
        HarmoniseSUVR(
            bundle=str(plan.harmonization_bundle),
            reason=plan.harmonization_reason,
            ac_method=plan.harmonization_ac_method or "mr",
            num_threads=plan.omp_nthreads,
        ),
        name="harmonise_suvr",
        n_procs=plan.omp_nthreads,
    )
    tables = init_tables_wf(plan.reference_region, plan.atlases, name="tables_harmonized")
    workflow.connect([
        (inputnode, harmonise, [("suvr_std", "in_file")]),
        (harmonise, tables, [("harmonized_suvr", "inputnode.suvr")]),
        (harmonise, outputnode, [
            ("harmonized_suvr", "harmonized_suvr"),
            ("correction_map", "correction_map"),
            ("meta", "harmonization_meta"),
        ]),
        (tables, outputnode, [("outputnode.tables", "harmonized_tables")]),
    ])  # fmt: skip
    if plan.harmonization_anatomy == "subject":
        workflow.connect([(inputnode, harmonise, [("t1w_std", "t1w_file")])])
    return workflow
