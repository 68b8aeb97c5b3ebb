"""``--synthesize`` options and plans: refusals before any scan runs, T1w-only sessions
planned, sessions without the input logged and skipped while the others go on."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import torch

from taupet_bids.boilerplate import methods_text
from taupet_bids.cli.parser import parse_args
from taupet_bids.cli.run import select_synthesis
from taupet_bids.reports.synthesis import measured_for
from taupet_bids.training.synthesis import TrainConfig, train
from taupet_bids.training.synthesis_card import export_trained_bundle
from tests.synthesis_cohort import tiny_config, write_cohort


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, templateflow_home) -> Path:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("wiring")
    config = tiny_config(root / "train", write_cohort(root / "cohort", n=4), steps=1)
    return export_trained_bundle(config, train(config, log=lambda _: None), root / "bundle")


@pytest.fixture(scope="module")
def tspo_bundle(tmp_path_factory, templateflow_home) -> Path:
    """A one-step TSPO-from-T1w bundle (a tiny separable U-Net)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("wiring_tspo")
    config = TrainConfig(
        root / "train", [write_cohort(root / "cohort", n=3, other=("tspo",))],
        task="tspo-from-t1w", seed=3, steps=1, batch_size=1, checkpoint_every=1,
        features=[4, 4, 8], heads_channels=4,
    )  # fmt: skip
    return export_trained_bundle(config, train(config, log=lambda _: None), root / "bundle")


def _args(tmp_path: Path, *extra) -> list[str]:
    return [str(tmp_path / "bids"), str(tmp_path / "out"), "participant", *map(str, extra)]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--synthesize", "tau-from-fdg", "--synthesis-model", "B"], "add --tracer FDG"),
        (["--synthesize", "tau-from-t1w"], "needs a trained bundle: --synthesis-model"),
        (["--synthesis-model", "B"], "--synthesis-model needs --synthesize"),
        (["--synthesize", "tau-from-t1w", "--synthesis-model", "B"], "is not a synthesis bundle"),
    ],
)
def test_bad_synthesis_options_are_refused_before_any_scan(tmp_path, capsys, extra, message):
    (tmp_path / "B").mkdir()
    extra = [str(tmp_path / "B") if value == "B" else value for value in extra]
    with pytest.raises(SystemExit):
        parse_args(_args(tmp_path, *extra))
    assert message in capsys.readouterr().err


def test_the_parser_offers_every_task_the_package_knows():
    from taupet_bids.cli.parser import SYNTHESIS_TASKS
    from taupet_bids.synthesis.networks import TASKS

    assert set(SYNTHESIS_TASKS) == set(TASKS)


def test_a_bundle_is_matched_to_its_task(tmp_path, bundle):
    config = parse_args(
        _args(tmp_path, "--synthesize", "tau-from-t1w", "--synthesis-model", bundle)
    )
    assert config.synthesize == ("tau-from-t1w",)
    assert config.synthesis_bundle("tau-from-t1w") == bundle.absolute()
    methods = methods_text(config)
    assert "Synthetic tau PET images were predicted" in methods
    assert (
        json.loads((bundle / "configs" / "metadata.json").read_text())["taupet_bids"][
            "model_sha256"
        ]
        in methods
        and "[unet] Ronneberger" in methods
    )


def _bids(root: Path) -> Path:
    bids = root / "bids"
    (bids / "sub-001" / "anat").mkdir(parents=True)
    (bids / "dataset_description.json").write_text(
        json.dumps({"Name": "t", "BIDSVersion": "1.10.0"})
    )
    image = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4))
    nib.save(image, bids / "sub-001" / "anat" / "sub-001_T1w.nii.gz")
    return bids


def test_t1w_only_sessions_are_planned_and_a_pet_without_t1w_is_logged(tmp_path, bundle, caplog):
    _bids(tmp_path)
    config = parse_args(
        _args(tmp_path, "--synthesize", "tau-from-t1w", "--synthesis-model", bundle)
    )
    pet_only = SimpleNamespace(
        t1w=None, pet=Path("sub-003_trc-X_pet.nii.gz"), mr_less=True, name="sub_003_trc_X"
    )
    with caplog.at_level(logging.WARNING, logger="taupet_bids"):
        plans = select_synthesis(config, [pet_only])
    assert [plan.stem for plan in plans] == ["sub-001"]
    assert plans[0].scan_name is None and plans[0].desc == "syntheticFromT1w"
    assert (
        "SYNTHESIS SKIPPED sub-003_trc-X_pet.nii.gz: --synthesize tau-from-t1w needs a T1w"
        in caplog.text
    )


def test_tspo_and_tau_from_t1w_are_planned_side_by_side(tmp_path, bundle, tspo_bundle):
    _bids(tmp_path)
    config = parse_args(
        _args(tmp_path, "--synthesize", "tau-from-t1w", "tspo-from-t1w",
              "--synthesis-model", tspo_bundle, bundle)
    )  # fmt: skip
    assert config.synthesis_bundle("tspo-from-t1w") == tspo_bundle.absolute()
    plans = {plan.task: plan for plan in select_synthesis(config, [])}
    assert set(plans) == {"tau-from-t1w", "tspo-from-t1w"}
    tspo = plans["tspo-from-t1w"]
    assert (tspo.tracer, tspo.reference_region, tspo.desc) == (
        "11CPBR28",
        "WholeCereb",
        "syntheticFromT1w",
    )
    assert (
        tspo.name != plans["tau-from-t1w"].name
        and tspo.staging_dir != plans["tau-from-t1w"].staging_dir
    )
    methods = methods_text(config)
    assert "Synthetic TSPO PET images were predicted" in methods
    assert "Synthetic tau PET images were predicted" in methods


