"""Every entity of a scan's input files (task-, acq-, rec-, run-, ses-) is kept in every name.

A PET named ``sub-01_ses-01_task-rest_trc-FTP_rec-acdyn_run-2_pet.nii.gz`` (BIDS order: sub,
ses, task, trc, rec, run) gives derivatives that all start with that stem; the T1w's derivatives
start with the T1w's own stem (``sub-01_ses-01_acq-mprage_run-1``). Two scans differing only by
task- or run- never share a file or a node name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from taupet_bids import naming
from taupet_bids.bids import check_pet_scan
from taupet_bids.config import RunConfig
from taupet_bids.errors import InputError
from taupet_bids.plan import plan_scan
from tests.test_bids import sidecar, write_scan

PET_STEM = "sub-01_ses-01_task-rest_trc-FTP_rec-acdyn_run-2"
T1W_STEM = "sub-01_ses-01_acq-mprage_run-1"


@pytest.fixture(autouse=True)
def _templateflow(templateflow_home):
    """Workflows import TemplateFlow: its home must be set before the first import."""


def _bids(tmp_path: Path, pet_stem: str = PET_STEM, t1w: bool = True):
    """A checked scan laid out as in a BIDS folder (the sinks read entities from the path)."""
    bids = tmp_path / "bids"
    scan = write_scan(bids / "sub-01" / "ses-01" / "pet", sidecar(), name=f"{pet_stem}_pet")
    scan = dataclasses.replace(scan, session="01", entities=naming.entities(pet_stem))
    if t1w:
        anat = bids / "sub-01" / "ses-01" / "anat" / f"{T1W_STEM}_T1w.nii.gz"
        anat.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), anat)
        scan = dataclasses.replace(scan, t1w=anat)
    return check_pet_scan(scan)


def _config(tmp_path: Path, **options) -> RunConfig:
    return RunConfig(
        bids_dir=tmp_path / "bids", output_dir=tmp_path / "out", analysis_level="participant",
        work_dir=tmp_path / "work", **options,
    )  # fmt: skip


# ----------------------------------------------------------------------------------- naming


@pytest.mark.parametrize(
    "stem",
    [
        "sub-01",
        "sub-01_ses-01_task-rest_trc-FTP_rec-acdyn_run-2",
        "sub-01_task-rest_trc-MK6240",
        "sub-01_ses-M000_trc-X_run-1",
        "sub-01_ses-01_acq-mprage_rec-norm_run-3",
    ],
)
def test_stems_round_trip_through_every_name(stem: str) -> None:
    for name in (f"{stem}_pet.nii.gz", f"{stem}_{naming.SPACE}_desc-suvr_pet.nii.gz",
                 f"{stem}_space-MNI152NLin6Asym_seg-DK_label-InfCerebGrey_pvc-GTM_suvr.tsv",
                 f"{stem}_from-pet_to-T1w_mode-image_xfm.mat", f"{stem}_qc.json",
                 f"{stem}_desc-coreg_pet.png", f"{stem}_desc-motion_timeseries.tsv"):  # fmt: skip
        assert naming.scan_stem(name) == stem
    out = Path("/out")
    for path in (naming.suvr_image(out, stem), naming.preproc_pet(out, stem),
                 naming.motion_table(out, stem), naming.qc_json(out, stem)):  # fmt: skip
        assert naming.scan_stem(path.name) == stem
        assert path.parent == naming.pet_folder(out, stem)
    assert naming.unknown_entities(f"{stem}_pet.nii.gz") == []


def test_entities_are_in_bids_order() -> None:
    """The order of the BIDS specification's entity table (sub, ses, task, acq, ce, trc, rec,
    run, echo, part): a derivative's stem is its source's stem."""
    assert list(naming.SOURCE_ENTITIES) == [
        "sub", "ses", "task", "acq", "ce", "trc", "rec", "run", "echo", "part",
    ]  # fmt: skip
    assert list(naming.SCAN_ENTITIES) == ["sub", "ses", "task", "trc", "rec", "run"]
    assert naming.source_pattern().startswith("sub-{subject}[_ses-{session}][_task-{task}]")
    assert naming.unknown_entities("sub-01_foo-bar_trc-X_pet.nii.gz") == ["foo"]


def test_a_scan_with_an_entity_names_cannot_keep_is_refused(tmp_path) -> None:
    checked = _bids(tmp_path, "sub-01_ses-01_trc-FTP_foo-bar")
    with pytest.raises(InputError, match="foo") as info:
        plan_scan(_config(tmp_path), checked)
    assert "sub-01_ses-01_trc-FTP_foo-bar_pet.nii.gz" in str(info.value)


def test_a_t1w_with_an_entity_names_cannot_keep_is_refused(tmp_path) -> None:
    checked = _bids(tmp_path)
    t1w = checked.scan.t1w.with_name("sub-01_ses-01_chunk-1_T1w.nii.gz")
    checked.scan.t1w.rename(t1w)
    checked = dataclasses.replace(checked, scan=dataclasses.replace(checked.scan, t1w=t1w))
    with pytest.raises(InputError, match="chunk"):
        plan_scan(_config(tmp_path), checked)


# ------------------------------------------------------------------------------ plan, graph


def test_scans_differing_by_task_or_run_do_not_collide(tmp_path) -> None:
    from taupet_bids.workflows.base import init_participant_wf

    stems = ["sub-01_ses-01_task-rest_trc-FTP", "sub-01_ses-01_task-memory_trc-FTP",
             "sub-01_ses-01_task-rest_trc-FTP_run-2"]  # fmt: skip
    plans = [plan_scan(_config(tmp_path), _bids(tmp_path, stem)) for stem in stems]
    assert [plan.stem for plan in plans] == stems
    for attribute in ("name", "staging_dir", "marker"):
        assert len({getattr(plan, attribute) for plan in plans}) == len(plans), attribute
    graph = init_participant_wf(plans, tmp_path / "work")
    top = {name.split(".")[0] for name in graph.list_node_names()}
    assert {name for name in top if name.startswith("scan_")} == {
        f"scan_{plan.name}" for plan in plans
    }
    # the session's one T1w is registered once, for all three scans
    assert {name for name in top if not name.startswith("scan_")} == {
        "anat_sub_01_ses_01_acq_mprage_run_1_T1w_gm"
    }
    fed = {
        target.name for source, target in graph._graph.edges() if source.name.startswith("anat_")
    }
    assert fed == {f"scan_{plan.name}" for plan in plans}


def _input_file(folder: Path, sink) -> Path:
    """A small file of the kind the sink receives (its extension decides the output's)."""
    inputs = sink.inputs
    if inputs.datatype == "figures":
        path = folder / "figure.svg"
        path.write_text("<svg/>")
    elif isinstance(inputs.extension, str) and inputs.extension in (".tsv", ".json"):
        path = folder / f"file{inputs.extension}"
        path.write_text("a\tb\n1\t2\n" if inputs.extension == ".tsv" else "{}")
    elif inputs.suffix == "xfm" and not inputs.compress:
        path = folder / "affine.mat"
        path.write_bytes(b"affine")
    else:
        path = folder / "image.nii.gz"
        nib.save(nib.Nifti1Image(np.ones((3, 3, 3), np.float32), np.eye(4)), path)
    return path


def _sinks(workflow) -> dict[str, str]:
    """Every data sink of the outputs workflow and the input its source_file comes from."""
    from taupet_bids.interfaces.derivatives import DerivativesDataSink

    outputs = workflow.get_node("outputs_wf")
    sources = {}
    for _, target, data in outputs._graph.edges(data=True):
        for field, port in data["connect"]:
            if port == "source_file" and isinstance(target.interface, DerivativesDataSink):
                sources[target.name] = field
    return {name: sources[name] for name in sorted(sources)}


@pytest.mark.parametrize("mr_less", [False, True])
def test_every_sink_writes_the_source_entities(tmp_path, mr_less: bool) -> None:
    """Run each sink of a task- scan (and its acq- T1w) as the graph would, and read the names."""
    from taupet_bids.workflows.base import init_scan_wf

    options = {"mr_less": "always"} if mr_less else {}
    plan = plan_scan(_config(tmp_path, pvc=["gtm"], pvc_fwhm=6.0, **options), _bids(tmp_path))
    workflow = init_scan_wf(plan)
    sinks = _sinks(workflow)
    assert {"ds_pet_preproc", "ds_suvr", "ds_motion", "ds_qc", "ds_table_DK"} <= set(sinks)
    assert any(name.startswith("ds_figure_") for name in sinks)
    assert ("ds_pet2std" in sinks) == mr_less and ("ds_t1w_preproc" in sinks) != mr_less
    sources = {"pet_source": plan.pet, "t1w_source": plan.t1w}
    written = []
    for name, source in sinks.items():
        node = workflow.get_node(f"outputs_wf.{name}")
        folder = tmp_path / "in" / name
        folder.mkdir(parents=True)
        sink = node.interface
        sink.inputs.source_file = str(sources[source])
        sink.inputs.in_file = str(_input_file(folder, sink))
        sink.inputs.base_directory = str(tmp_path / "staging")
        result = sink.run(cwd=str(folder))
        out = Path(result.outputs.out_file)
        written.append(out)
        stem = PET_STEM if source == "pet_source" else T1W_STEM
        assert out.name.startswith(f"{stem}_"), (name, out.name)
        assert naming.scan_stem(out.name) == stem, (name, out.name)
        if source == "pet_source":
            assert "task-rest" in out.name and "run-2" in out.name
    assert len(set(written)) == len(written)
    staged = tmp_path / "staging"
    # The names the reports and the group level look up are the ones the sinks wrote.
    lookups = (naming.suvr_image, naming.preproc_pet, naming.motion_table, naming.qc_json)
    for lookup in lookups:
        assert lookup(staged, PET_STEM) in written, lookup
    pet_dir = naming.pet_folder(staged, PET_STEM)
    tables = sorted(pet_dir.glob(f"{PET_STEM}_space-*_seg-*_suvr.tsv"))
    assert {naming.entities(t.name).get("pvc") for t in tables} == {None, "GTM"}


def test_a_sink_refuses_to_drop_an_entity(tmp_path) -> None:
    """An entity the patterns do not know would silently vanish: the sink fails instead."""
    from taupet_bids.interfaces.derivatives import DerivativesDataSink

    source = tmp_path / "sub-01" / "pet" / "sub-01_foo-bar_trc-X_pet.nii.gz"
    source.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.ones((3, 3, 3), np.float32), np.eye(4)), source)
    sink = DerivativesDataSink(
        base_directory=str(tmp_path / "out"), source_file=str(source), in_file=str(source),
        desc="preproc", suffix="pet",
    )  # fmt: skip
    with pytest.raises(ValueError, match="does not carry every entity"):
        sink.run(cwd=str(tmp_path))


