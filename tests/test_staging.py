"""Positivity and Braak staging rules on constructed inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from taupet_bids import staging

FLAT = {stage: 1.5 for stage in staging.STAGES}


def _suvr(**high: float) -> dict[str, float]:
    values = dict.fromkeys(staging.STAGES, 1.0)
    values.update(high)
    return values


def test_positivity_flips_at_the_cutpoint() -> None:
    cut = staging.cutpoint_for("flortaucipir")
    assert cut.value == pytest.approx(1.23)
    assert staging.is_positive(cut.value - 1e-6, cut) is False
    assert staging.is_positive(cut.value, cut) is True
    assert staging.is_positive(math.nan, cut) is None


def test_user_cutpoint_wins_and_unknown_tracers_have_none() -> None:
    assert staging.cutpoint_for("flortaucipir", 1.4).value == 1.4
    assert staging.cutpoint_for("MK6240") is None
    assert staging.is_positive(2.0, staging.cutpoint_for("MK6240")) is None
    assert staging.cutpoint_for("MK6240", 1.3).value == 1.3


@pytest.mark.parametrize(
    ("high", "stage", "conforming"),
    [
        ({}, 0, True),
        ({"I": 2.0}, 2, True),  # II is not assessed: reached with I
        ({"I": 2.0, "III": 2.0}, 3, True),
        ({"I": 2.0, "III": 2.0, "IV": 2.0, "V": 2.0, "VI": 2.0}, 6, True),
        ({"I": 2.0, "IV": 2.0}, 2, False),  # III normal breaks the chain
        ({"III": 2.0}, 0, False),  # no Braak I: stage 0, flagged
        ({"II": 3.0}, 0, True),  # hippocampal spill-in alone stages nothing
    ],
)
def test_hierarchical_stage(high: dict, stage: int, conforming: bool) -> None:
    estimate = staging.braak_stage(_suvr(**high), FLAT)
    assert (estimate.stage, estimate.conforming) == (stage, conforming)


def test_missing_values_count_as_normal() -> None:
    values = _suvr(I=2.0, III=np.nan)
    assert staging.braak_stage(values, FLAT).stage == 2


def test_reference_thresholds_need_enough_scans() -> None:
    rng = np.random.default_rng(0)
    braak = pd.DataFrame(rng.normal(1.1, 0.05, (staging.MIN_REFERENCE_SCANS, 6)),
                         columns=list(staging.STAGES))  # fmt: skip
    thresholds = staging.reference_thresholds(braak)
    expected = braak["I"].mean() + staging.N_SD * braak["I"].std()
    assert thresholds["I"] == pytest.approx(expected)
    assert staging.reference_thresholds(braak.iloc[:-1]) is None


def test_fixed_thresholds_use_the_cutpoint_everywhere() -> None:
    cut = staging.CutPoint(1.3, "test")
    assert set(staging.fixed_thresholds(cut).values()) == {1.3}
