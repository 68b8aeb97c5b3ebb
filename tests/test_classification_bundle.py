"""A trained classifier bundle through the pipeline's loader, its interface and MONAI's runner.

The bundle comes from a tiny network trained for a few steps on the tiny cohort of
:mod:`tests.classification_cohort`; runner, loader and interface must give the same numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from taupet_bids.classification import inference
from taupet_bids.classification.attribution import attribution_map
from taupet_bids.classification.bundle import load_classifier
from taupet_bids.models.bundle import CONFIG, METADATA, ModelIntegrityError
from taupet_bids.training.classifier import train
from taupet_bids.training.classifier_card import MODEL_VERSION, export_trained_bundle
from tests.classification_cohort import DIAGNOSES, TWO_VISITS, tiny_config, write_cohort

#: A larger occluder than the product's 3 voxels: fewer network calls in a test.
TEST_MASK_VOXELS = 8


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, templateflow_home) -> tuple[Path, Path]:
    return write_cohort(tmp_path_factory.mktemp("cohort"), DIAGNOSES, TWO_VISITS)


@pytest.fixture(scope="module")
def bundle(cohort, tmp_path_factory) -> Path:
    """The bundle of a tiny network trained for 40 steps."""
    torch.set_num_threads(1)
    config = tiny_config(tmp_path_factory.mktemp("run"), cohort)
    metrics = train(config, log=lambda line: None)
    return export_trained_bundle(config, metrics, config.out_dir / "bundle")


def _suvr_file(cohort) -> Path:
    return next(cohort[0].rglob("sub-ad0_*desc-suvr_pet.nii.gz"))


def test_the_loaded_bundle_calls_an_ad_scan_ad(bundle, cohort):
    classifier = load_classifier(bundle)
    image = inference.prepare_file(_suvr_file(cohort))
    prediction = inference.predict(
        classifier.network, classifier.inferer, image, classifier.threshold
    )
    assert prediction.label == "AD" and classifier.version == MODEL_VERSION


def test_monai_runner_writes_the_pipelines_outputs(bundle, cohort, tmp_path):
    suvr = _suvr_file(cohort)
    done = subprocess.run(
        [
            sys.executable, "-m", "monai.bundle", "run",
            "--config_file", str(bundle / CONFIG), "--meta_file", str(bundle / METADATA),
            "--bundle_root", str(bundle), "--input_file", str(suvr),
            "--output_dir", str(tmp_path), "--mask_voxels", str(TEST_MASK_VOXELS),
        ],
        capture_output=True, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = inference.output_paths(suvr, tmp_path)
    assert str(outputs.prediction) in done.stdout
    record = json.loads(outputs.prediction.read_text())
    classifier = load_classifier(bundle)
    image = inference.prepare_file(suvr)
    ours = inference.infer(classifier.network, classifier.inferer, image)
    assert record["ADProbability"] == pytest.approx(ours, abs=1e-5)
    ours_map = inference.occlusion_map(classifier.network, image, TEST_MASK_VOXELS).values
    theirs = np.asarray(nib.load(outputs.occlusion_map).dataobj)
    assert np.abs(theirs[::2, ::2, ::2] - ours_map).max() < 1e-5
    assert len(pd.read_csv(outputs.regions, sep="\t")) > 40
    ours_attribution = attribution_map(classifier.network, image).values
    theirs = np.asarray(nib.load(outputs.attribution_map).dataobj)
    assert np.abs(ours_attribution).max() > 0
    assert np.abs(theirs[::2, ::2, ::2] - ours_attribution).max() < 1e-4
    assert len(pd.read_csv(outputs.attribution_regions, sep="\t")) > 40
    assert record["AttributionSteps"] == 32


def test_the_interface_writes_what_the_bundle_functions_compute(bundle, cohort, tmp_path):
    from taupet_bids.interfaces.classification import ClassifyADvsCN

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    config = json.loads((copy / CONFIG).read_text())
    (copy / CONFIG).write_text(json.dumps({**config, "mask_voxels": TEST_MASK_VOXELS}))
    suvr = _suvr_file(cohort)
    node = ClassifyADvsCN(in_file=str(suvr), bundle=str(copy))
    result = node.run(cwd=str(tmp_path)).outputs
    classifier = load_classifier(copy)
    assert classifier.mask_voxels == TEST_MASK_VOXELS  # the bundle's settings, not defaults
    image = inference.prepare_file(suvr)
    assert result.probability == pytest.approx(
        inference.infer(classifier.network, classifier.inferer, image), abs=1e-6
    )
    assert result.label == "AD" and result.model_version == MODEL_VERSION
    record = json.loads(Path(result.prediction).read_text())
    assert record["Label"] == "AD" and record["OcclusionMaskMM"] == 4 * TEST_MASK_VOXELS
    expected = inference.occlusion_map(classifier.network, image, TEST_MASK_VOXELS).values
    written = np.asarray(nib.load(result.occlusion_map).dataobj)[::2, ::2, ::2]
    assert np.abs(written - expected).max() < 1e-6
    assert Path(result.regions).is_file()
    expected = attribution_map(classifier.network, image).values
    written = np.asarray(nib.load(result.attribution_map).dataobj)[::2, ::2, ::2]
    assert np.abs(written - expected).max() < 1e-6
    assert Path(result.attribution_regions).is_file()


def test_tampered_weights_are_refused_and_an_empty_bundle_says_how_to_get_one(bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    weights = copy / "models" / "model.pt"
    raw = bytearray(weights.read_bytes())
    raw[-100] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_classifier(copy)
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="taupet-bids-train classifier"):
        load_classifier(copy)


def test_a_densenet_bundle_runs_under_monai_runner_as_under_the_loader(cohort, tmp_path):
    """The DenseNet alternative goes through the same config: its architecture entry names it."""
    from monai.networks.nets import DenseNet

    config = tiny_config(tmp_path / "run", cohort)
    config.steps, config.architecture_name = 6, "densenet"
    config.densenet = {
        "init_features": 4,
        "growth_rate": 4,
        "block_config": [1, 1],
        "dropout_prob": 0.0,
    }
    bundle = export_trained_bundle(config, train(config, log=lambda line: None), tmp_path / "b")
    meta = json.loads((bundle / METADATA).read_text())
    assert meta["taupet_bids"]["architecture"]["name"] == "densenet"
    assert "--architecture densenet" in (bundle / "docs" / "README.md").read_text()
    classifier = load_classifier(bundle)
    assert isinstance(classifier.network, DenseNet)
    suvr = _suvr_file(cohort)
    done = subprocess.run(
        [
            sys.executable, "-m", "monai.bundle", "run",
            "--config_file", str(bundle / CONFIG), "--meta_file", str(bundle / METADATA),
            "--bundle_root", str(bundle), "--input_file", str(suvr),
            "--output_dir", str(tmp_path / "out"), "--mask_voxels", str(TEST_MASK_VOXELS),
        ],
        capture_output=True, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(inference.output_paths(suvr, tmp_path / "out").prediction.read_text())
    ours = inference.infer(classifier.network, classifier.inferer, inference.prepare_file(suvr))
    assert record["ADProbability"] == pytest.approx(ours, abs=1e-5)
