"""PET -> T1w rigid coregistration: antspyx by default, FSL FLIRT on request (``--use-fsl``)."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids.interfaces.fsl import FSLToITK, flirt_coregistration
from taupet_bids.interfaces.registration import RegisterImages
from taupet_bids.plan import ScanPlan


def init_coregistration_wf(plan: ScanPlan, name: str = "coregistration_wf") -> pe.Workflow:
    """Rigid PET-to-T1w transform as an ANTs-composable list.

    inputs: ``pet_average``, ``t1w_brain``. outputs: ``transforms`` (ITK, ANTs order) and
    ``score`` (normalised mutual information after registration; antspyx path only).
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["pet_average", "t1w_brain"]), "inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["transforms", "score"]), "outputnode")
    if plan.use_fsl:
        flirt = pe.Node(flirt_coregistration(), name="flirt")
        to_itk = pe.Node(FSLToITK(), name="flirt_to_itk", run_without_submitting=True)
        workflow.connect([
            (inputnode, flirt, [("pet_average", "in_file"), ("t1w_brain", "reference")]),
            (inputnode, to_itk, [("pet_average", "moving"), ("t1w_brain", "reference")]),
            (flirt, to_itk, [("out_matrix_file", "fsl_matrix")]),
            (to_itk, outputnode, [("transforms", "transforms")]),
        ])  # fmt: skip
        return workflow
    # A 2 mm copy of the T1w is all a 6-8 mm PET can use, and 8x faster than 1 mm.
    register = pe.Node(
        RegisterImages(
            transform_type="Rigid",
            fixed_resample_mm=2.0,
            random_seed=plan.seed,
            num_threads=plan.omp_nthreads,
        ),
        name="pet_to_t1w",
        n_procs=plan.omp_nthreads,
    )
    workflow.connect([
        (inputnode, register, [("t1w_brain", "fixed_image"), ("pet_average", "moving_image")]),
        (register, outputnode, [("forward_transforms", "transforms"), ("nmi", "score")]),
    ])  # fmt: skip
    return workflow
