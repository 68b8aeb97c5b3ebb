"""The synthesis benchmark's metrics: a prediction that is nearly one value for everyone must
not look like one that follows the person (the slope and spread ratio say which it is)."""

from __future__ import annotations

import numpy as np
import pytest

from taupet_bids.core import synthesis_metrics

#: Measured meta-temporal SUVR of twelve held-out scans (mostly low, two high).
MEASURED = np.array([1.08, 1.11, 1.14, 1.10, 1.12, 1.27, 1.46, 1.13, 1.23, 1.10, 1.10, 1.15])


def test_a_perfect_prediction_has_slope_and_spread_one():
    stats = synthesis_metrics.regional_agreement(MEASURED, MEASURED)
    assert stats["r"] == pytest.approx(1.0)
    assert stats["slope"] == pytest.approx(1.0)
    assert stats["spread_ratio"] == pytest.approx(1.0)
    assert stats["mape_percent"] == pytest.approx(0.0)


def test_a_near_constant_prediction_ranks_people_but_has_slope_near_zero():
    """A sliver of signal on a fixed level: r and MAPE look good, slope and spread do not."""
    predicted = 1.15 + 0.01 * (MEASURED - MEASURED.mean())
    stats = synthesis_metrics.regional_agreement(predicted, MEASURED)
    assert stats["r"] == pytest.approx(1.0)
    assert stats["mape_percent"] < 7
    assert stats["slope"] == pytest.approx(0.01)
    assert stats["spread_ratio"] == pytest.approx(0.01)


def test_half_of_each_difference_predicted_gives_slope_one_half():
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 0.01, MEASURED.size)
    noise -= np.polyval(np.polyfit(MEASURED, noise, 1), MEASURED)  # uncorrelated with MEASURED
    predicted = MEASURED.mean() + 0.5 * (MEASURED - MEASURED.mean()) + noise
    stats = synthesis_metrics.regional_agreement(predicted, MEASURED)
    assert stats["slope"] == pytest.approx(0.5)
    assert 0.5 < stats["spread_ratio"] < 0.6
    assert 0.8 < stats["r"] < 1.0


def test_a_constant_prediction_has_no_r_and_zero_slope():
    stats = synthesis_metrics.regional_agreement(np.full(MEASURED.size, 1.2), MEASURED)
    assert stats["r"] is None
    assert stats["slope"] == pytest.approx(0.0)
    assert stats["spread_ratio"] == pytest.approx(0.0)


def test_fewer_than_three_scans_give_only_the_mape():
    stats = synthesis_metrics.regional_agreement([1.1, 1.3], [1.0, 1.3])
    assert stats["r"] is None and stats["slope"] is None and stats["spread_ratio"] is None
    assert stats["mape_percent"] == pytest.approx(5.0)


def test_voxel_metrics_count_only_the_mask():
    truth = np.ones((8, 8, 8), np.float32)
    predicted = truth.copy()
    predicted[:4] += 0.5
    mask = np.zeros(truth.shape, bool)
    mask[4:] = True
    assert synthesis_metrics.masked_mse(predicted, truth, mask) == 0.0
    mask[3] = True
    assert synthesis_metrics.masked_mse(predicted, truth, mask) == pytest.approx(0.25 / 5)
