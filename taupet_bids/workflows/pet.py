"""PET preprocessing: late-window frames -> inter-frame motion correction -> weighted average."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids.bids import CheckedScan
from taupet_bids.interfaces.frames import SelectFrames, TimeWeightedAverage
from taupet_bids.interfaces.fsl import MCFLIRTMotionTable, mcflirt
from taupet_bids.interfaces.motion import MotionCorrect


def init_pet_preproc_wf(
    checked: CheckedScan,
    omp_nthreads: int = 1,
    seed: int = 42,
    use_fsl: bool = False,
    name: str = "pet_preproc_wf",
) -> pe.Workflow:
    """Frames of the window, motion-corrected (antspyx, or FSL MCFLIRT) and averaged.

    outputs: ``pet_mc`` (4D, corrected), ``pet_average`` (3D), ``motion_params`` (TSV).
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["pet"]), name="inputnode")
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["pet_mc", "pet_average", "motion_params"]),
        name="outputnode",
    )
    durations_s = [checked.frame_duration_min[i] * 60.0 for i in checked.frames]

    select = pe.Node(SelectFrames(frame_indices=list(checked.frames)), name="select_frames")
    average = pe.Node(TimeWeightedAverage(frame_durations=durations_s), name="average")
    workflow.connect([
        (inputnode, select, [("pet", "in_file")]),
        (average, outputnode, [("out_file", "pet_average")]),
    ])  # fmt: skip
    if use_fsl and len(checked.frames) > 1:
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
        MotionCorrect(frame_durations=durations_s, random_seed=seed, num_threads=omp_nthreads),
        name="motion_correct",
        n_procs=omp_nthreads,
    )
    workflow.connect([
        (select, motion, [("out_file", "in_file")]),
        (motion, average, [("out_file", "in_file")]),
        (motion, outputnode, [("out_file", "pet_mc"), ("motion_params", "motion_params")]),
    ])  # fmt: skip
    return workflow
