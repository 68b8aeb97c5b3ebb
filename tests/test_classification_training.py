"""Training the AD-vs-CN classifier on a tiny labelled cohort, and the bundle it writes.

The data side (diagnoses, MCI left out, the split by participant) runs on file names and
tables; one tiny network is trained for a few steps and its bundle goes through the pipeline's
loader and MONAI's runner.
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
from taupet_bids.classification.bundle import load_classifier
from taupet_bids.errors import InputError
from taupet_bids.models.bundle import CONFIG, METADATA, ModelIntegrityError
from taupet_bids.training import cli
from taupet_bids.training.classifier import TrainConfig, auc, binary_metrics, train
from taupet_bids.training.classifier_card import export_trained_bundle, render_card
from taupet_bids.training.classifier_data import Scan, find_scans, labelled, split_participants
from tests.classification_cohort import write_cohort

#: 6 CN, 6 AD and 2 MCI participants with one scan; two with two visits.
DIAGNOSES = {f"cn{i}": "CN" for i in range(6)} | {f"ad{i}": "AD" for i in range(6)}
DIAGNOSES |= {"mci0": "MCI", "mci1": "MCI"}
TWO_VISITS = {"conv": ("CN", "MCI"), "adtwo": ("AD", "AD")}
TINY = {"channels": [4, 4, 4, 4, 4], "hidden": [8], "dropout": 0.0}
#: A smaller occluder than the product's 3 voxels: fewer network calls in a test.
TEST_MASK_VOXELS = 8


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, templateflow_home) -> tuple[Path, Path]:
    return write_cohort(tmp_path_factory.mktemp("cohort"), DIAGNOSES, TWO_VISITS)


@pytest.fixture(scope="module")
def run(cohort, tmp_path_factory) -> tuple[TrainConfig, dict, Path]:
    """A tiny network trained for 40 steps, and its bundle."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    derivatives, bids = cohort
    config = TrainConfig(
        out, [derivatives], bids, seed=3, steps=40, batch_size=6, learning_rate=1e-2,
        checkpoint_every=20, **TINY,
    )  # fmt: skip
    metrics = train(config, log=lambda line: None)
    return config, metrics, export_trained_bundle(config, metrics, out / "bundle")


def test_diagnoses_come_from_sessions_then_participants_and_mci_is_left_out(cohort):
    scans = find_scans([cohort[0]], cohort[1])
    by_scan = {(s.participant, s.session): s.diagnosis for s in scans}
    assert len(scans) == len(DIAGNOSES) + 4
    assert by_scan[("sub-conv", "ses-1")] == "CN" and by_scan[("sub-conv", "ses-2")] == "MCI"
    kept, left_out = labelled(scans)
    assert left_out == {"MCI": 3}
    assert {s.diagnosis for s in kept} == {"AD", "CN"}


def test_scans_of_participants_without_a_diagnosis_are_counted_and_left_out(cohort, tmp_path):
    (tmp_path / "participants.tsv").write_text("participant_id\tdiagnosis\nsub-ad0\tAD\n")
    kept, left_out = labelled(find_scans([cohort[0]], tmp_path))
    assert [s.participant for s in kept] == ["sub-ad0"]
    assert left_out == {"no diagnosis": len(DIAGNOSES) + 3}


