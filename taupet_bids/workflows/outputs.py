"""Derivatives of one scan: data sinks into a staging folder, then one atomic commit."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from taupet_bids import __version__, centaurz, naming, staging, templates
from taupet_bids.bids import CheckedScan
from taupet_bids.core.occlusion import ATTRIBUTION_COLUMN_DESCRIPTIONS as ATTRIBUTION_COLUMNS
from taupet_bids.core.occlusion import COLUMN_DESCRIPTIONS as OCCLUSION_COLUMNS
from taupet_bids.core.regions import STAT_COLUMN_DESCRIPTIONS
from taupet_bids.greymatter import TISSUE_THRESHOLD
from taupet_bids.interfaces.derivatives import CommitDerivatives, DerivativesDataSink
from taupet_bids.plan import ScanPlan
from taupet_bids.workflows import (
    anat,
    classification,
    harmonisation,
    pet,
    quantification,
    reportlets,
)
from taupet_bids.workflows.tables import init_braak_stage_wf

ANAT_FIELDS = list(anat.DERIVATIVES)
PET_FIELDS = [
    *pet.DERIVATIVES, *quantification.DERIVATIVES, *reportlets.DERIVATIVES,
    *classification.DERIVATIVES, *harmonisation.DERIVATIVES,
]  # fmt: skip

PVC_NAMES = {
    "gtm": "geometric transfer matrix (Rousset et al. 1998)",
    "rbv": "region-based voxel-wise (Thomas et al. 2011)",
    "mg": "Mueller-Gaertner (Mueller-Gaertner et al. 1992)",
}


def _pet_metadata(checked: CheckedScan) -> dict:
    """Sidecar fields of an averaged image: one 'frame' spanning the frames that were used."""
    used = list(checked.frames)
    start_s = float(checked.frame_start_min[used[0]] * 60.0)
    end_s = float(checked.frame_end_min[used[-1]] * 60.0)
    window_start, window_end = checked.window_min
    return {
        "TracerName": checked.tracer_name,
        "FrameTimesStart": [start_s],
        "FrameDuration": [end_s - start_s],
        "TimeWindow": [window_start, window_end],
        "TimeWindowUnits": "min",
        "SourceFrames": [int(i) for i in used],
        "SourceFrameTimesStart": [float(checked.frame_start_min[i] * 60.0) for i in used],
        "SourceFrameDuration": [float(checked.frame_duration_min[i] * 60.0) for i in used],
        "SoftwareVersions": f"taupet-bids {__version__}",
    }


def _suvr_metadata(checked: CheckedScan) -> dict:
    return {
        **_pet_metadata(checked),
        "Units": "unitless",
        "Description": "standardized uptake value ratio (PET / mean PET in the reference region)",
        "ReferenceRegion": checked.reference_region,
        "SkullStripped": False,
        "Resolution": f"{naming.RESOLUTION} mm isotropic, {templates.TEMPLATE} (TemplateFlow "
        f"res-{templates.WORKING_RESOLUTION:02d})",
    }


def _units_note(plan: ScanPlan) -> dict:
    """Say how the averaged PET's values relate to the input's, when they are not the same."""
    if plan.checked.units_scale is None:
        return {"UnitsNote": f"as in the input ({plan.checked.units}): an SUV image has no "
                "activity scale, so it is not converted to Bq/mL"}  # fmt: skip
    if plan.units_scale != 1.0:
        return {"UnitsNote": f"converted from the input's {plan.checked.units} "
                f"(values multiplied by {plan.units_scale:g})"}  # fmt: skip
    return {}


def _resolution_meta(plan: ScanPlan) -> dict:
    """Sidecar fields of an image or table made after ``--smooth-to-fwhm`` (none without it)."""
    if not plan.smooth_to_fwhm_mm:
        return {}
    meta = {
        "SmoothedToFWHM": plan.smooth_to_fwhm_mm,
        "SmoothingKernelFWHM": plan.smooth_kernel_mm,
        "SmoothingFWHMUnits": "mm",
        "ScanFWHM": plan.scan_fwhm_mm,
        "ScanFWHMSource": plan.scan_fwhm_source,
    }
    if not plan.smooth_kernel_mm:
        meta["SmoothingNote"] = (
            "not smoothed: the scan's own resolution is already at or coarser than the target"
        )
    return meta


def _bids_uri(path: Path, bids_dir: Path) -> str:
    """A BIDS URI of a raw input (``raw`` is declared in dataset_description's DatasetLinks)."""
    return f"bids:raw:{Path(path).relative_to(bids_dir).as_posix()}"


def _reference_meta(value: float, normalisation: str, units: str, mask: str = "template") -> dict:
    """SUVR sidecar fields known only after the run: reference value, the reference mask used,
    normalisation and its QC."""
    import json

    with open(normalisation) as handle:
        qc = json.load(handle)
    return {
        "ReferenceValue": float(value),
        "ReferenceValueUnits": units,
        "ReferenceMask": mask,
        "SpatialNormalisation": qc,
    }


def _regional_mask_meta(plan: ScanPlan) -> dict:
    """Static sidecar fields of a regional table made with the template's masks."""
    return {"RegionalMask": "template", "RegionalMaskReason": plan.regional_mask_reason}


def _pvc_regional_mask_meta(plan: ScanPlan) -> dict:
    """Sidecar fields saying which labels a PVC table's correction and means used."""
    if plan.subject_gm and not plan.mr_less:
        return {
            "RegionalMask": "subject-gm",
            "RegionalMaskReason": PVC_SUBJECT_GM,
            "GreyMatterThreshold": TISSUE_THRESHOLD,
            "PVCRegions": PVC_SOFT if plan.pvc_soft_regions else PVC_HARD,
        }
    return {"RegionalMask": "template", "RegionalMaskReason": PVC_REGIONAL_MASK}


def _sink(name: str, base: Path, **fields) -> pe.Node:
    return pe.Node(
        DerivativesDataSink(base_directory=str(base), **fields),
        name=name,
        run_without_submitting=True,
        overwrite=True,
    )


#: Where the correction ran, by path (the sidecar of every pvc- table says which).
PVC_SPACE = {
    "pet": "the subject's PET grid, with the template labels pulled onto it through the "
    "inverse of the PET-to-T1w and T1w-to-template registrations; label values painted back on "
    "the template labels for these tables",
    "template": "the template-space SUVR image with the template labels (MR-less path: the "
    "PET-to-template transform has no inverse to pull labels onto the PET)",
}
#: Why PVC tables keep the template's labels (``--regional-mask template``, or MR-less).
PVC_REGIONAL_MASK = (
    "the correction's label image is the template's DK atlas with its reference mask (no T1w "
    "segmentation on this path, or --regional-mask template)"
)
#: How PVC follows the subject with ``--regional-mask subject-gm`` on the MR-based path.
PVC_SUBJECT_GM = (
    "the correction's label image follows the subject's own tissues: cortex wherever the "
    "subject's grey matter probability (Atropos, on the T1w) is at least GreyMatterThreshold, "
    "named by the nearest template cortical label, white matter likewise, and as reference the "
    "subject's grey matter of the template reference mask (the SUVR's subject-gm reference "
    "without its margin from the brain's edge, whose spill-over the "
    "correction models); the tables read the corrected values over the subject's grey matter"
)
#: ``--pvc-regions`` on the MR-based subject-gm path (sidecar ``PVCRegions``).
PVC_HARD = "hard: each voxel of the label image belongs to one region"
PVC_SOFT = (
    "soft: each brain voxel is shared between the nearest grey-matter label, the nearest "
    "white-matter label and CSF by the T1w's tissue fractions (a mixel model fitted to the "
    "brain's intensity histogram), pulled onto the PET grid"
)
#: How PVC tables are referenced (the sidecar says it, since the PVC literature does both).
REFERENCE_RENORMALISATION = (
    "the corrected image was divided by its own mean over the reference region, which is a "
    "region of its own in the correction, so the reference row reads 1"
)


def _add_braak_stage(workflow, inputnode, sinks, plan: ScanPlan, meta):
    """Per-scan Braak stage from fixed published thresholds (:mod:`taupet_bids.staging`)."""
    stage_wf = init_braak_stage_wf(
        plan.atlases, plan.pvc_methods, plan.tracer, plan.reference_region,
        plan.braak_uncorrected,
    )  # fmt: skip
    sink = _sink(
        "ds_braakstage", plan.staging_dir, space=templates.TEMPLATE, segmentation="Braak",
        label=plan.reference_region, suffix="braakstage", extension=".tsv",
        **staging.stage_table_sidecar(plan.braak_uncorrected), **meta,
    )  # fmt: skip
    fields = [("tables", "inputnode.tables")]
    if plan.pvc_methods:
        fields.append(("pvc_tables", "inputnode.pvc_tables"))
    workflow.connect([
        (inputnode, stage_wf, fields),
        (inputnode, sink, [("pet_source", "source_file")]),
        (stage_wf, sink, [("outputnode.stage_table", "in_file")]),
    ])  # fmt: skip
    sinks["braakstage"] = sink


def _add_mr_based_sinks(workflow, inputnode, sinks, plan: ScanPlan):
    """T1w derivatives and the PET->T1w and T1w->template transforms of the MR-based path."""
    staging_dir = plan.staging_dir
    t1w_sources = {"Sources": [_bids_uri(plan.t1w, plan.bids_dir)]}
    space = templates.TEMPLATE
    sinks.update({
        "pet2t1w_xfm": _sink(
            "ds_pet2t1w",
            staging_dir,
            suffix="xfm",
            mode="image",
            **{"from": "pet", "to": "T1w"},
        ),
        "t1w_preproc": _sink(
            "ds_t1w_preproc",
            staging_dir,
            desc="preproc",
            suffix="T1w",
            compress=True,
            SkullStripped=False,
            Description="T1w after N4 bias-field correction",
            **t1w_sources,
        ),
        "t1w_mask": _sink(
            "ds_t1w_mask",
            staging_dir,
            desc="brain",
            suffix="mask",
            compress=True,
            Type="Brain",
            Description="brain mask from the template's, warped to the T1w",
            **t1w_sources,
        ),
        "t1w2std_warp": _sink(
            "ds_t1w2std_warp", staging_dir, suffix="xfm", mode="image", desc="warp", compress=True,
            **{"from": "T1w", "to": space},
        ),
        "t1w2std_affine": _sink(
            "ds_t1w2std_affine", staging_dir, suffix="xfm", mode="image", desc="affine",
            **{"from": "T1w", "to": space},
        ),
    })  # fmt: skip
    # ANTs order: the displacement field first, the affine second.
    split_xfm = pe.Node(
        niu.Split(splits=[1, 1], squeeze=True), name="split_t1w2std", run_without_submitting=True
    )
    workflow.connect([
        (inputnode, split_xfm, [("t1w2std_xfm", "inlist")]),
        (split_xfm, sinks["t1w2std_warp"], [("out1", "in_file")]),
        (split_xfm, sinks["t1w2std_affine"], [("out2", "in_file")]),
    ])  # fmt: skip


def _add_mr_less_sinks(workflow, inputnode, sinks, plan: ScanPlan):
    """The PET->template transform of the MR-less path: one file for either method.

    The network (refined or not) writes an ITK displacement field (``.nii.gz``), the ANTs
    baseline an affine (``.mat``); both map template points to PET points, as ANTs expects.
    """
    method = plan.normalisation
    sinks["pet2std_xfm"] = _sink(
        "ds_pet2std", plan.staging_dir, suffix="xfm", mode="image", compress=method != "ants",
        Method=quantification.NORMALISATION_NAMES[method],
        **{"from": "pet", "to": templates.TEMPLATE},
    )  # fmt: skip


def _classification_sinks(plan: ScanPlan, sources: dict) -> dict[str, pe.Node]:
    """``--classify``: the prediction JSON as the interface wrote it (P(AD), label, threshold,
    model name, version and sha256, top regions), the occlusion and attribution maps and their
    regional tables, whose sidecars name the model too."""
    # imported here: the classifier's bundle module loads PyTorch, which a run without
    # --classify (and every worker forked from it) should not pay for
    from taupet_bids.classification.bundle import read_card

    model = read_card(plan.classifier_bundle).sidecar()
    return {
        "classification": _sink(
            "ds_classification", plan.staging_dir, desc="ADvsCN", suffix="classification",
            extension=".json",
        ),
        **_classifier_map_sinks(
            plan, "occlusion", "probability",
            "occlusion sensitivity of the AD-vs-CN classifier: P(AD) of the scan minus P(AD) "
            "with the 12 mm block around each voxel set to SUVR 1.0 (positive: the uptake there "
            "raised P(AD)); computed on the template-space SUVR image",
            OCCLUSION_COLUMNS, {**model, **sources},
        ),
        **_classifier_map_sinks(
            plan, "attribution", "log-odds",
            "integrated-gradients attribution of the AD-vs-CN classifier: each 4 mm voxel's "
            "contribution to the AD log-odds, logit(AD) - logit(CN), measured from the template "
            "brain at SUVR 1.0 (positive: the uptake there raised the odds of AD; the voxels add "
            "up to the scan's log-odds minus the baseline's); computed on the template-space "
            "SUVR image",
            ATTRIBUTION_COLUMNS, {**model, **sources},
        ),
    }  # fmt: skip


def _classifier_map_sinks(
    plan: ScanPlan, desc: str, units: str, description: str, columns: dict, sidecar: dict
) -> dict[str, pe.Node]:
    """One classifier map (``desc-<desc>_map``) and its regional table (``desc-<desc>_regions``),
    keyed ``<desc>_map`` and ``<desc>_regions``; ``sidecar``: the model and sources."""
    space = {"space": templates.TEMPLATE, "resolution": naming.RESOLUTION}
    return {
        f"{desc}_map": _sink(
            f"ds_{desc}_map", plan.staging_dir, **space, desc=desc, suffix="map",
            compress=True, Units=units, Description=description, **sidecar,
        ),
        f"{desc}_regions": _sink(
            f"ds_{desc}_regions", plan.staging_dir, **space, desc=desc, suffix="regions",
            extension=".tsv", Columns=columns,
            Description=f"the {desc} map summarised per bilateral DK grey-matter region and "
            "Braak stage, ranked within each atlas",
            **sidecar,
        ),
    }  # fmt: skip


#: What the harmonised image is, in its sidecar and its tables'.
HARMONIZED_DESCRIPTION = (
    "SUVR corrected for MR-based attenuation correction by the PET-MR to PET-CT harmoniser "
    "(--harmonize): the measured template-space SUVR times exp(correction map); the measured "
    "SUVR (desc-suvr) is unchanged beside it"
)


def _harmonization_decision(plan: ScanPlan) -> dict:
    """Fields for the measured SUVR's sidecar: whether ``--harmonize`` harmonised this scan."""
    if not plan.harmonization_reason or plan.harmonization_reason == "--harmonize none":
        return {}
    return {"Harmonized": plan.harmonize, "HarmonizationReason": plan.harmonization_reason}


def _add_harmonization_sinks(workflow, inputnode, sinks, plan: ScanPlan, fields: dict) -> None:
    """``--harmonize``: the harmonised SUVR, the correction map and one table per atlas, each
    with the harmoniser's record (model, anatomy, reason) in its sidecar."""
    space = {"space": templates.TEMPLATE, "resolution": naming.RESOLUTION}
    sinks["harmonized_suvr"] = _sink(
        "ds_harmonized_suvr", plan.staging_dir, **space, desc="harmonized", suffix="pet",
        compress=True, **fields["suvr"],
    )  # fmt: skip
    sinks["correction_map"] = _sink(
        "ds_harmonization_map", plan.staging_dir, **space, desc="harmonization", suffix="map",
        compress=True, Units="log-ratio",
        Description="the harmoniser's correction: log(harmonised SUVR / measured SUVR)",
        **fields["sources"],
    )  # fmt: skip
    split = pe.Node(
        niu.Split(splits=[1] * len(plan.atlases), squeeze=True),
        name="split_harmonized_tables", run_without_submitting=True,
    )  # fmt: skip
    workflow.connect([(inputnode, split, [("harmonized_tables", "inlist")])])
    for field in ("harmonized_suvr", "correction_map"):
        workflow.connect([(inputnode, sinks[field], [("harmonization_meta", "meta_dict")])])
    for position, atlas in enumerate(plan.atlases, start=1):
        sink = _sink(
            f"ds_table_{atlas}_harmonized", plan.staging_dir, space=templates.TEMPLATE,
            segmentation=atlas, label=plan.reference_region, desc="harmonized", suffix="suvr",
            extension=".tsv", Columns=STAT_COLUMN_DESCRIPTIONS,
            ReferenceRegion=plan.reference_region, Description=HARMONIZED_DESCRIPTION,
            RegionalMask="template", **fields["table"],
        )  # fmt: skip
        workflow.connect([
            (inputnode, sink, [("harmonization_meta", "meta_dict")]),
            (split, sink, [(f"out{position}", "in_file")]),
        ])  # fmt: skip
        sinks[f"table_{atlas}_harmonized"] = sink


def init_outputs_wf(plan: ScanPlan, name: str = "outputs_wf") -> pe.Workflow:
    """Write every derivative of one scan, committing them only when all were written."""
    checked, staging_dir, atlases = plan.checked, plan.staging_dir, plan.atlases
    workflow = pe.Workflow(name=name)
    pet_sources = {"Sources": [_bids_uri(plan.pet, plan.bids_dir)]}
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["pet_source", "t1w_source", *ANAT_FIELDS, *PET_FIELDS]),
        name="inputnode",
    )
    pet_meta = _pet_metadata(checked)
    resolution_meta = _resolution_meta(plan)
    space = templates.TEMPLATE
    sinks = {
        "pet_average": _sink(
            "ds_pet_preproc",
            staging_dir,
            desc="preproc",
            suffix="pet",
            compress=True,
            SkullStripped=False,
            Units=plan.units,
            **_units_note(plan),
            **pet_meta,
            **resolution_meta,
            **pet_sources,
        ),
        "suvr_std": _sink(
            "ds_suvr",
            staging_dir,
            space=space,
            resolution=naming.RESOLUTION,
            desc="suvr",
            suffix="pet",
            compress=True,
            **_suvr_metadata(checked),
            **resolution_meta,
            **pet_sources,
            **_harmonization_decision(plan),
        ),
        "motion_params": _sink(
            "ds_motion",
            staging_dir,
            desc="motion",
            suffix="timeseries",
            extension=".tsv",
            Description="rigid inter-frame motion of the selected frames, relative to their "
            "duration-weighted mean; translations in mm, rotations in degrees",
            **pet_sources,
        ),
    }
    sinks["qc_json"] = _sink("ds_qc", staging_dir, suffix="qc", extension=".json")
    for key in reportlets.figure_keys(plan):
        sinks[f"figure_{key}"] = _sink(
            f"ds_figure_{key}", staging_dir, datatype="figures", desc=key, suffix="pet"
        )
    if plan.classify:
        sinks.update(_classification_sinks(plan, pet_sources))
    if plan.harmonize:
        _add_harmonization_sinks(workflow, inputnode, sinks, plan, {
            "suvr": {**_suvr_metadata(checked), **resolution_meta, **pet_sources,
                     "Description": HARMONIZED_DESCRIPTION},
            "table": {**pet_meta, **resolution_meta, **pet_sources},
            "sources": pet_sources,
        })  # fmt: skip
    if plan.mr_less:
        _add_mr_less_sinks(workflow, inputnode, sinks, plan)
    else:
        _add_mr_based_sinks(workflow, inputnode, sinks, plan)
    reference_meta = pe.Node(
        niu.Function(function=_reference_meta, output_names=["meta"]),
        name="reference_meta",
        run_without_submitting=True,
    )
    reference_meta.inputs.units = plan.units
    workflow.connect([
        (inputnode, reference_meta, [
            ("reference_value", "value"), ("normalisation", "normalisation"),
            ("reference_mask", "mask"),
        ]),
        (reference_meta, sinks["suvr_std"], [("meta", "meta_dict")]),
    ])  # fmt: skip
    for field, sink in sinks.items():
        source = "t1w_source" if field.startswith("t1w") else "pet_source"
        workflow.connect([(inputnode, sink, [(source, "source_file")])])
        if field in ANAT_FIELDS or field in PET_FIELDS:
            workflow.connect([(inputnode, sink, [(field, "in_file")])])

    select_tables = pe.Node(
        niu.Split(splits=[1] * len(atlases), squeeze=True),
        name="split_tables",
        run_without_submitting=True,
    )
    workflow.connect([(inputnode, select_tables, [("tables", "inlist")])])
    if plan.subject_gm:
        select_meta = pe.Node(
            niu.Split(splits=[1] * len(atlases), squeeze=True),
            name="split_table_meta",
            run_without_submitting=True,
        )
        workflow.connect([(inputnode, select_meta, [("table_meta", "inlist")])])
    for position, atlas in enumerate(atlases, start=1):
        sink = _sink(
            f"ds_table_{atlas}",
            staging_dir,
            space=space,
            segmentation=atlas,
            label=checked.reference_region,
            suffix="suvr",
            extension=".tsv",
            Columns=STAT_COLUMN_DESCRIPTIONS,
            ReferenceRegion=checked.reference_region,
            **({} if plan.subject_gm else _regional_mask_meta(plan)),
            **pet_meta,
            **resolution_meta,
            **pet_sources,
        )
        workflow.connect([
            (inputnode, sink, [("pet_source", "source_file")]),
            (select_tables, sink, [(f"out{position}", "in_file")]),
        ])  # fmt: skip
        if plan.subject_gm:
            workflow.connect([(select_meta, sink, [(f"out{position}", "meta_dict")])])
        sinks[f"table_{atlas}"] = sink

    if plan.pvc_methods:
        pairs = [(method, atlas) for method in plan.pvc_methods for atlas in atlases]
        split_pvc = pe.Node(
            niu.Split(splits=[1] * len(pairs), squeeze=True),
            name="split_pvc_tables",
            run_without_submitting=True,
        )
        workflow.connect([(inputnode, split_pvc, [("pvc_tables", "inlist")])])
        for position, (method, atlas) in enumerate(pairs, start=1):
            sink = _sink(
                f"ds_table_{atlas}_pvc_{method}", staging_dir, space=space, segmentation=atlas,
                label=checked.reference_region, pvc=method.upper(), suffix="suvr",
                extension=".tsv", Columns=STAT_COLUMN_DESCRIPTIONS,
                ReferenceRegion=checked.reference_region,
                PartialVolumeCorrection=PVC_NAMES[method], PSFFWHM=plan.pvc_fwhm_mm,
                PSFFWHMUnits="mm", PSFFWHMSource=plan.pvc_fwhm_source,
                ReferenceRenormalisation=REFERENCE_RENORMALISATION,
                PVCSpace=PVC_SPACE["template" if plan.mr_less else "pet"],
                **_pvc_regional_mask_meta(plan),
                **pet_meta, **resolution_meta, **pet_sources,
            )  # fmt: skip
            workflow.connect([
                (inputnode, sink, [("pet_source", "source_file")]),
                (split_pvc, sink, [(f"out{position}", "in_file")]),
            ])  # fmt: skip
            sinks[f"table_{atlas}_pvc_{method}"] = sink
    if "Braak" in atlases:
        _add_braak_stage(workflow, inputnode, sinks, plan, {**pet_meta, **pet_sources})
    if plan.write_centaurz:
        sink = _sink(
            "ds_centaurz", staging_dir, space=space, label=centaurz.REFERENCE_REGION,
            suffix="centaurz", extension=".tsv", Columns=centaurz.COLUMN_DESCRIPTIONS, **pet_meta,
            **pet_sources,
        )  # fmt: skip
        workflow.connect([
            (inputnode, sink, [("pet_source", "source_file"), ("centaurz", "in_file")]),
        ])  # fmt: skip
        sinks["centaurz"] = sink

    gather = pe.Node(niu.Merge(len(sinks)), name="gather_sinks", run_without_submitting=True)
    for position, sink in enumerate(sinks.values(), start=1):
        workflow.connect([(sink, gather, [("out_file", f"in{position}")])])
    commit = pe.Node(
        CommitDerivatives(
            staging_dir=str(staging_dir), output_dir=str(plan.output_dir), marker=str(plan.marker)
        ),
        name="commit",
        run_without_submitting=True,
        overwrite=True,
    )
    workflow.connect([(gather, commit, [("out", "staged_files")])])
    return workflow
