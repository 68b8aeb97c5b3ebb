"""T1w processing: N4 -> nonlinear registration to the template -> template-based brain mask,
and, for ``--regional-mask subject-gm``, the T1w's tissue classes brought to the template."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids import templates
from taupet_bids.interfaces.registration import (
    ApplyTransforms,
    N4BiasCorrect,
    RegisterImages,
    TemplateBrainMask,
)
from taupet_bids.interfaces.segmentation import TissueSegmentation
from taupet_bids.plan import ScanPlan, SynthesisPlan

#: Outputs written as derivatives.
DERIVATIVES = ("t1w_preproc", "t1w_mask", "t1w2std_xfm")


def init_anat_wf(plan: ScanPlan | SynthesisPlan, name: str = "anat_wf") -> pe.Workflow:
    """Register the T1w to MNI152NLin6Asym (2 mm head template) and strip its skull.

    The brain mask comes from the same registration (the template's mask pulled back), so no
    extra model or download is needed. outputs: ``t1w_preproc``, ``t1w_brain``, ``t1w_mask``,
    ``t1w2std_xfm`` (ANTs order), ``t1w2std_score`` and ``t1w2std_margin`` (QC), and the
    inverse ``std2t1w_xfm`` with its
    ``std2t1w_invert`` flags (template -> T1w, for pulling template labels into the subject).
    ``t1w_std`` is the N4-corrected T1w resampled onto the template grid by that registration
    (the harmoniser's anatomy). With a ``subject-gm`` plan also ``tissues_std``: the subject's
    GM and WM probabilities and brain mask (4-D) on the template grid; with ``--pvc-regions
    soft`` also ``tissue_fractions``: GM and WM fractions and the brain mask in T1w space.
    """
    omp_nthreads, seed = plan.omp_nthreads, plan.seed
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["t1w"]), name="inputnode")
    outputnode = pe.Node(
        niu.IdentityInterface(
            fields=[
                "t1w_preproc",
                "t1w_brain",
                "t1w_mask",
                "t1w2std_xfm",
                "t1w2std_score",
                "t1w2std_margin",
                "std2t1w_xfm",
                "std2t1w_invert",
                "tissues_std",
                "tissue_fractions",
                "t1w_std",
            ]  # fmt: skip
        ),
        name="outputnode",
    )
    n4 = pe.Node(N4BiasCorrect(num_threads=omp_nthreads), name="n4", n_procs=omp_nthreads)
    to_template = pe.Node(
        RegisterImages(
            fixed_image=str(templates.t1w_path(templates.WORKING_RESOLUTION)),
            score_mask=str(templates.brain_mask_path(templates.WORKING_RESOLUTION)),
            transform_type="SyN",
            random_seed=seed,
            num_threads=omp_nthreads,
        ),
        name="t1w_to_template",
        n_procs=omp_nthreads,
    )
    brain_mask = pe.Node(
        TemplateBrainMask(
            template_mask=str(templates.brain_mask_path(templates.WORKING_RESOLUTION)),
            num_threads=omp_nthreads,
        ),
        name="brain_mask",
    )
    workflow.connect([
        (inputnode, n4, [("t1w", "in_file")]),
        (n4, to_template, [("out_file", "moving_image")]),
        (n4, brain_mask, [("out_file", "in_file")]),
        (to_template, brain_mask, [
            ("inverse_transforms", "transforms"),
            ("inverse_invert_flags", "invert_transform_flags"),
        ]),
        (n4, outputnode, [("out_file", "t1w_preproc")]),
        (brain_mask, outputnode, [("out_file", "t1w_brain"), ("out_mask", "t1w_mask")]),
        (to_template, outputnode, [
            ("forward_transforms", "t1w2std_xfm"),
            ("correlation", "t1w2std_score"),
            ("alignment_margin", "t1w2std_margin"),
            ("inverse_transforms", "std2t1w_xfm"),
            ("inverse_invert_flags", "std2t1w_invert"),
            ("warped_image", "t1w_std"),
        ]),
    ])  # fmt: skip
    if plan.subject_gm:
        _add_tissues(workflow, n4, brain_mask, to_template, outputnode, plan)
    return workflow


def _add_tissues(workflow, n4, brain_mask, to_template, outputnode, plan: ScanPlan) -> None:
    """Atropos on the N4-corrected T1w inside its brain mask, then linear resampling of the
    probabilities (and the mask) to the 2 mm template grid with the T1w's own registration,
    so no new registration is run."""
    threads = plan.omp_nthreads
    segment = pe.Node(
        TissueSegmentation(num_threads=threads, fractions=plan.pvc_soft_regions),
        name="tissue_segmentation",
        n_procs=threads,
    )
    to_std = pe.Node(
        ApplyTransforms(
            reference_image=str(templates.t1w_path(templates.WORKING_RESOLUTION)),
            interpolation="linear",
            out_suffix="_std",
            num_threads=threads,
        ),
        name="tissues_to_template",
    )
    workflow.connect([
        (n4, segment, [("out_file", "in_file")]),
        (brain_mask, segment, [("out_mask", "mask_file")]),
        (segment, to_std, [("out_tissues", "in_file")]),
        (to_template, to_std, [("forward_transforms", "transforms")]),
        (to_std, outputnode, [("out_file", "tissues_std")]),
    ])  # fmt: skip
    if plan.pvc_soft_regions:
        workflow.connect([(segment, outputnode, [("out_fractions", "tissue_fractions")])])
