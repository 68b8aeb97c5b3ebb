"""Group level of ``--classify``: predictions, AD/CN metrics with intervals, MCI kept apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taupet_bids import group, naming
from tests.test_group import _stem, _write_scan

#: participant -> (diagnosis, P(AD)): AD and CN perfectly separated at 0.5; MCI in between.
COHORT = {
    "a1": ("AD", 0.91), "a2": ("AD", 0.75), "a3": ("AD", 0.62),
    "c1": ("CN", 0.08), "c2": ("CN", 0.21), "c3": ("CN", 0.45),
    "m1": ("MCI", 0.55), "m2": ("MCI", 0.35), "x1": ("FTD", 0.30),
}  # fmt: skip
MODEL = {"ModelName": "test classifier", "ModelVersion": "0.1", "ModelSHA256": "ab" * 32}


def _prediction(out: Path, stem: str, probability: float, **changes) -> Path:
    record = {"ADProbability": probability, "Label": "AD" if probability >= 0.5 else "CN",
              "Threshold": 0.5, "Classes": ["CN", "AD"], **MODEL, **changes}  # fmt: skip
    path = naming.pet_folder(out, stem) / f"{stem}{group.CLASSIFICATION_SUFFIX}"
    path.write_text(json.dumps(record))
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    bids, out = tmp_path / "bids", tmp_path / "out"
    rng = np.random.default_rng(2)
    for sub, (_, probability) in COHORT.items():
        _write_scan(out, sub, None, rng)
        _prediction(out, _stem(sub, None), probability)
    bids.mkdir()
    pd.DataFrame({"participant_id": [f"sub-{s}" for s in COHORT],
                  "diagnosis": [d for d, _ in COHORT.values()]}).to_csv(
        bids / "participants.tsv", sep="\t", index=False)  # fmt: skip
    return bids, out


def _read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / "group" / f"{name}.tsv", sep="\t", na_values="n/a")


def test_perfect_separation_gives_auc_one_with_an_interval(dataset):
    bids, out = dataset
    group.run_group(bids, out)
    metrics = _read(out, "classification_metrics").set_index("metric")
    assert list(metrics.index) == ["accuracy", "sensitivity", "specificity", "roc_auc"]
    assert (metrics["value"] == 1.0).all() and (metrics["ci_low"] == 1.0).all()
    assert (metrics["n_AD"] == 3).all() and (metrics["n_CN"] == 3).all(), "MCI, FTD excluded"
    assert (metrics["ci_resamples"] > 1000).all()
    assert (metrics["model_sha256"] == MODEL["ModelSHA256"]).all()
    sidecar = json.loads((out / "group" / "classification_metrics.json").read_text())
    assert "seed 1818" in sidecar["ci_low"]


def test_other_diagnoses_are_counted_apart(dataset):
    bids, out = dataset
    group.run_group(bids, out)
    other = _read(out, "classification_other").set_index("diagnosis")
    assert list(other.index) == ["FTD", "MCI"]
    assert other.loc["MCI", "n_scans"] == 2 and other.loc["MCI", "n_labelled_AD"] == 1
    assert other.loc["MCI", "mean_ad_probability"] == pytest.approx(0.45)
    predictions = _read(out, "classification").set_index("participant_id")
    assert len(predictions) == len(COHORT)
    assert predictions.loc["sub-m1", "label"] == "AD" and predictions.loc["sub-m1", "diagnosis"]
    report = (out / "group" / "report.html").read_text()
    assert "AD vs CN classification" in report and "Other diagnoses" in report


def test_a_misclassified_cn_scan_lowers_specificity_only(dataset):
    bids, out = dataset
    _prediction(out, _stem("c3", None), 0.7)  # CN called AD, still ranked below two AD scans
    group.run_group(bids, out)
    metrics = _read(out, "classification_metrics").set_index("metric")["value"]
    assert metrics["specificity"] == pytest.approx(2 / 3)
    assert metrics["sensitivity"] == 1.0 and metrics["accuracy"] == pytest.approx(5 / 6)
    assert metrics["roc_auc"] == pytest.approx(8 / 9)  # 0.7 beats a3's 0.62 only


def test_without_a_diagnosis_column_there_are_predictions_only(dataset):
    bids, out = dataset
    group.run_group(bids, out)
    (bids / "participants.tsv").write_text("participant_id\n" + "".join(
        f"sub-{s}\n" for s in COHORT))  # fmt: skip
    group.run_group(bids, out)
    assert len(_read(out, "classification")) == len(COHORT)
    assert not (out / "group" / "classification_metrics.tsv").exists(), "stale table removed"
    assert "No diagnosis column" in (out / "group" / "report.html").read_text()


def test_a_prediction_that_contradicts_itself_leaves_its_scan_out(dataset):
    bids, out = dataset
    bad = _prediction(out, _stem("a1", None), 0.91, Label="CN")
    result = group.write_group(group.gather(out), bids, out)
    assert [s.file for s in result.skipped] == [bad]
    assert "sub-a1" not in set(_read(out, "classification")["participant_id"])
    assert _read(out, "classification_metrics")["n_AD"].iloc[0] == 2


def test_no_prediction_no_classification_tables(tmp_path):
    out = tmp_path / "out"
    _write_scan(out, "001", None, np.random.default_rng(0))
    group.run_group(tmp_path, out)
    assert not list((out / "group").glob("classification*"))
    assert "AD vs CN" not in (out / "group" / "report.html").read_text()
