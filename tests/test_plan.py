"""One plan per scan: decisions made once, units that tell the truth, graphs built without side
effects."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from taupet_bids.bids import check_pet_scan
from taupet_bids.config import RunConfig
from taupet_bids.errors import InputError
from taupet_bids.plan import plan_scan, pvc_fwhm, reset_scan_folders
from tests.test_bids import sidecar, write_scan


@pytest.fixture(autouse=True)
def _templateflow(templateflow_home):
    """Workflows import TemplateFlow: its home must be set before the first import."""


def _config(tmp_path: Path, **options) -> RunConfig:
    return RunConfig(
        bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="participant",
        work_dir=tmp_path / "work", **options,
    )  # fmt: skip


def _checked(tmp_path: Path, t1w: bool = True, **sidecar_fields):
    scan = write_scan(tmp_path / "pet", sidecar(**sidecar_fields))
    if t1w:
        anat = tmp_path / "anat" / "sub-01_T1w.nii.gz"
        anat.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), anat)
        scan = dataclasses.replace(scan, t1w=anat)
    return check_pet_scan(scan)


def test_plan_holds_every_decision(tmp_path):
    plan = plan_scan(_config(tmp_path, seed=7, omp_nthreads=2), _checked(tmp_path))
    assert plan.stem == "sub-01_trc-FTP" and plan.name == "sub_01_trc_FTP"
    assert plan.normalisation == "mr" and not plan.mr_less
    assert plan.reference_region == "InfCerebGrey" and plan.tracer == "flortaucipir"
    assert plan.centaurz_tracer == "FTP" and plan.write_centaurz
    assert plan.staging_dir == tmp_path / "work" / "staging" / "sub_01_trc_FTP"
    assert plan.marker == tmp_path / "work" / "committed" / "sub_01_trc_FTP.txt"
    assert (plan.seed, plan.omp_nthreads, plan.pvc_fwhm_mm) == (7, 2, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.seed = 1


def test_mr_less_choice(tmp_path):
    with_t1w, without = _checked(tmp_path / "a"), _checked(tmp_path / "b", t1w=False)
    auto = _config(tmp_path)
    assert plan_scan(auto, with_t1w).normalisation == "mr"
    assert plan_scan(auto, without).normalisation == "network+ants"
    always = _config(tmp_path, mr_less="always", mr_less_method="ants")
    assert plan_scan(always, with_t1w).normalisation == "ants"
    with pytest.raises(InputError, match="no T1w.*--mr-less auto"):
        plan_scan(_config(tmp_path, mr_less="never"), without)


def test_centaurz_only_with_dk_tables_and_a_known_conversion(tmp_path):
    checked = _checked(tmp_path)
    assert plan_scan(_config(tmp_path, atlases=("Braak",)), checked).centaurz_tracer is None
    fdg = _checked(tmp_path / "fdg", TracerName="FDG", start_s=30 * 60)
    assert plan_scan(_config(tmp_path), fdg).centaurz_tracer is None


def test_only_tau_and_unknown_tracers_are_judged_against_the_tau_template(tmp_path):
    """FDG's and an amyloid scan's QC node is told not to flag the tau template correlation; a
    tau scan's is."""
    from taupet_bids.workflows.quantification import init_quantification_wf

    tau = plan_scan(_config(tmp_path), _checked(tmp_path / "tau"))
    fdg = plan_scan(_config(tmp_path), _checked(tmp_path / "fdg", TracerName="FDG", start_s=1800))
    amyloid = plan_scan(
        _config(tmp_path), _checked(tmp_path / "fbp", TracerName="[18F]florbetapir", start_s=3000)
    )
    assert amyloid.reference_region == "WholeCereb"
    assert tau.tau_tracer and not fdg.tau_tracer and not amyloid.tau_tracer
    for plan, expected in ((tau, True), (fdg, False), (amyloid, False)):
        node = init_quantification_wf(plan).get_node("normalisation_qc")
        assert node.inputs.tau_tracer is expected


