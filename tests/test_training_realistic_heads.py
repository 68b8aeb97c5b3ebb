"""``taupet-bids-train normaliser --heads-from other``: realistic training heads, tiny run.

Realistic heads (other anatomy, several tracers' off-target patterns, scrambled uptake, varied
axial field of view) must be drawn reproducibly, carry consistent targets, and train
deterministically for a few steps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taupet_bids.core.grids import linear_coordinates
from taupet_bids.training import heads
from taupet_bids.training.normaliser import TrainConfig, train
from taupet_bids.training.normaliser_card import export_trained_bundle
from taupet_bids.training.normaliser_cli import build_parser


def test_realistic_heads_are_reproducible_and_varied(templateflow_home):
    first, again = heads.simulated_head(11, source="other"), heads.simulated_head(11, "other")
    np.testing.assert_array_equal(first.volume, again.volume)
    np.testing.assert_array_equal(first.targets, again.targets)
    assert first.name.startswith("realistic") and first.targets.shape == (3, 48, 56, 48)
    other = heads.simulated_head(12, source="other")
    assert other.name != first.name or not np.array_equal(other.volume, first.volume)
    # the targets fall inside the PET's field of view (the template brain is in the image)
    for head in (first, other):
        world = linear_coordinates(head.affine, head.volume.shape).reshape(3, -1)
        lo, hi = world.min(axis=1), world.max(axis=1)
        centre = head.targets.reshape(3, -1).mean(axis=1)
        assert np.all(centre > lo) and np.all(centre < hi)
    with pytest.raises(ValueError, match="heads come from"):
        heads.simulated_head(1, source="nowhere")


def test_tracer_styles_and_pattern_swaps_change_the_uptake(templateflow_home):
    from taupet_bids.simulate import uptake

    rng = np.random.default_rng(0)
    profile = uptake.random_profile(rng, realistic=True)
    mk = heads.tracer_profile(profile, "MK6240", np.random.default_rng(1))
    low, high = heads.TRACER_STYLES["MK6240"]["meninges"]
    assert low <= mk.head.layers["meninges"] <= high
    scrambled = heads.scrambled_pattern(profile, np.random.default_rng(2))
    assert scrambled.baseline.keys() == profile.baseline.keys()
    assert scrambled.baseline != profile.baseline
    kinds = {
        heads.pattern_kind(heads.scrambled_pattern(profile, np.random.default_rng(seed)))
        for seed in range(40)
    }
    assert kinds == {"tau", "flat", "cortex-bright"}


def test_axial_field_of_view_cuts_the_image():
    volume = np.ones((20, 20, 100), np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])  # 200 mm along z
    cut = heads.axial_field_of_view(volume, affine, np.random.default_rng(3))
    kept = cut.any(axis=(0, 1)).sum() * 2.0
    assert heads.AXIAL_FOV_MM[0] - 2 <= kept <= 200


def _tiny(out) -> TrainConfig:
    return TrainConfig(
        out_dir=out, seed=4, n_heads=2, n_validation=1, affine_steps=2, deform_steps=1,
        batch_size=2, checkpoint_every=50, jobs=1, heads_from="other",
    )  # fmt: skip


def test_tiny_training_on_realistic_heads_is_deterministic(tmp_path, templateflow_home):
    first = train(_tiny(tmp_path / "a"), log=lambda _: None)
    second = train(_tiny(tmp_path / "b"), log=lambda _: None)
    assert first == second
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    for stage in ("affine", "deform"):
        for key, value in a[stage].items():
            assert torch.equal(value, b[stage][key]), (stage, key)
    bundle = export_trained_bundle(_tiny(tmp_path / "a"), first, tmp_path / "bundle")
    card = (bundle / "docs" / "README.md").read_text()
    assert "--heads-from other" in card and "MK-6240" in card


def test_the_command_line_offers_realistic_heads():
    args = build_parser().parse_args(["--out", "x", "--heads-from", "other"])
    assert args.heads_from == "other"
