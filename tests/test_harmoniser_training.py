"""The harmoniser's training batches and held-out metrics: the AC method each example is told,
PET-CT inputs at a zero target, and the regional targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from taupet_bids import templates
from taupet_bids.atlases.regions import region_groups
from taupet_bids.core.images import load_3d
from taupet_bids.harmonisation import preprocessing
from taupet_bids.harmonisation.networks import HarmoniserNet, method_index
from taupet_bids.training import harmoniser, harmoniser_regions
from taupet_bids.training.harmoniser_data import Example, pet_ac_method
from tests.harmonisation_bundle import tiny_network

SHAPE = preprocessing.INPUT_SHAPE


MR_METHODS = ("dixon", "atlas", "ute")


def _example(index: int, target: float = 0.1) -> Example:
    """PET-MR input filled with 1 + index, PET-CT input with -(1 + index), targets ``target``,
    the AC method ``MR_METHODS[index % 3]``."""
    image = np.full((2, *SHAPE), 1.0 + index, np.float32)
    n_regions = len(harmoniser_regions.region_weights()[0])
    return Example(
        image=image,
        target=np.full(SHAPE, target, np.float32),
        ct=np.full(SHAPE, np.nan, np.float32),
        identity_image=-image,
        regional_target=np.full(n_regions, target, np.float32),
        method=method_index(MR_METHODS[index % 3]),
    )


@pytest.fixture
def pool(monkeypatch):
    examples = harmoniser.Examples.stack([_example(i) for i in range(3)])
    monkeypatch.setattr(harmoniser, "_POOL", examples)
    return examples


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_a_batch_pairs_each_petct_input_with_a_zero_target(pool, fraction):
    seen_identity = unnamed = 0
    for step in range(20):
        images, targets, _, regional, methods = harmoniser._batch((32, 0, step), 4, fraction)
        # The T1w channel (no noise) tells which input each example got, and its level which.
        identity = images[:, 1].reshape(4, -1).max(axis=1) < 0
        picked = np.abs(images[:, 1, 0, 0, 0]).round().astype(int) - 1
        own = pool.methods[picked]
        assert np.all(methods[identity] == method_index("ct"))
        told = methods[~identity]
        assert np.all((told == own[~identity]) | (told == method_index("mr")))
        unnamed += int((told == method_index("mr")).sum())
        for is_identity, target, regions in zip(identity, targets, regional, strict=True):
            assert np.all(target == (0.0 if is_identity else np.float32(0.1)))
            assert np.all(regions == (0.0 if is_identity else np.float32(0.1)))
        seen_identity += int(identity.sum())
    if fraction == 0.0:  # a quarter of the PET/MR examples are told `mr`
        assert 10 < unnamed < 32
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
    assert metrics["petct_moved_percent"] == 0.0 == metrics["petct_as_mr_moved_percent"]
    assert metrics["after_percent"] == pytest.approx(metrics["before_percent"])
    assert metrics["regional_after_percent"] == pytest.approx(metrics["regional_before_percent"])
    assert metrics["before_percent"] == pytest.approx(100 * np.expm1(0.1), rel=1e-4)

    moving = tiny_network()
    moved = harmoniser.evaluate(moving, {"test": examples})["test"]
    assert moved["petct_moved_percent"] == 0.0  # told CT-based AC: zero by construction
    with torch.no_grad():
        field = moving.correction(
            torch.from_numpy(examples.identity_images[:1]), torch.tensor([method_index("mr")])
        )[0, 0].numpy()
    expected = 100 * np.abs(np.expm1(field[preprocessing.brain_mask_4mm()])).mean()
    assert moved["petct_as_mr_moved_percent"] > 0.1
    assert moved["petct_as_mr_moved_percent"] == pytest.approx(expected, rel=0.05)


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


def test_each_method_learns_its_own_correction(monkeypatch):
    """A few steps of the real loss on two pairs alike but for their AC method and target:
    told Dixon the network learns a raise, told atlas a cut, told CT nothing."""
    examples = harmoniser.Examples.stack([_example(0, 0.1), _example(1, -0.1)])
    examples.images[1] = examples.images[0]  # the images cannot tell the two apart
    monkeypatch.setattr(harmoniser, "_POOL", examples)
    monkeypatch.setattr(harmoniser, "UNNAMED_FRACTION", 0.0)
    torch.manual_seed(0)
    network = HarmoniserNet((2, 4, 4), conditioning="method")
    optimiser = torch.optim.Adam(network.parameters(), lr=0.02)
    for step in range(40):
        field_loss, _, _ = harmoniser.loss_terms(network, harmoniser._batch((1, 0, step), 2))
        optimiser.zero_grad()
        field_loss.backward()
        optimiser.step()
    brain = preprocessing.brain_mask_4mm()
    fields = {
        method: harmoniser.predict(network.eval(), examples.images[:1], [method_index(method)])
        for method in ("dixon", "atlas", "ct")
    }
    assert fields["dixon"][0][brain].mean() > 0.05
    assert fields["atlas"][0][brain].mean() < -0.05
    assert not fields["ct"].any()


def test_the_ac_method_is_read_from_the_source_scans_sidecar(tmp_path):
    import json

    pet = tmp_path / "bids" / "sub-01" / "ses-1" / "pet"
    pet.mkdir(parents=True)
    text = {"AttenuationCorrection": "MR-based, UTE (ultrashort echo time bone segmentation)"}
    (pet / "sub-01_ses-1_trc-FTP_rec-mrac_pet.json").write_text(json.dumps(text))
    suvr = Path("sub-01_ses-1_trc-FTP_rec-mrac_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz")
    assert pet_ac_method(suvr, tmp_path / "bids") == "ute"
    other = Path(str(suvr).replace("sub-01", "sub-02"))
    assert pet_ac_method(other, tmp_path / "bids") == "mr"  # no sidecar: an unnamed MR method


def test_training_chooses_what_the_network_is_told():
    from taupet_bids.training.harmoniser_cli import build_parser

    args = build_parser().parse_args(["D", "--bids-dir", "B", "--out", "O"])
    assert args.conditioning == "ct"
    for choice, outputs in (("none", 1), ("ct", 1), ("method", 4)):
        argv = ["D", "--bids-dir", "B", "--out", "O", "--conditioning", choice]
        assert build_parser().parse_args(argv).conditioning == choice
        assert HarmoniserNet((2, 4, 4), conditioning=choice).field_head.out_channels == outputs
    with pytest.raises(SystemExit):
        build_parser().parse_args(["D", "--bids-dir", "B", "--out", "O", "--conditioning", "x"])


def test_a_pair_without_a_processed_t1w_is_left_out_and_named(tmp_path):
    """A participant normalised without MRI has no T1w in the derivatives: its pair cannot
    train, but the others still do (the demo has such a participant)."""
    from taupet_bids.training.harmoniser_data import find_pairs

    space = "space-MNI152NLin6Asym_res-2"
    for sub in ("sub-01", "sub-02"):
        pet = tmp_path / "deriv" / sub / "pet"
        pet.mkdir(parents=True)
        for rec in ("mrac", "ctac"):
            (pet / f"{sub}_trc-FTP_rec-{rec}_{space}_desc-suvr_pet.nii.gz").touch()
        (pet / f"{sub}_trc-FTP_rec-ctac_from-pet_to-T1w_mode-image_xfm.mat").touch()
    anat = tmp_path / "deriv" / "sub-02" / "anat"
    anat.mkdir()
    for name in ("desc-preproc_T1w.nii.gz",
                 "from-T1w_to-MNI152NLin6Asym_mode-image_desc-warp_xfm.nii.gz",
                 "from-T1w_to-MNI152NLin6Asym_mode-image_desc-affine_xfm.mat"):  # fmt: skip
        (anat / f"sub-02_{name}").touch()
    skipped: list[str] = []
    pairs = find_pairs([tmp_path / "deriv"], tmp_path / "bids", skipped)
    assert [pair.participant for pair in pairs] == ["sub-02"]
    (reason,) = skipped
    assert reason.startswith("sub-01_trc-FTP_rec-mrac") and "T1w" in reason