def test_the_t1w_transforms_are_found_under_the_t1ws_own_name(tmp_path) -> None:
    """A consumer holding the PET's stem finds the T1w's transforms (acq-, run- in their name)."""
    anat = tmp_path / "sub-01" / "ses-01" / "anat"
    anat.mkdir(parents=True)
    tail = "from-T1w_to-MNI152NLin6Asym_mode-image_desc"
    plain = (f"sub-01_ses-01_{tail}-warp_xfm.nii.gz", f"sub-01_ses-01_{tail}-affine_xfm.mat")
    # Nothing there: the names without T1w entities, for the caller's message.
    assert naming.t1w_to_template(anat, PET_STEM) == tuple(anat / name for name in plain)
    for name in (f"{T1W_STEM}_{tail}-warp_xfm.nii.gz", f"{T1W_STEM}_{tail}-affine_xfm.mat"):
        (anat / name).touch()
    warp, affine = naming.t1w_to_template(anat, PET_STEM)
    assert (warp.name, affine.name) == (f"{T1W_STEM}_{tail}-warp_xfm.nii.gz",
                                        f"{T1W_STEM}_{tail}-affine_xfm.mat")  # fmt: skip
    (anat / f"sub-01_ses-01_run-2_{tail}-warp_xfm.nii.gz").touch()
    with pytest.raises(ValueError, match="several"):
        naming.t1w_to_template(anat, PET_STEM)


