"""QC record and report figures of one scan: graph nodes, staged and committed like any output.

The subject report is assembled from these files by the CLI after the run; nothing is read back
from Nipype's working folder.
"""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids.interfaces.qc import ScanQC
from taupet_bids.plan import ScanPlan

#: Inputs, by the workflow that makes them.
FROM_PET = ("motion_params",)
FROM_QUANT = ("coreg_score", "normalisation")
FROM_ANAT = ("t1w2std_score",)
#: Outputs written as derivatives.
DERIVATIVES = ("qc_json",)


def init_reportlets_wf(plan: ScanPlan, name: str = "reportlets_wf") -> pe.Workflow:
    """inputs: motion table, registration scores, normalisation QC. outputs: ``qc_json``."""
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=[*FROM_PET, *FROM_QUANT, *FROM_ANAT]), name="inputnode"
    )
    outputnode = pe.Node(niu.IdentityInterface(fields=list(DERIVATIVES)), name="outputnode")
    scan_qc = pe.Node(ScanQC(), name="scan_qc", run_without_submitting=True)
    fields = [*FROM_PET, "normalisation"]
    if not plan.mr_less:
        fields += ["t1w2std_score"] if plan.use_fsl else ["coreg_score", "t1w2std_score"]
    workflow.connect([
        (inputnode, scan_qc, [(f, f) for f in fields]),
        (scan_qc, outputnode, [("out_file", "qc_json")]),
    ])  # fmt: skip
    return workflow
