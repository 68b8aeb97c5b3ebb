"""AD-vs-CN metrics and their participant bootstrap on constructed predictions."""

from __future__ import annotations

import numpy as np
import pytest

from taupet_bids.core.classification_metrics import (
    ad_cn_metrics,
    participant_resamples,
    weighted_metrics,
)


def test_perfect_separation_gives_one_everywhere_with_a_degenerate_interval():
    probability = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.3])
    is_ad = np.array([True, True, True, False, False, False])
    found = ad_cn_metrics(probability, probability >= 0.5, is_ad, np.array(list("abcdef")))
    for estimate in found.values():
        assert (estimate.value, estimate.low, estimate.high) == (1.0, 1.0, 1.0)
        assert 0 < estimate.resamples <= 2000


def test_known_values_of_an_imperfect_classifier():
    # AD: 0.9, 0.6, 0.4 (one missed at 0.5); CN: 0.6, 0.3, 0.1 (one false alarm).
    probability = np.array([0.9, 0.6, 0.4, 0.6, 0.3, 0.1])
    is_ad = np.array([True, True, True, False, False, False])
    point = weighted_metrics(probability, probability >= 0.5, is_ad, np.ones(6))
    assert point["accuracy"][0] == pytest.approx(4 / 6)
    assert point["sensitivity"][0] == pytest.approx(2 / 3)
    assert point["specificity"][0] == pytest.approx(2 / 3)
    # AD > CN pairs: 0.9 beats 3, 0.6 ties 0.6 and beats 2, 0.4 beats 2 -> 7.5 of 9.
    assert point["roc_auc"][0] == pytest.approx(7.5 / 9)
    found = ad_cn_metrics(probability, probability >= 0.5, is_ad, np.arange(6))
    auc = found["roc_auc"]
    assert auc.low < auc.value < auc.high and auc.high <= 1.0


def test_weights_count_a_participant_drawn_twice_twice():
    probability = np.array([0.9, 0.4, 0.1])
    is_ad = np.array([True, True, False])
    twice = weighted_metrics(probability, probability >= 0.5, is_ad, np.array([[2.0, 1.0, 1.0]]))
    assert twice["sensitivity"][0] == pytest.approx(2 / 3)
    assert twice["accuracy"][0] == pytest.approx(3 / 4)


def test_resampling_keeps_a_participants_scans_together_and_is_seeded():
    participants = np.array(["p1", "p1", "p2", "p3"])
    weights = participant_resamples(participants, resamples=50, seed=4)
    assert (weights[:, 0] == weights[:, 1]).all(), "two visits of p1 always drawn together"
    assert np.allclose(weights[:, [0, 2, 3]].sum(1), 3), "three participants drawn each time"
    assert (participant_resamples(participants, resamples=50, seed=4) == weights).all()


def test_a_class_missing_from_the_data_gives_no_number():
    probability = np.array([0.9, 0.8])
    found = ad_cn_metrics(probability, probability >= 0.5, np.array([True, True]), np.arange(2))
    assert found["sensitivity"].value == 1.0
    assert np.isnan(found["specificity"].value) and np.isnan(found["roc_auc"].value)
    assert found["roc_auc"].resamples == 0
