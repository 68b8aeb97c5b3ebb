"""PET -> T1w -> template, SUVR against the reference region, regional tables per atlas."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids import templates
from taupet_bids.interfaces.quantification import ComputeSUVR, RegionalStatistics
from taupet_bids.interfaces.registration import ApplyTransforms
from taupet_bids.interfaces.tables import JoinTables
from taupet_bids.workflows.coregistration import init_coregistration_wf
from taupet_bids.workflows.regions import region_groups


def _compose(t1w2std: list[str], pet2t1w: list[str]) -> list[str]:
    """ANTs applies the last transform first: PET -> T1w, then T1w -> template."""
    return list(t1w2std) + list(pet2t1w)


def reference_labels_file(label: str, folder: Path) -> Path:
    """A one-row label table for the reference mask (label 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"reference-{label}.tsv"
    path.write_text(f"index\tname\n1\treference-{label}\n")
    return path


def init_quantification_wf(
    reference_region: str,
    atlases: tuple[str, ...],
    work_dir: Path,
    omp_nthreads: int = 1,
    seed: int = 42,
    use_fsl: bool = False,
    name: str = "quantification_wf",
) -> pe.Workflow:
    """Coregister the averaged PET, resample it to MNI152NLin6Asym 2 mm, compute SUVR and tables.

    outputs: ``pet2t1w_xfm``, ``coreg_score``, ``suvr_std``, ``reference_value``, ``tables``
    (one TSV per atlas, in the order of ``atlases``).
    """
    resolution = templates.WORKING_RESOLUTION
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["pet_average", "t1w_brain", "t1w_mask", "t1w2std_xfm"]),
        name="inputnode",
    )
    outputnode = pe.Node(
        niu.IdentityInterface(
            fields=[
                "pet2t1w_xfm",
                "coreg_score",
                "pet_std",
                "suvr_std",
                "reference_value",
                "tables",
            ]
        ),
        name="outputnode",
    )
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
    reference_stats = pe.Node(
        RegionalStatistics(
            atlas_file=str(templates.reference_mask_path(reference_region, resolution)),
            labels_file=str(reference_labels_file(reference_region, work_dir / "labels")),
        ),
        name="reference_stats",
        run_without_submitting=True,
    )
    gather = pe.Node(niu.Merge(len(atlases)), name="gather_tables", run_without_submitting=True)
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
        (suvr, reference_stats, [("out_file", "in_file")]),
        (coregister, outputnode, [
            ("outputnode.transforms", "pet2t1w_xfm"),
            ("outputnode.score", "coreg_score"),
        ]),
        (to_template, outputnode, [("out_file", "pet_std")]),
        (suvr, outputnode, [("out_file", "suvr_std"), ("reference_value", "reference_value")]),
        (gather, outputnode, [("out", "tables")]),
    ])  # fmt: skip

    for position, atlas in enumerate(atlases, start=1):
        stats = pe.Node(
            RegionalStatistics(
                atlas_file=str(templates.atlas_path(atlas, resolution)),
                labels_file=str(templates.atlas_labels_path(atlas)),
                groups=region_groups(atlas),
            ),
            name=f"stats_{atlas}",
            run_without_submitting=True,
        )
        join = pe.Node(JoinTables(), name=f"join_{atlas}", run_without_submitting=True)
        both = pe.Node(niu.Merge(2), name=f"with_reference_{atlas}", run_without_submitting=True)
        workflow.connect([
            (suvr, stats, [("out_file", "in_file")]),
            (stats, both, [("out_table", "in1")]),
            (reference_stats, both, [("out_table", "in2")]),
            (both, join, [("out", "in_tables")]),
            (join, gather, [("out_table", f"in{position}")]),
        ])  # fmt: skip
    return workflow
