"""The harmoniser's training batches and held-out metrics: PET-CT inputs at a zero target."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taupet_bids import templates
from taupet_bids.atlases.regions import region_groups
from taupet_bids.core.images import load_3d
from taupet_bids.harmonisation import preprocessing
from taupet_bids.harmonisation.networks import HarmoniserNet
from taupet_bids.training import harmoniser, harmoniser_regions
from taupet_bids.training.harmoniser_data import Example
from tests.harmonisation_bundle import tiny_network

SHAPE = preprocessing.INPUT_SHAPE


def _example(index: int) -> Example:
    """PET-MR input filled with 1 + index, PET-CT input with -(1 + index), targets 0.1."""
    image = np.full((2, *SHAPE), 1.0 + index, np.float32)
    n_regions = len(harmoniser_regions.region_weights()[0])
    return Example(
        image=image,
        target=np.full(SHAPE, 0.1, np.float32),
        ct=np.full(SHAPE, np.nan, np.float32),
        identity_image=-image,
        regional_target=np.full(n_regions, 0.1, np.float32),
    )


@pytest.fixture
def pool(monkeypatch):
    examples = harmoniser.Examples.stack([_example(i) for i in range(3)])
    monkeypatch.setattr(harmoniser, "_POOL", examples)
    return examples


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_a_batch_pairs_each_petct_input_with_a_zero_target(pool, fraction):
    seen_identity = 0
    for step in range(20):
        images, targets, _, regional, labels = harmoniser._batch((32, 0, step), 4, fraction)
        # The T1w channel (no noise) tells which input each example got.
        identity = images[:, 1].reshape(4, -1).max(axis=1) < 0
        np.testing.assert_array_equal(labels, (~identity).astype(np.float32))
        for is_identity, target, regions in zip(identity, targets, regional, strict=True):
            assert np.all(target == (0.0 if is_identity else np.float32(0.1)))
            assert np.all(regions == (0.0 if is_identity else np.float32(0.1)))
        seen_identity += int(identity.sum())
    if fraction == 0.0:
        assert seen_identity == 0
    elif fraction == 1.0:
        assert seen_identity == 80
    else:
        assert 20 < seen_identity < 60


def test_the_same_key_gives_the_same_batch(pool):
    first = harmoniser._batch((32, 0, 7), 4, 0.5)
    second = harmoniser._batch((32, 0, 7), 4, 0.5)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_evaluate_reports_how_far_the_petct_inputs_move():
    examples = harmoniser.Examples.stack([_example(i) for i in range(2)])
    zero = HarmoniserNet((2, 4, 4)).eval()  # its field head starts at zero
    metrics = harmoniser.evaluate(zero, {"test": examples})["test"]
    assert metrics["petct_moved_percent"] == 0.0
    assert metrics["after_percent"] == pytest.approx(metrics["before_percent"])
    assert metrics["regional_after_percent"] == pytest.approx(metrics["regional_before_percent"])
    assert metrics["before_percent"] == pytest.approx(100 * np.expm1(0.1), rel=1e-4)

    moving = tiny_network()
    moved = harmoniser.evaluate(moving, {"test": examples})["test"]["petct_moved_percent"]
    with torch.no_grad():
        field = moving.correction(torch.from_numpy(examples.identity_images[:1]))[0, 0].numpy()
    expected = 100 * np.abs(np.expm1(field[preprocessing.brain_mask_4mm()])).mean()
    assert moved > 0.1
    assert moved == pytest.approx(expected, rel=0.05)


def test_training_refuses_a_fraction_outside_zero_to_one():
    from taupet_bids.training.harmoniser_cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["D", "--bids-dir", "B", "--out", "O", "--identity-fraction", "0.3"])
    assert args.identity_fraction == 0.3
    with pytest.raises(SystemExit):
        parser.parse_args(["D", "--bids-dir", "B", "--out", "O", "--identity-fraction", "1.5"])


def test_regional_targets_are_the_log_ratio_of_the_2mm_regional_means():
    rng = np.random.default_rng(4)
    mrac = rng.uniform(0.8, 2.5, preprocessing.TEMPLATE_SHAPE).astype(np.float32)
    ctac = mrac * rng.uniform(0.9, 1.2, preprocessing.TEMPLATE_SHAPE).astype(np.float32)
    names, _ = harmoniser_regions.region_weights()
    target = harmoniser_regions.regional_target(ctac, mrac)
    labels = load_3d(templates.atlas_path("Braak"), np.int32)
    inside = np.isin(labels, region_groups("Braak")["BraakI"])
    expected = np.log(ctac[inside].mean() / mrac[inside].mean())
    assert target[names.index("BraakI")] == pytest.approx(expected, abs=1e-6)
    assert {"BraakI", "BraakVI", "metatemporal", "entorhinal"} <= set(names)


def test_a_constant_field_moves_every_regional_mean_by_its_value():
    _, weights = harmoniser_regions.region_weights()
    suvr = torch.from_numpy(np.random.default_rng(5).uniform(0.5, 2, (2, *SHAPE)).astype("f4"))
    weights = torch.from_numpy(weights)
    zero = harmoniser_regions.predicted(suvr, torch.zeros_like(suvr), weights)
    constant = harmoniser_regions.predicted(suvr, torch.full_like(suvr, 0.05), weights)
    assert torch.allclose(zero, torch.zeros_like(zero), atol=1e-6)
    assert torch.allclose(constant, torch.full_like(constant, 0.05), atol=1e-5)


def test_the_gate_scales_the_field_by_the_mr_ac_probability():
    network = tiny_network()
    image = torch.from_numpy(np.random.default_rng(6).uniform(0, 2, (1, 2, *SHAPE)).astype("f4"))
    with torch.no_grad():
        network.gate_head.bias.fill_(-20.0)  # sure it is a PET-CT
        assert float(network.mr_ac_probability(image)[0]) < 1e-8
        assert network.correction(image).abs().max() < 1e-8
        network.gate_head.bias.fill_(20.0)  # sure it is MR-AC: the field head's own field
        gated = network.correction(image)
        network.gated = False
        assert torch.allclose(gated, network.correction(image), atol=1e-6)
        assert gated.abs().max() > 0.01


def test_the_gate_learns_which_inputs_had_mr_ac(monkeypatch):
    """A few steps of the real loss on inputs told apart by their SUVR level."""
    examples = harmoniser.Examples.stack([_example(i) for i in range(2)])
    monkeypatch.setattr(harmoniser, "_POOL", examples)
    torch.manual_seed(0)
    network = HarmoniserNet((2, 4, 4), gated=True)
    optimiser = torch.optim.Adam(network.parameters(), lr=0.05)
    for step in range(30):
        terms = harmoniser.loss_terms(network, harmoniser._batch((1, 0, step), 2, 0.5))
        optimiser.zero_grad()
        terms[3].backward()
        optimiser.step()
    network.eval()
    assert harmoniser.detection(network, examples) == 1.0
    assert harmoniser.detection(HarmoniserNet((2, 4, 4)), examples) is None
