"""Regional tables of one SUVR image (one TSV per atlas, each ending with the reference row), and
the per-scan Braak stage table read from the seg-Braak tables."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids import staging, templates
from taupet_bids.atlases.regions import grey_matter_labels, region_groups
from taupet_bids.interfaces.quantification import RegionalStatistics
from taupet_bids.interfaces.tables import BraakStageTable, JoinTables


def reference_labels_file(label: str) -> str:
    """A one-row label table for the reference mask (label 1), in the node's folder."""
    from pathlib import Path

    path = Path.cwd() / f"reference-{label}.tsv"
    path.write_text(f"index\tname\n1\treference-{label}\n")
    return str(path)


def subject_gm_meta(fallbacks: list, reference_mask: str) -> dict:
    """Sidecar fields of a regional table made with ``--regional-mask subject-gm``."""
    from taupet_bids.greymatter import TISSUE_THRESHOLD

    return {
        "RegionalMask": "subject-gm",
        "RegionalMaskReason": "--regional-mask subject-gm: the grey-matter regions (DK cortex, "
        "cerebellar cortex, hippocampus, amygdala, and the Braak and meta-temporal regions made "
        "of them) keep the voxels where the subject's grey matter probability (Atropos, on the "
        "T1w) is at least GreyMatterThreshold; other labels are the template's",
        "GreyMatterThreshold": TISSUE_THRESHOLD,
        "TemplateFallbackRegions": list(fallbacks),
        "ReferenceMask": reference_mask,
    }


def init_tables_wf(
    reference_region: str,
    atlases: tuple[str, ...],
    subject_gm: bool = False,
    name: str = "tables_wf",
) -> pe.Workflow:
    """inputs: ``suvr`` (template space). outputs: ``tables`` (one TSV per atlas, in order).

    With ``subject_gm`` three more inputs, ``tissues_std`` (the subject's tissue probabilities
    on the template grid), ``reference_mask`` (the reference the SUVR image was divided by, so
    the reference row reads what the SUVR used) and ``reference_kind`` (``subject-gm`` or
    ``template-fallback``), and one more output, ``table_meta``: per atlas, the sidecar fields
    (:func:`subject_gm_meta`), naming the regions that kept their template voxels because no
    subject grey matter was left in them.
    """
    resolution = templates.WORKING_RESOLUTION
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["suvr", "tissues_std", "reference_mask", "reference_kind"]),
        name="inputnode",
    )
    outputnode = pe.Node(niu.IdentityInterface(fields=["tables", "table_meta"]), name="outputnode")
    reference_labels = pe.Node(
        niu.Function(function=reference_labels_file, output_names=["labels_file"]),
        name="reference_labels",
        run_without_submitting=True,
    )
    reference_labels.inputs.label = reference_region
    # The statistics read whole images (up to 0.7 s each): they run in a worker, so that the
    # scheduler is not held up; only bookkeeping nodes run without submitting.
    reference_stats = pe.Node(RegionalStatistics(), name="reference_stats")
    if not subject_gm:
        reference_stats.inputs.atlas_file = str(
            templates.reference_mask_path(reference_region, resolution)
        )
    gather = pe.Node(niu.Merge(len(atlases)), name="gather_tables", run_without_submitting=True)
    if subject_gm:
        gather_meta = pe.Node(
            niu.Merge(len(atlases)), name="gather_meta", run_without_submitting=True
        )
        workflow.connect([
            (inputnode, reference_stats, [("reference_mask", "atlas_file")]),
            (gather_meta, outputnode, [("out", "table_meta")]),
        ])  # fmt: skip
    workflow.connect([
        (inputnode, reference_stats, [("suvr", "in_file")]),
        (reference_labels, reference_stats, [("labels_file", "labels_file")]),
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
        )
        if subject_gm:
            stats.inputs.grey_labels = grey_matter_labels(atlas)
            meta = pe.Node(
                niu.Function(function=subject_gm_meta, output_names=["meta"]),
                name=f"meta_{atlas}",
                run_without_submitting=True,
            )
            workflow.connect([
                (inputnode, stats, [("tissues_std", "tissues_file")]),
                (stats, meta, [("fallback_regions", "fallbacks")]),
                (inputnode, meta, [("reference_kind", "reference_mask")]),
                (meta, gather_meta, [("meta", f"in{position}")]),
            ])  # fmt: skip
        join = pe.Node(JoinTables(), name=f"join_{atlas}", run_without_submitting=True)
        both = pe.Node(niu.Merge(2), name=f"with_reference_{atlas}", run_without_submitting=True)
        workflow.connect([
            (inputnode, stats, [("suvr", "in_file")]),
            (stats, both, [("out_table", "in1")]),
            (reference_stats, both, [("out_table", "in2")]),
            (both, join, [("out", "in_tables")]),
            (join, gather, [("out_table", f"in{position}")]),
        ])  # fmt: skip
    return workflow


def init_braak_stage_wf(
    atlases: tuple[str, ...],
    pvc_methods: tuple[str, ...],
    tracer: str | None,
    reference_region: str,
    uncorrected: staging.ThresholdSet | None = None,
    name: str = "braak_stage_wf",
) -> pe.Workflow:
    """inputs: ``tables`` (one per atlas), ``pvc_tables`` (method-major, atlas-minor, as the
    quantification workflow gives them). outputs: ``stage_table`` (rows: uncorrected, then each
    PVC method). Needs ``Braak`` in ``atlases``.
    """
    braak = atlases.index("Braak")
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["tables", "pvc_tables"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["stage_table"]), name="outputnode")
    stage = pe.Node(
        BraakStageTable(
            methods=["none", *pvc_methods], tracer=tracer or "", reference_region=reference_region
        ),
        name="braak_stage",
        run_without_submitting=True,
    )
    if uncorrected is not None:
        stage.inputs.uncorrected_thresholds = [
            uncorrected.thresholds[name] for name in staging.COMPOSITES
        ]
        stage.inputs.uncorrected_citation = uncorrected.citation
    pick = pe.Node(niu.Select(index=[braak]), name="pick_braak", run_without_submitting=True)
    both = pe.Node(niu.Merge(2), name="braak_tables", run_without_submitting=True)
    workflow.connect([
        (inputnode, pick, [("tables", "inlist")]),
        (pick, both, [("out", "in1")]),
        (both, stage, [("out", "braak_tables")]),
        (stage, outputnode, [("out_table", "stage_table")]),
    ])  # fmt: skip
    if pvc_methods:
        positions = [m * len(atlases) + braak for m in range(len(pvc_methods))]
        pick_pvc = pe.Node(
            niu.Select(index=positions), name="pick_braak_pvc", run_without_submitting=True
        )
        workflow.connect([
            (inputnode, pick_pvc, [("pvc_tables", "inlist")]),
            (pick_pvc, both, [("out", "in2")]),
        ])  # fmt: skip
    return workflow