def test_a_synthetic_image_is_drawn_beside_a_measured_scan_of_its_own_target(tmp_path):
    pet = tmp_path / "sub-01" / "pet"
    pet.mkdir(parents=True)
    space = "space-MNI152NLin6Asym_res-2"
    tau = pet / f"sub-01_trc-18FAV1451_{space}_desc-suvr_pet.nii.gz"
    tau.touch()
    tspo = pet / f"sub-01_trc-11CPBR28_{space}_desc-syntheticFromT1w_pet.nii.gz"
    assert measured_for(tspo) is None
    assert measured_for(pet / f"sub-01_trc-AV1451_{space}_desc-syntheticFromT1w_pet.nii.gz") == tau
    measured = pet / f"sub-01_trc-PBR28_{space}_desc-suvr_pet.nii.gz"
    measured.touch()
    assert measured_for(tspo) == measured


@pytest.fixture(scope="module")
def fdg_bundle(tmp_path_factory, templateflow_home) -> Path:
    """A one-step tau-from-FDG bundle (a tiny Dense-U-Net on pons-referenced FDG)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("wiring_fdg")
    config = TrainConfig(
        root / "train", [write_cohort(root / "cohort", n=3, other=("fdg",))],
        task="tau-from-fdg", seed=3, steps=1, batch_size=1, checkpoint_every=1,
        features=[4, 8], growth=2, layers=1,
    )  # fmt: skip
    return export_trained_bundle(config, train(config, log=lambda _: None), root / "bundle")


def _fdg_scan(label: str, reference: str) -> SimpleNamespace:
    stem = f"sub-{label}_trc-18FFDG"
    return SimpleNamespace(
        tracer="FDG", pet=Path(f"/bids/sub-{label}/pet/{stem}_pet.nii.gz"), stem=stem,
        name=f"sub_{label}_trc_18FFDG", reference_region=reference, t1w=None, mr_less=True,
    )  # fmt: skip


def test_tau_from_fdg_is_planned_on_each_fdg_scan_of_its_reference(tmp_path, fdg_bundle, caplog):
    _bids(tmp_path)
    config = parse_args(
        _args(tmp_path, "--tracer", "18FFDG", "--synthesize", "tau-from-fdg",
              "--synthesis-model", fdg_bundle)
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="taupet_bids"):
        plans = select_synthesis(config, [_fdg_scan("01", "Pons"), _fdg_scan("02", "WholeCereb")])
    assert [plan.stem for plan in plans] == ["sub-01_trc-18FFDG"]
    plan = plans[0]
    assert plan.scan_name == "sub_01_trc_18FFDG" and plan.t1w is None
    assert plan.input_pet.name == "sub-01_trc-18FFDG_pet.nii.gz"
    assert (plan.desc, plan.tracer, plan.reference_region) == (
        "syntheticFromFDG",
        "AV1451",
        "InfCerebGrey",
    )
    assert (
        "sub-02_trc-18FFDG_pet.nii.gz: --synthesize tau-from-fdg: its SUVR uses the "
        in (caplog.text)
        and "trained on Pons" in caplog.text
    )
    assert "Dense-U-Net" in methods_text(config)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="taupet_bids"):
        assert select_synthesis(config, []) == []
    assert "found no FDG scan in this run" in caplog.text


def test_the_fdg_synthesis_graph_reads_the_scans_suvr_and_registers_nothing(tmp_path, fdg_bundle):
    from taupet_bids.plan import plan_pet_synthesis
    from taupet_bids.workflows.synthesis import init_synthesis_wf

    _bids(tmp_path)
    config = parse_args(
        _args(tmp_path, "--tracer", "FDG", "--synthesize", "tau-from-fdg",
              "--synthesis-model", fdg_bundle)
    )  # fmt: skip
    scan = _fdg_scan("001", "Pons")
    scan.pet = tmp_path / "bids" / "sub-001" / "pet" / scan.pet.name
    plan = plan_pet_synthesis(config, "tau-from-fdg", scan)
    workflow = init_synthesis_wf(plan, str(tmp_path / "bids"))
    nodes = {node.name for node in workflow._graph.nodes()}
    assert {"inputnode", "bids_name", "synthesise", "stage", "commit"} <= nodes
    assert not {"anat_wf", "t1w_to_template_grid"} & nodes
    named = workflow.get_node("bids_name")
    assert named.inputs.format_string == (
        "sub-001_trc-18FFDG_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz"
    )
    assert workflow.get_node("stage").inputs.source_uri == (
        "bids:raw:sub-001/pet/sub-001_trc-18FFDG_pet.nii.gz"
    )