def test_the_group_level_keeps_one_row_per_scan_with_its_entities(tmp_path) -> None:
    """Scans differing only by task- or run- are separate rows, each entity in its column."""
    import json

    import pandas as pd

    from taupet_bids import group
    from taupet_bids.core.qc import scan_qc
    from tests.test_group import REGIONS

    stems = ["sub-001_ses-01_task-rest_trc-X", "sub-001_ses-01_task-memory_trc-X",
             "sub-001_ses-01_task-rest_trc-X_rec-acdyn_run-2"]  # fmt: skip
    out = tmp_path / "out"
    for number, stem in enumerate(stems):
        folder = naming.pet_folder(out, stem)
        folder.mkdir(parents=True, exist_ok=True)
        for atlas, regions in REGIONS.items():
            rows = [*regions, "reference-InfCerebGrey"]
            values = [1.0 + number] * len(regions) + [1.0]
            table = pd.DataFrame({"region": rows, "suvr_mean": values, "suvr_median": values,
                                  "suvr_sd": 0.1, "volume_ml": 1.0, "n_voxels": 10})  # fmt: skip
            name = f"{stem}_space-MNI152NLin6Asym_seg-{atlas}_label-InfCerebGrey_suvr.tsv"
            table.to_csv(folder / name, sep="\t", index=False)
        motion = naming.motion_table(out, stem)
        columns = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
        frames = {"frame": [0, 1], **dict.fromkeys(columns, 0.0), "framewise_displacement": [0, 1]}
        pd.DataFrame(frames).to_csv(motion, sep="\t", index=False)
        record = scan_qc(motion, {"Method": "MR-based"}, coreg_nmi=1.1, t1w2std_correlation=0.9)
        naming.qc_json(out, stem).write_text(json.dumps(record))
    wide = group.wide_table(group.long_table(out)).set_index("scan")
    assert sorted(wide.index) == sorted(stems)
    assert wide.loc[stems[0], "task"] == "rest" and wide.loc[stems[1], "task"] == "memory"
    assert (wide.loc[stems[2], "rec"], str(wide.loc[stems[2], "run"])) == ("acdyn", "2")
    assert wide.loc[stems[1], "MetaTemporal_metatemporal"] == 2.0
    qc = group.qc_table(out, wide.reset_index()).set_index("scan")
    assert sorted(qc.index) == sorted(stems) and qc["coreg_nmi"].tolist() == [1.1] * 3