def test_a_dataset_without_diagnoses_trains_nothing_and_says_why(cohort, tmp_path, capsys):
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "participants.tsv").write_text("participant_id\tage\nsub-cn0\t70\n")
    with pytest.raises(InputError, match="no diagnosis column"):
        find_scans([cohort[0]], bids)
    argv = ["classifier", str(cohort[0]), "--bids-dir", str(bids), "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 1
    assert "nothing was trained" in capsys.readouterr().err
    assert not (tmp_path / "o" / "model.pt").exists()


def test_the_split_keeps_each_participant_in_one_set_and_is_80_10_10_per_diagnosis():
    rng = np.random.default_rng(42)
    scans = [
        Scan(Path(f"{d}{i}_{v}.nii.gz"), f"sub-{d}{i}", f"ses-{v}", d)
        for d in ("AD", "CN")
        for i in range(50)
        for v in range(int(rng.integers(1, 4)))
    ]
    sets = split_participants(scans, seed=7)
    assert set(sets) == {s.participant for s in scans}  # one set per participant, by design
    for diagnosis in ("AD", "CN"):
        counts = pd.Series([s for p, s in sets.items() if diagnosis in p]).value_counts()
        assert counts.to_dict() == {"train": 40, "validation": 5, "test": 5}
    assert split_participants(scans, seed=7) == sets
    assert split_participants(scans, seed=8) != sets


def test_metrics_count_ad_as_positive():
    targets = np.array([1, 1, 0, 0, 0])
    scores = np.array([0.9, 0.4, 0.2, 0.6, 0.1])
    metrics = binary_metrics(scores, targets, 0.5)
    assert metrics["sensitivity"] == 0.5 and metrics["specificity"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == 0.6
    assert auc(scores, targets) == pytest.approx(5 / 6)
    assert auc(scores, np.zeros(5, int)) is None


def test_training_writes_the_split_and_separates_held_out_participants(run):
    config, metrics, _ = run
    split = pd.read_csv(config.out_dir / "split.tsv", sep="\t")
    assert "MCI" not in set(split["diagnosis"])
    assert split.groupby("participant_id")["set"].nunique().max() == 1
    assert metrics["left_out"] == {"MCI": 3}
    assert sum(metrics["scans"].values()) == len(split) == 15  # 12 + CN ses-1 + two AD visits
    held_out = [metrics[name] for name in ("validation", "test")]
    assert all(m["accuracy"] == 1.0 for m in held_out)
    assert metrics["test_baseline"]["n_AD"] == metrics["test"]["n_AD"] >= 1
    log = pd.read_csv(config.out_dir / "training_log.tsv", sep="\t")
    assert len(log) == 40


def test_the_bundle_card_is_rendered_from_its_metadata_and_names_the_baseline(run):
    bundle = run[2]
    meta = json.loads((bundle / METADATA).read_text())
    card = (bundle / "docs" / "README.md").read_text()
    assert card == render_card(meta)
    assert "meta-temporal SUVR" in card and "left out of training: 3 MCI" in card
    assert meta["taupet_bids"]["architecture"] == TINY


def _suvr_file(cohort) -> Path:
    return next(cohort[0].rglob("sub-ad0_*desc-suvr_pet.nii.gz"))


def test_the_loaded_bundle_calls_an_ad_scan_ad(run, cohort):
    classifier = load_classifier(run[2])
    image = inference.prepare_file(_suvr_file(cohort))
    prediction = inference.predict(
        classifier.network, classifier.inferer, image, classifier.threshold
    )
    assert prediction.label == "AD" and classifier.version == "0.1.0"


def test_monai_runner_writes_the_pipelines_outputs(run, cohort, tmp_path):
    bundle, suvr = run[2], _suvr_file(cohort)
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
    ours_map = inference.occlusion_map(classifier.network, image, TEST_MASK_VOXELS)
    theirs = np.asarray(nib.load(outputs.occlusion_map).dataobj)
    assert np.abs(theirs[::2, ::2, ::2] - ours_map).max() < 1e-5
    assert len(pd.read_csv(outputs.regions, sep="\t")) > 40


def test_the_interface_writes_what_the_bundle_functions_compute(run, cohort, tmp_path):
    from taupet_bids.interfaces.classification import ClassifyADvsCN

    bundle = tmp_path / "bundle"
    shutil.copytree(run[2], bundle)
    config = json.loads((bundle / CONFIG).read_text())
    (bundle / CONFIG).write_text(json.dumps({**config, "mask_voxels": TEST_MASK_VOXELS}))
    suvr = _suvr_file(cohort)
    node = ClassifyADvsCN(in_file=str(suvr), bundle=str(bundle))
    result = node.run(cwd=str(tmp_path)).outputs
    classifier = load_classifier(bundle)
    assert classifier.mask_voxels == TEST_MASK_VOXELS  # the bundle's settings, not defaults
    image = inference.prepare_file(suvr)
    assert result.probability == pytest.approx(
        inference.infer(classifier.network, classifier.inferer, image), abs=1e-6
    )
    assert result.label == "AD" and result.model_version == "0.1.0"
    assert json.loads(Path(result.prediction).read_text())["Label"] == "AD"
    expected = inference.occlusion_map(classifier.network, image, TEST_MASK_VOXELS)
    written = np.asarray(nib.load(result.occlusion_map).dataobj)[::2, ::2, ::2]
    assert np.abs(written - expected).max() < 1e-6
    assert Path(result.regions).is_file()


def test_tampered_weights_are_refused_and_an_empty_bundle_says_how_to_get_one(run, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(run[2], copy)
    weights = copy / "models" / "model.pt"
    raw = bytearray(weights.read_bytes())
    raw[-100] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_classifier(copy)
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="taupet-bids-train classifier"):
        load_classifier(copy)
