"""Training the AD-vs-CN classifier on a tiny labelled cohort.

The data side (diagnoses, MCI left out, the split by participant) runs on file names and
tables; one tiny network is trained for a few steps, then again with an interruption.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from taupet_bids.errors import InputError
from taupet_bids.models.bundle import METADATA
from taupet_bids.training import cli
from taupet_bids.training.classifier import (
    TrainConfig,
    best_cutpoint,
    binary_metrics,
    train,
)
from taupet_bids.training.classifier_card import export_trained_bundle, render_card
from taupet_bids.training.classifier_data import Scan, find_scans, labelled, split_participants
from tests.classification_cohort import DIAGNOSES, TINY, TWO_VISITS, tiny_config, write_cohort


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
    config = tiny_config(out, cohort)
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


def test_a_cohort_with_one_diagnosis_trains_nothing(cohort, tmp_path):
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "participants.tsv").write_text("participant_id\tdiagnosis\nsub-ad0\tAD\n")
    with pytest.raises(InputError, match="no CN scan"):
        train(tiny_config(tmp_path / "out", (cohort[0], bids)), log=lambda line: None)


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
    assert metrics["auc"] == pytest.approx(5 / 6)
    assert binary_metrics(scores, np.zeros(5, int), 0.5)["auc"] is None


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


class _Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_weights(run, cohort, tmp_path):
    def stop_at_first_checkpoint(line: str) -> None:
        if "checkpoint: main step 20" in line:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(tiny_config(tmp_path, cohort), log=stop_at_first_checkpoint)
    lines: list[str] = []
    metrics = train(tiny_config(tmp_path, cohort), log=lines.append)
    assert any("resuming" in line and "step 20" in line for line in lines)
    assert metrics == run[1]
    first = torch.load(run[0].out_dir / "model.pt", weights_only=True)
    resumed = torch.load(tmp_path / "model.pt", weights_only=True)
    for child, state in first.items():
        for key, value in state.items():
            assert torch.equal(value, resumed[child][key]), (child, key)


def test_the_bundle_card_is_rendered_from_its_metadata_and_names_the_baseline(run):
    bundle = run[2]
    meta = json.loads((bundle / METADATA).read_text())
    card = (bundle / "docs" / "README.md").read_text()
    assert card == render_card(meta)
    assert "meta-temporal SUVR" in card and "left out of training: 3 MCI" in card
    assert meta["taupet_bids"]["architecture"] == TINY
    assert "--channels 4 4 4 4 4 --hidden 8 --dropout 0" in card  # the run can be repeated


def test_the_baseline_cutpoint_lies_between_the_classes():
    values = np.array([1.0, 1.1, 1.2, 2.0, 2.4])
    targets = np.array([0, 0, 0, 1, 1])
    assert best_cutpoint(values, targets) == pytest.approx(1.6)


def test_label_smoothing_keeps_a_confident_right_answer_costing_something(tmp_path) -> None:
    """With smoothing the loss has a floor above zero, so P(AD) is not pushed to 0 or 1."""
    from taupet_bids.training.classifier import training_stage

    class Confident(torch.nn.Module):
        def forward(self, images):
            return torch.tensor([[0.0, 50.0], [50.0, 0.0]])  # AD, then CN, very sure

    targets = np.array([1, 0])
    batch = (np.zeros((2, 1, 4, 4, 4), np.float32), targets)
    losses = {}
    for smoothing in (0.0, 0.1):
        config = TrainConfig(tmp_path, [tmp_path], tmp_path, label_smoothing=smoothing)
        stage = training_stage(config, Confident(), targets)
        losses[smoothing] = float(stage.loss(batch))
    assert losses[0.0] < 1e-6
    assert losses[0.1] > 1.0  # 0.05 of the target on the class it scored 50 below
    command = render_card_command({"label_smoothing": 0.1})
    assert "--label-smoothing 0.1" in command


def render_card_command(overrides: dict) -> str:
    from taupet_bids.training.classifier_card import _command

    config = TrainConfig(Path("/out"), [Path("/d")], Path("/b"), **overrides).to_json()
    return _command(config)
