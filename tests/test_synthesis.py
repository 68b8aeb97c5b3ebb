"""The T1w -> tau synthesis model: preprocessing, tiny training (determinism, resume), and its
bundle through the product's loader and MONAI's runner."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from taupet_bids.errors import InputError
from taupet_bids.models.bundle import CONFIG, METADATA, ModelIntegrityError
from taupet_bids.synthesis import inference, preprocessing
from taupet_bids.synthesis.bundle import InvalidBundle, check_bundle, load_synthesiser
from taupet_bids.training import cli, synthesis_card
from taupet_bids.training.synthesis import train
from taupet_bids.training.synthesis_card import export_trained_bundle, render_card
from tests.synthesis_cohort import TRACER, tiny_config, write_cohort


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, templateflow_home):
    return write_cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def run(cohort, tmp_path_factory):
    torch.set_num_threads(1)
    config = tiny_config(tmp_path_factory.mktemp("run"), cohort)
    metrics = train(config, log=lambda line: None)
    return config, metrics, export_trained_bundle(config, metrics, config.out_dir / "bundle")


def _t1w(cohort):
    return next(cohort.rglob("sub-p7_*desc-preproc_T1w.nii.gz"))


def test_preprocessing_normalises_and_pools_and_refuses_other_grids(cohort, tmp_path):
    image = preprocessing.read_t1w(_t1w(cohort))
    assert image.shape == preprocessing.INPUT_SHAPE
    brain = preprocessing.network_mask()
    assert 0.5 < np.median(image[brain]) < 1.5 and image.max() <= preprocessing.T1W_MAX
    assert (
        image[
            ~preprocessing.downsample(preprocessing.brain_mask().astype(np.float32)).astype(bool)
        ].max()
        == 0
    )
    back = preprocessing.to_template_grid(np.ones(preprocessing.INPUT_SHAPE, np.float32))
    assert back.shape == preprocessing.TEMPLATE_SHAPE
    assert np.allclose(back[preprocessing.brain_mask()], 1.0)
    other = tmp_path / "other.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.float32), np.eye(4)), other)
    with pytest.raises(InputError, match=r"other.nii.gz: not on the MNI152NLin6Asym 2 mm grid"):
        preprocessing.read_t1w(other)


def test_training_is_deterministic_and_resumes_to_the_same_weights(cohort, run, tmp_path):
    config, metrics, _ = run
    assert metrics["scans"] == {"train": 6, "validation": 1, "test": 1}
    assert metrics["test"]["n"] == 1 and "MetaTemporal:metatemporal" in metrics["test"]["regional"]
    first = torch.load(config.out_dir / "model.pt", weights_only=True)
    again = tiny_config(tmp_path / "again", cohort)
    train(again, log=lambda line: None)
    assert _same(first, torch.load(again.out_dir / "model.pt", weights_only=True))
    lines = []

    def stop_at_first_checkpoint(line: str) -> None:
        if "checkpoint: main step 6" in line:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(tiny_config(tmp_path / "resumed", cohort), log=stop_at_first_checkpoint)
    resumed = tiny_config(tmp_path / "resumed", cohort)
    assert train(resumed, log=lines.append)["test"] == metrics["test"]
    assert any("resuming" in line and "step 6" in line for line in lines)
    assert _same(first, torch.load(resumed.out_dir / "model.pt", weights_only=True))
    log = (resumed.out_dir / "training_log.tsv").read_text().splitlines()
    assert len(log) == 1 + config.steps


class _Interrupt(Exception):
    pass


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k][n], b[k][n]) for k in a for n in a[k])


def test_the_bundle_card_metadata_and_checksum(run, tmp_path):
    _, _, bundle = run
    meta = json.loads((bundle / METADATA).read_text())
    assert (bundle / "docs" / "README.md").read_text() == render_card(meta)
    card = check_bundle(bundle, "tau-from-t1w")
    assert card.tracer == TRACER and card.desc == "syntheticFromT1w"
    with pytest.raises(InvalidBundle, match="synthesises tau-from-t1w, not tspo-from-t1w"):
        check_bundle(bundle, "tspo-from-t1w")
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    weights = copy / "models" / "model.pt"
    raw = bytearray(weights.read_bytes())
    raw[-100] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_synthesiser(copy)
    with pytest.raises(InvalidBundle, match="does not match"):
        check_bundle(copy)
    weights.unlink()
    with pytest.raises(InvalidBundle, match="taupet-bids-train synthesis"):
        check_bundle(copy)


def test_the_card_says_what_the_training_images_were(run):
    """--data-statement goes into the card's training data; without it the card asks for it.
    The card's table shows the meta-temporal slope beside r and MAPE."""
    config, metrics, bundle = run
    stated = synthesis_card.metadata(
        dataclasses.replace(config, data_statement="Simulated phantoms only."), metrics
    )
    assert stated["data_source"].endswith("by participant. Simulated phantoms only.")
    unstated = json.loads((bundle / METADATA).read_text())
    assert unstated["data_source"].endswith("say so when you publish a bundle.")
    card = render_card(unstated)
    assert "| meta-temporal r | MAPE % | slope | scans |" in card


def test_monai_runner_writes_the_products_output(run, cohort, tmp_path):
    _, _, bundle = run
    t1w = _t1w(cohort)
    done = subprocess.run(
        [
            sys.executable, "-m", "monai.bundle", "run",
            "--config_file", str(bundle / CONFIG), "--meta_file", str(bundle / METADATA),
            "--bundle_root", str(bundle), "--input_file", str(t1w),
            "--output_dir", str(tmp_path / "runner"),
        ],
        capture_output=True, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ours = inference.synthesise(load_synthesiser(bundle), t1w, tmp_path / "product")
    assert (
        ours.image.name
        == f"sub-p7_trc-{TRACER}_space-MNI152NLin6Asym_res-2_desc-syntheticFromT1w_pet.nii.gz"
    )
    assert str(tmp_path / "runner" / ours.image.name) in done.stdout
    theirs = np.asarray(nib.load(tmp_path / "runner" / ours.image.name).dataobj)
    mine = np.asarray(nib.load(ours.image).dataobj)
    assert np.abs(theirs - mine).max() < 1e-5 and mine.max() > 0
    sidecar = json.loads(ours.sidecar.read_text())
    assert sidecar["Synthetic"] is True and sidecar["SynthesisSource"] == "T1w"
    assert sidecar["ModelVersion"] == "0.1.0" and sidecar["Sources"] == [t1w.name]


def test_the_training_command_refuses_derivatives_without_pairs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = ["synthesis", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 1
    assert "nothing to train" in capsys.readouterr().err