def test_psf_per_scan_from_the_sidecar(tmp_path):
    gauss = _checked(tmp_path, ReconFilterType="Gaussian", ReconFilterSize=4.0)
    assert pvc_fwhm(_config(tmp_path), gauss) is None  # no --pvc
    scanner = _config(tmp_path, pvc=("gtm",), pvc_scanner_fwhm=3.0)
    assert pvc_fwhm(scanner, gauss) == pytest.approx(5.0)
    assert plan_scan(scanner, gauss).pvc_fwhm_mm == pytest.approx(5.0)
    assert pvc_fwhm(_config(tmp_path, pvc=("gtm",), pvc_fwhm=7.5), gauss) == 7.5
    hann = _checked(tmp_path / "hann", ReconFilterType="Hann", ReconFilterSize=5.0)
    with pytest.raises(InputError) as info:
        plan_scan(scanner, hann)
    assert "sub-01_trc-FTP_pet.json" in str(info.value) and "--pvc-fwhm" in str(info.value)


@pytest.mark.parametrize(
    ("units", "scale", "label"),
    [
        ("Bq/mL", 1.0, "Bq/mL"),
        ("kBq/mL", 1e3, "Bq/mL"),
        ("MBq/cc", 1e6, "Bq/mL"),
        ("nCi/mL", 37.0, "Bq/mL"),
        ("SUV", 1.0, "SUV"),
        ("g/mL", 1.0, "g/mL"),
    ],
)
def test_units_are_converted_or_named(tmp_path, units, scale, label):
    """Activity concentrations become Bq/mL; SUV keeps its values and says it is SUV."""
    plan = plan_scan(_config(tmp_path), _checked(tmp_path, Units=units))
    assert (plan.units_scale, plan.units) == (pytest.approx(scale), label)


@pytest.mark.parametrize(("units", "scale"), [("kBq/mL", 1e3), ("Bq/mL", 1.0)])
def test_frames_are_cut_in_the_plan_units(tmp_path, units, scale):
    """The plan's scale reaches the first node, so every later step sees the output units."""
    from taupet_bids.workflows.pet import init_pet_preproc_wf

    plan = plan_scan(_config(tmp_path), _checked(tmp_path, Units=units))
    workflow = init_pet_preproc_wf(plan)
    assert plan.units_scale == scale
    assert workflow.get_node("select_frames").inputs.scale == scale


@pytest.mark.parametrize("units", ["kBq/mL", "SUV"])
def test_sidecars_name_the_units(tmp_path, units):
    """The averaged PET's sidecar and the SUVR's reference value carry the plan's units."""
    from taupet_bids.workflows.outputs import init_outputs_wf

    plan = plan_scan(_config(tmp_path), _checked(tmp_path, Units=units))
    workflow = init_outputs_wf(plan)
    preproc = workflow.get_node("ds_pet_preproc").interface._metadata  # the sidecar's fields
    meta = workflow.get_node("reference_meta").inputs
    assert preproc["Units"] == plan.units == meta.units
    assert units in preproc["UnitsNote"]
    normalisation = tmp_path / "normalisation.json"
    normalisation.write_text(json.dumps({"Method": "x"}))
    from taupet_bids.workflows.outputs import _reference_meta

    assert _reference_meta(2.0, str(normalisation), plan.units)["ReferenceValueUnits"] == (
        "Bq/mL" if units == "kBq/mL" else "SUV"
    )


def test_building_the_graph_touches_no_file(tmp_path):
    """Factories only wire nodes; the staging folder is reset just before the run."""
    from taupet_bids.workflows.base import init_participant_wf

    plan = plan_scan(_config(tmp_path, pvc=("gtm",), pvc_fwhm=6.0), _checked(tmp_path))
    before = sorted(tmp_path.rglob("*"))
    workflow = init_participant_wf([plan], tmp_path / "work")
    assert sorted(tmp_path.rglob("*")) == before
    names = set(workflow.list_node_names())
    assert "scan_sub_01_trc_FTP.reportlets_wf.scan_qc" in names
    assert "scan_sub_01_trc_FTP.outputs_wf.ds_qc" in names
    plan.staging_dir.mkdir(parents=True)
    (plan.staging_dir / "stale.txt").write_text("from an earlier run")
    plan.marker.parent.mkdir(parents=True)
    plan.marker.write_text("old")
    reset_scan_folders(plan)
    assert plan.staging_dir.is_dir() and not any(plan.staging_dir.iterdir())
    assert not plan.marker.exists()
