"""PET preprocessing: late-window frames -> inter-frame motion correction -> weighted average
(-> smoothing to a uniform resolution, with ``--smooth-to-fwhm``)."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids.interfaces.frames import SelectFrames, TimeWeightedAverage
from taupet_bids.interfaces.fsl import MCFLIRTMotionTable, mcflirt
from taupet_bids.interfaces.motion import MotionCorrect
from taupet_bids.interfaces.resolution import SmoothToFWHM
from taupet_bids.plan import ScanPlan

OUTPUT_FIELDS = ("pet_mc", "pet_average", "motion_params")
#: Outputs written as derivatives.
DERIVATIVES = ("pet_average", "motion_params")


def init_pet_preproc_wf(plan: ScanPlan, name: str = "pet_preproc_wf") -> pe.Workflow:
    """Frames of the window, motion-corrected (antspyx, or FSL MCFLIRT) and averaged.

    outputs: ``pet_mc`` (4D, corrected), ``pet_average`` (3D), ``motion_params`` (TSV); both
    images in the plan's units (activity is scaled to Bq/mL as the frames are cut).

    With ``--smooth-to-fwhm`` the average is smoothed to the target resolution before it leaves:
    here every later step (registration, SUVR, tables, PVC, figures) sees the uniform
    resolution, and motion correction still works on the sharper frames.
    """
    checked = plan.checked
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["pet"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=list(OUTPUT_FIELDS)), name="outputnode")
    durations_s = [checked.frame_duration_min[i] * 60.0 for i in checked.frames]

    select = pe.Node(
        SelectFrames(frame_indices=list(checked.frames), scale=plan.units_scale),
        name="select_frames",
    )
    average = pe.Node(TimeWeightedAverage(frame_durations=durations_s), name="average")
    workflow.connect([(inputnode, select, [("pet", "in_file")])])
    if plan.smooth_to_fwhm_mm:
        smooth = pe.Node(
            SmoothToFWHM(scan_fwhm_mm=plan.scan_fwhm_mm, target_fwhm_mm=plan.smooth_to_fwhm_mm),
            name="smooth_to_fwhm",
        )
        workflow.connect([
            (average, smooth, [("out_file", "in_file")]),
            (smooth, outputnode, [("out_file", "pet_average")]),
        ])  # fmt: skip
    else:
        workflow.connect([(average, outputnode, [("out_file", "pet_average")])])
    if plan.use_fsl and len(checked.frames) > 1:
        motion = pe.Node(mcflirt(), name="mcflirt")
        table = pe.Node(MCFLIRTMotionTable(), name="motion_table", run_without_submitting=True)
        workflow.connect([
            (select, motion, [("out_file", "in_file")]),
            (motion, table, [("par_file", "par_file")]),
            (motion, average, [("out_file", "in_file")]),
            (motion, outputnode, [("out_file", "pet_mc")]),
            (table, outputnode, [("out_file", "motion_params")]),
        ])  # fmt: skip
        return workflow
    motion = pe.Node(
        MotionCorrect(
            frame_durations=durations_s, random_seed=plan.seed, num_threads=plan.omp_nthreads
        ),
        name="motion_correct",
        n_procs=plan.omp_nthreads,
    )
    workflow.connect([
        (select, motion, [("out_file", "in_file")]),
        (motion, average, [("out_file", "in_file")]),
        (motion, outputnode, [("out_file", "pet_mc"), ("motion_params", "motion_params")]),
    ])  # fmt: skip
    return workflow
