"""The counterfactual statistics of benchmarks/diffusion.py on numbers with a known answer: a
wrong sign or a confounded difference fails here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import diffusion as bench  # noqa: E402


def test_slope_has_the_sign_and_size_of_the_line_and_is_none_without_spread():
    mmse = [30, 25, 20, 15, 10]
    assert bench.slope(mmse, [1.0 - 0.02 * m for m in mmse]) == pytest.approx(-0.02)
    assert bench.slope(mmse, [0.5 + 0.01 * m for m in mmse]) == pytest.approx(0.01)
    assert bench.slope([20, 20, np.nan], [1.0, 2.0, 3.0]) is None


def test_summaries_count_the_scans_that_go_the_expected_way():
    summary = bench.summarise([-0.02, -0.01, 0.005, None], -1)
    assert summary == {"mean": pytest.approx(-0.025 / 3), "fraction": pytest.approx(2 / 3), "n": 3}
    assert bench.summarise([None], -1) == {"mean": None, "fraction": None, "n": 0}
    assert bench.signs_agree(-0.01, -0.3) is True
    assert bench.signs_agree(0.01, -0.3) is False
    assert bench.signs_agree(None, -0.3) is None and bench.signs_agree(0.0, 1.0) is None
    assert bench.signs_agree(2e-8, -0.3) is None  # float noise is no effect
    assert bench.summarise([1e-9, -1e-9, -0.01], -1)["fraction"] == pytest.approx(1 / 3)


def test_amyloid_differences_separate_the_confounded_from_the_direct_effect():
    # Tau follows the stage only; amyloid is more common at later stages (as in the simulator).
    stage = np.array([0, 0, 0, 2, 2, 2, 4, 4, 4])
    positive = np.array([0, 0, 1, 0, 1, 1, 1, 1, 0], bool)
    suvr = 1.0 + 0.25 * stage
    assert bench.group_difference(suvr, positive) > 0.2  # confounded by the stage
    assert bench.matched_difference(suvr, positive, stage) == pytest.approx(0.0)
    mmse = 29.5 - 2.0 * stage  # MMSE carries the stage, so adjusting for it removes it too
    assert bench.adjusted_difference(suvr, positive, mmse) == pytest.approx(0.0, abs=1e-9)
    direct = suvr + 0.1 * positive
    assert bench.adjusted_difference(direct, positive, mmse) == pytest.approx(0.1)
    assert bench.matched_difference(direct, positive, stage) == pytest.approx(0.1)
    assert bench.group_difference(suvr, np.ones(9, bool)) is None


def test_cohort_effects_give_the_truths_slope_and_n_a_without_values():
    mmse = [29, 27, 24, 20, 15, 12]
    values = [{"mmse": m, "amyloid_status": "positive" if m < 25 else "negative"} for m in mmse]
    composites = [{"MetaTemporal:metatemporal": 2.5 - 0.05 * m} for m in mmse]
    effects = bench.cohort_effects(composites, values, [0, 1, 2, 3, 4, 5])
    row = effects["MetaTemporal:metatemporal"]
    assert row["mmse_slope"] == pytest.approx(-0.05)
    assert row["amyloid_groups"] > 0 and row["amyloid_matched_stage"] is None
    assert bench.cohort_effects(None, values, [None] * 6) == {}
    unknown = [{"mmse": None, "amyloid_status": None}] * 6
    row = bench.cohort_effects(composites, unknown, [None] * 6)["MetaTemporal:metatemporal"]
    assert row == {"mmse_slope": None, "amyloid_groups": None, "amyloid_matched_stage": None,
                   "amyloid_adjusted_mmse": None}  # fmt: skip


def test_effects_table_judges_the_models_direction_against_the_truths():
    scans = [
        {"counterfactual": {"c": {"mmse_slope": s, "amyloid_difference": d}}}
        for s, d in ((-0.02, 0.05), (-0.01, 0.02), (0.01, -0.01))
    ]
    truth = {"c": {"mmse_slope": -0.03, "amyloid_adjusted_mmse": 0.04}}
    table = bench.effects_table(scans, {"truth": truth, "measured": {}})["c"]
    assert table["mmse"]["agree"] is True and table["mmse"]["fraction"] == pytest.approx(2 / 3)
    assert table["amyloid"]["agree"] is True
    truth = {"c": {"mmse_slope": 0.03, "amyloid_adjusted_mmse": -0.04}}
    table = bench.effects_table(scans, {"truth": truth, "measured": {}})["c"]
    assert table["mmse"]["agree"] is False and table["amyloid"]["agree"] is False
    table = bench.effects_table(scans, {"truth": {}, "measured": {}})["c"]
    assert table["mmse"]["agree"] is None and table["mmse"]["truth"] is None
    assert bench.pearson([1, 2, 3], [2, 4, 7]) > 0.9 and bench.pearson([1, 1, 1], [1, 2, 3]) is None


def test_the_clinical_regional_baseline_recovers_a_known_line_and_fills_missing_values():
    rng = np.random.default_rng(0)
    n = 12
    t1w = [{"meta": float(x)} for x in rng.uniform(0.8, 1.2, n)]
    values = [
        {"mmse": float(m), "amyloid_status": a, "age": float(g)}
        for m, a, g in zip(
            rng.integers(18, 31, n), rng.choice(["positive", "negative"], n),
            rng.uniform(60, 85, n), strict=True,
        )
    ]  # fmt: skip

    def truth(x, v):
        amyloid = 1.0 if v["amyloid_status"] == "positive" else -1.0
        return 2.0 - 0.5 * x["meta"] - 0.03 * v["mmse"] + 0.1 * amyloid + 0.002 * v["age"]

    train_y = [{"meta": truth(x, v)} for x, v in zip(t1w, values, strict=True)]
    test_t1w = [{"meta": 1.0}, {"meta": 1.0}]
    test_values = [
        {"mmse": 20.0, "amyloid_status": "positive", "age": 70.0},
        {"mmse": None, "amyloid_status": None, "age": None},
    ]
    predicted = bench.regional_linear_clinical(t1w, values, train_y, test_t1w, test_values)
    assert predicted[0]["meta"] == pytest.approx(truth(test_t1w[0], test_values[0]), abs=1e-9)
    means = {
        "mmse": np.mean([v["mmse"] for v in values]), "age": np.mean([v["age"] for v in values]),
    }  # fmt: skip
    amyloid = np.mean([1.0 if v["amyloid_status"] == "positive" else -1.0 for v in values])
    filled = 2.0 - 0.5 - 0.03 * means["mmse"] + 0.1 * amyloid + 0.002 * means["age"]
    assert predicted[1]["meta"] == pytest.approx(filled, abs=1e-9)


def test_without_clinical_values_the_baseline_is_the_t1w_only_line():
    t1w = [{"meta": x} for x in (0.9, 1.0, 1.1, 1.2)]
    train_y = [{"meta": 3.0 - 2.0 * x["meta"]} for x in t1w]
    predicted = bench.regional_linear_clinical(t1w, None, train_y, [{"meta": 0.5}], None)
    assert predicted[0]["meta"] == pytest.approx(2.0)
