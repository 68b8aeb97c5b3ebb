"""The benchmark statistics (benchmarks/_stats.py) on values with a known answer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _stats import agreement, icc_2_1, percent_errors  # noqa: E402

# Shrout & Fleiss (1979), Table 2: six targets rated by four judges.
SHROUT_FLEISS = np.array(
    [
        [9, 2, 5, 8],
        [6, 1, 3, 2],
        [8, 4, 6, 8],
        [7, 1, 2, 6],
        [10, 5, 6, 9],
        [6, 2, 4, 7],
    ]
)


def test_icc_2_1_matches_shrout_fleiss_table():
    # Shrout & Fleiss report ICC(2,1) = 0.29 (0.2898 to four places).
    assert icc_2_1(SHROUT_FLEISS) == pytest.approx(0.2898, abs=5e-4)


def test_icc_is_one_for_perfect_agreement():
    values = np.array([1.0, 1.2, 1.5, 2.0])
    assert icc_2_1(np.column_stack([values, values])) == pytest.approx(1.0)


def test_icc_2_1_penalises_a_constant_offset():
    # Absolute agreement: a rater that adds a constant agrees less, though correlation is 1.
    values = np.array([1.0, 1.2, 1.5, 2.0])
    shifted = icc_2_1(np.column_stack([values + 0.3, values]))
    assert 0.0 < shifted < 0.9


def test_icc_is_nan_for_one_target_or_no_variance():
    assert np.isnan(icc_2_1(np.array([[1.0, 1.1]])))
    assert np.isnan(icc_2_1(np.ones((3, 2))))


def test_icc_rejects_a_single_rater():
    with pytest.raises(ValueError, match="raters"):
        icc_2_1(np.ones((3, 1)))


def test_percent_errors_and_agreement_summary():
    truth = np.array([1.0, 2.0, 4.0])
    measured = np.array([1.1, 1.9, 4.0])
    np.testing.assert_allclose(percent_errors(measured, truth), [10.0, -5.0, 0.0])
    summary = agreement(measured, truth)
    assert summary["n"] == 3
    assert summary["mape_pct"] == pytest.approx(5.0)
    assert summary["bias_pct"] == pytest.approx(5.0 / 3)
    assert summary["max_abs_pct"] == pytest.approx(10.0)
