"""The FDG -> tau Dense-U-Net and the T1w -> TSPO separable attention U-Net: shapes, the bundle
weight layout, and their bundle configs run by MONAI's ConfigWorkflow as the product runs them.

No training and no pipeline path exist for these two yet (docs/synthesis.md): the bundles here
hold initial weights, so only the wiring is checked, not what they predict.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow

from taupet_bids.models.bundle import CONFIG, METADATA, state_by_child
from taupet_bids.synthesis import inference
from taupet_bids.synthesis.bundle import CONFIGS, load_synthesiser
from taupet_bids.synthesis.networks import TASKS, DenseUNet3D, SeparableAttentionUNet3D
from taupet_bids.training import engine
from tests.synthesis_cohort import write_cohort

TINY = {
    "tau-from-fdg": (DenseUNet3D, {"features": [4, 8], "growth": 4, "layers": 1}),
    "tspo-from-t1w": (SeparableAttentionUNet3D, {"features": [4, 8], "heads_channels": 4}),
}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, templateflow_home) -> Path:
    return write_cohort(tmp_path_factory.mktemp("cohort"), n=1)


def untrained_bundle(task: str, out: Path) -> Path:
    """A bundle of the tiny network of ``task`` with its initial weights (seed 3)."""
    make, architecture = TINY[task]
    torch.manual_seed(3)
    weights = out.with_name(f"{out.name}-weights.pt")
    torch.save(state_by_child(make(**architecture)), weights)
    spec = TASKS[task]
    metadata = {
        "version": "0.0.0-untrained",
        "name": f"untrained tiny {task}",
        "taupet_bids": {
            "architecture": architecture, "task": task, "source": spec.source,
            "desc": spec.desc, "target": {"tracer": "X", "reference_region": "InfCerebGrey"},
        },
    }  # fmt: skip
    return engine.write_bundle(out, weights, metadata, lambda _: "untrained\n", CONFIGS[task])


@pytest.mark.parametrize("make", [DenseUNet3D, SeparableAttentionUNet3D])
def test_the_networks_keep_the_grid_and_store_weights_by_child(make):
    network = make()
    out = network(torch.rand(2, 1, 48, 56, 48))
    assert out.shape == (2, 1, 48, 56, 48)
    assert set(state_by_child(network)) == {name for name, _ in network.named_children()}


@pytest.mark.parametrize("task", sorted(TINY))
def test_monai_runs_the_bundle_config_as_the_product_does(task, cohort, tmp_path):
    bundle = untrained_bundle(task, tmp_path / "bundle")
    source = "desc-preproc_T1w" if TASKS[task].source == "T1w" else "desc-suvr_pet"
    input_file = next(cohort.rglob(f"*{source}.nii.gz"))
    workflow = ConfigWorkflow(
        config_file=str(bundle / CONFIG), meta_file=str(bundle / METADATA), workflow_type=None,
        logging_file=False, bundle_root=str(bundle), input_file=str(input_file),
        output_dir=str(tmp_path / "runner"),
    )  # fmt: skip
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    ours = inference.synthesise(load_synthesiser(bundle), input_file, tmp_path / "product")
    assert f"desc-{TASKS[task].desc}_pet" in ours.image.name
    theirs = np.asarray(nib.load(tmp_path / "runner" / ours.image.name).dataobj)
    assert np.abs(theirs - np.asarray(nib.load(ours.image).dataobj)).max() < 1e-5
