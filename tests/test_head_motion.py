"""The simulator's head motion: a restlessness per participant, larger at AD visits."""

from __future__ import annotations

import numpy as np

from taupet_bids.core.motion import euler_degrees, framewise_displacement
from taupet_bids.core.qc import MAX_FD_MM
from taupet_bids.simulate.head_motion import AD_FACTOR, restlessness
from taupet_bids.simulate.modalities.taupet import frame_motion


def _max_fd(motion: list[np.ndarray]) -> float:
    params = [np.concatenate([m[:3, 3], euler_degrees(m[:3, :3])]) for m in motion]
    return float(framewise_displacement(np.array(params)).max())


def _seed(n: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(7).spawn(n + 1)[n]


def test_restlessness_is_the_participants_own_and_larger_at_ad_visits():
    seed = _seed(3)
    assert restlessness(seed, "CN") == restlessness(seed, "CN") == restlessness(seed, "MCI")
    assert np.isclose(restlessness(seed, "AD"), AD_FACTOR * restlessness(seed, "CN"))
    assert restlessness(_seed(4), "CN") != restlessness(seed, "CN")


def test_the_walk_keeps_its_steps_and_scales_their_size():
    still = frame_motion(np.random.default_rng(1), 4, 0.0)
    assert all(np.allclose(m, np.eye(4)) for m in still)
    small = frame_motion(np.random.default_rng(1), 4, 0.5)
    large = frame_motion(np.random.default_rng(1), 4, 1.0)
    for a, b in zip(small, large, strict=True):
        assert np.allclose(2 * a[:3, 3], b[:3, 3])
        assert np.allclose(2 * euler_degrees(a[:3, :3]), euler_degrees(b[:3, :3]), atol=1e-6)
    assert frame_motion(np.random.default_rng(1), 1, 3.0)[0].tolist() == np.eye(4).tolist()


def test_the_motion_flag_fires_on_few_participants_and_more_often_at_ad_visits():
    """Before restlessness about half of all scans reached the flag (J-ADNI: 3-4 % / 22 %)."""
    flagged = {"CN": [], "AD": []}
    for n in range(400):
        seed, rng = _seed(n), np.random.default_rng(n)
        state = rng.bit_generator.state
        for diagnosis in flagged:
            rng.bit_generator.state = state
            motion = frame_motion(rng, 4, restlessness(seed, diagnosis))
            flagged[diagnosis].append(_max_fd(motion) >= MAX_FD_MM)
    cn, ad = np.mean(flagged["CN"]), np.mean(flagged["AD"])
    assert cn < 0.08 and 0.1 < ad < 0.35
