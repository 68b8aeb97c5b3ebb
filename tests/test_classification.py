"""The AD-vs-CN classifier's parts without a trained bundle: preprocessing, network, occlusion
map and its regional summary. Tiny networks only."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional

from taupet_bids import atlases, templates
from taupet_bids.classification import attribution, inference, preprocessing
from taupet_bids.classification.networks import Conv5FC3, ad_probability
from taupet_bids.core.occlusion import region_sensitivity, top_regions
from taupet_bids.errors import InputError
from taupet_bids.models.bundle import state_by_child

TINY = {"channels": (4, 4, 4, 4, 4), "hidden": (8,), "dropout": 0.0}
#: Where the constructed AD scans carry their extra uptake (4 mm voxels).
HOT = (slice(15, 25), slice(20, 30), slice(15, 25))


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_downsampling_averages_blocks_clips_and_zeroes_missing_values():
    suvr = np.ones(preprocessing.TEMPLATE_SHAPE, np.float32)
    suvr[0:2, 0:2, 0:2] = [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
    suvr[10, 10, 10] = 20.0
    suvr[20, 20, 20] = np.nan
    small = preprocessing.downsample(suvr)
    assert small.shape == preprocessing.INPUT_SHAPE == (46, 55, 46)
    assert small[0, 0, 0] == pytest.approx((1 + 2 + 3 + 4 + 4 * 4) / 8)  # 5..8 clipped at 4
    assert small[5, 5, 5] == pytest.approx((7 + preprocessing.SUVR_MAX) / 8)
    assert small[10, 10, 10] == pytest.approx(7 / 8)
    assert small[-1, 0, 0] == pytest.approx(0.5)  # one template voxel, one padding voxel


def test_a_4mm_map_goes_back_to_the_template_grid_voxel_for_voxel():
    values = np.random.default_rng(3).random(preprocessing.INPUT_SHAPE).astype(np.float32)
    back = preprocessing.to_template_grid(values)
    assert back.shape == preprocessing.TEMPLATE_SHAPE
    assert np.array_equal(preprocessing.downsample(back)[:-1, :-1, :-1], values[:-1, :-1, :-1])


def test_an_image_off_the_template_grid_is_refused(tmp_path):
    path = tmp_path / "native.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((64, 64, 40), np.float32), np.eye(4)), path)
    with pytest.raises(InputError, match="not on the MNI152NLin6Asym 2 mm grid"):
        preprocessing.read_suvr(path)


def test_conv5_fc3_maps_a_batch_to_two_logits_and_keeps_its_weights_in_its_children():
    torch.manual_seed(0)
    full = Conv5FC3().eval()
    assert [m.out_channels for m in full.modules() if isinstance(m, torch.nn.Conv3d)] == [
        8, 16, 32, 64, 128,
    ]  # fmt: skip
    with torch.no_grad():
        logits = full(torch.ones(2, 1, *preprocessing.INPUT_SHAPE))
    assert logits.shape == (2, 2)
    assert set(state_by_child(full)) == {"features", "classifier"}
    probability = ad_probability(logits)
    assert torch.all((probability > 0) & (probability < 1))


def _two_classes(rng: np.random.Generator, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat SUVR 1 scans (CN) and scans with a hot block (AD), with noise."""
    labels = rng.integers(0, 2, count)
    images = 1.0 + rng.normal(0, 0.05, (count, 1, *preprocessing.INPUT_SHAPE))
    images[(labels == 1, slice(None), *HOT)] += 1.0
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels)


@pytest.fixture(scope="module")
def trained() -> Conv5FC3:
    """A tiny network trained for 40 steps on the two constructed classes."""
    torch.set_num_threads(1)
    torch.manual_seed(12)
    network = Conv5FC3(**TINY)
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-2)
    rng = np.random.default_rng(12)
    network.train()
    for _ in range(40):
        images, labels = _two_classes(rng, 8)
        loss = functional.cross_entropy(network(images), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return network.eval()


def test_build_network_reads_both_architecture_entries_and_refuses_an_unknown_one():
    from monai.networks.nets import DenseNet

    from taupet_bids.classification.networks import build_network

    assert isinstance(build_network(TINY), Conv5FC3)  # bundles written before the alternative
    dense = build_network(
        {"name": "densenet", "init_features": 4, "growth_rate": 4, "block_config": [1, 1]}
    )
    assert isinstance(dense, DenseNet)
    assert dense(torch.zeros(2, 1, 46, 55, 46)).shape == (2, 2)
    with pytest.raises(ValueError, match="unknown classifier architecture 'resnet'"):
        build_network({"name": "resnet"})


def test_a_tiny_network_learns_to_separate_two_obviously_different_classes(trained):
    images, labels = _two_classes(np.random.default_rng(99), 16)
    with torch.no_grad():
        called = (ad_probability(trained(images)) >= 0.5).long()
    assert (called == labels).float().mean() == 1.0


def test_the_occlusion_map_peaks_on_the_uptake_and_is_zero_where_the_scan_is_at_reference(
    trained,
):
    image = torch.ones(1, 1, *preprocessing.INPUT_SHAPE)
    image[(0, 0, *HOT)] = 1.5  # a borderline scan (P(AD) about 0.7): not saturated
    box = (9, 30, 14, 35, 9, 30)  # the hot block with a margin: fewer network calls
    sensitivity = inference.occlusion_map(trained, image, box=box).values
    hot = np.zeros(preprocessing.INPUT_SHAPE, bool)
    hot[HOT] = True
    near = np.zeros_like(hot)
    near[12:28, 17:33, 12:28] = True  # every 3-voxel cube that touches the hot block
    inside = np.zeros_like(hot)
    inside[9:31, 14:36, 9:31] = True
    assert (inside & ~near).sum() > 3000  # a shell of plain reference uptake around the block
    assert np.abs(sensitivity[~near]).max() < 1e-6
    assert sensitivity[hot].max() > 0.005  # occluding the uptake lowers P(AD)
    # The occluder that lowers P(AD) most covers uptake: the peak is a voxel whose 3-voxel
    # occluder overlaps the block (inside it, or one voxel outside; which of these wins depends
    # on the CPU's arithmetic, since a hole inside the block also adds edges a CNN can read).
    overlaps = np.zeros_like(hot)
    overlaps[14:26, 19:31, 14:26] = True
    assert overlaps[np.unravel_index(np.argmax(sensitivity), sensitivity.shape)]
    zero_occluder = inference.OcclusionSensitivity(
        trained, mask_size=3, n_batch=16, verbose=False, mode=0.0, overlap=0.0
    )
    with torch.no_grad():
        holes, _ = zero_occluder(image, b_box=[9, 31, 14, 36, 9, 31])  # exclusive ends
    flat = ~near[9:31, 14:36, 9:31]
    baseline = float(torch.softmax(trained(image), 1)[0, 1])
    # A zero occluder moves P(AD) even where the scan is plain reference uptake.
    assert np.abs(baseline - holes[0, 1].numpy()[flat]).max() > 1e-6


def test_the_attribution_map_lies_on_the_uptake_and_adds_up_to_the_change_of_log_odds(trained):
    baseline = attribution.baseline_image()
    image = baseline.clone()
    image[(0, 0, *HOT)] += 0.5  # the template brain at SUVR 1.0 with one hot block
    found = attribution.attribution_map(trained, image)
    hot = np.zeros(preprocessing.INPUT_SHAPE, bool)
    hot[HOT] = True
    assert found.values.shape == preprocessing.INPUT_SHAPE
    assert np.abs(found.values[~hot]).max() == 0.0  # no difference from the baseline, no share
    assert found.values[hot].sum() > 0  # the uptake raised the odds of AD
    with torch.no_grad():
        logits = trained(torch.cat([image, baseline]))
    change = float((logits[0, 1] - logits[0, 0]) - (logits[1, 1] - logits[1, 0]))
    assert found.log_odds_change == pytest.approx(change, rel=1e-4)
    assert float(found.values.sum()) == pytest.approx(change, rel=0.05)  # completeness
    assert found.completeness_error == pytest.approx(float(found.values.sum()) - change, abs=1e-3)


def test_the_attribution_baseline_is_the_brain_at_reference_uptake_as_the_network_sees_it():
    baseline = attribution.baseline_image()[0, 0].numpy()
    brain = preprocessing.downsample(preprocessing.template_brain().astype(np.float32))
    assert np.allclose(baseline, brain * attribution.BASELINE_SUVR)
    assert baseline.max() == attribution.BASELINE_SUVR and baseline.min() == 0.0


def test_region_sensitivity_ranks_the_region_that_carries_the_signal_first():
    atlas = np.zeros((4, 4, 4), int)
    atlas[:2], atlas[2:, :2], atlas[2:, 2:] = 1, 2, 3
    sensitivity = np.where(atlas == 2, 0.3, 0.01)
    sensitivity[atlas == 3] = -0.2
    table = region_sensitivity(
        sensitivity, atlas, {"a": [1], "b": [2], "c": [3], "none": [9]}, "toy"
    )
    assert table["region"].tolist() == ["b", "a", "c", "none"]
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert np.isnan(table.loc[3, "sensitivity_mean"]) and table.loc[3, "n_voxels"] == 0
    assert top_regions(table, "toy") == ["b", "a"]  # negative regions never count as drivers


def test_the_summary_names_the_dk_region_and_braak_stage_of_a_signal(templateflow_home):
    dk = np.asarray(nib.load(templates.atlas_path("DK")).dataobj)
    sensitivity = np.where(np.isin(dk, atlases.dk_indices(["hippocampus"])), 0.2, 0.0)
    table = inference.regional_summary(sensitivity)
    assert set(table["atlas"]) == {"DK", "Braak"}
    assert not table["region"].str.startswith(("left-", "right-", "BraakI_")).any()
    assert {"thalamus", "entorhinal", "cerebellum-cortex"} <= set(table["region"])
    assert not {"vessel", "cerebral-white-matter", "csf"} & set(table["region"])
    assert top_regions(table, "DK") == ["hippocampus"]
    assert top_regions(table, "Braak")[0] == "BraakII"  # the hippocampus is Braak stage II


def test_outputs_hold_the_probability_label_map_and_regions(tmp_path, templateflow_home):
    source = tmp_path / "sub-01_ses-1_trc-AV1451_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz"
    outputs = inference.output_paths(source, tmp_path / "out")
    assert outputs.occlusion_map.name == (
        "sub-01_ses-1_trc-AV1451_space-MNI152NLin6Asym_res-2_desc-occlusion_map.nii.gz"
    )
    values = np.zeros(preprocessing.INPUT_SHAPE, np.float32)
    values[20, 20, 20] = 0.4
    sensitivity = inference.OcclusionMap(values, mask_voxels=3, overlap=0.0)
    inference.save_outputs(inference.Prediction(0.61, 0.7), sensitivity, outputs, {"version": "x"})
    record = json.loads(outputs.prediction.read_text())
    assert record["Label"] == "CN" and record["ADProbability"] == 0.61
    assert record["OccluderSUVR"] == 1.0 and record["OcclusionMaskMM"] == 12
    image = nib.load(outputs.occlusion_map)
    assert image.shape == preprocessing.TEMPLATE_SHAPE
    assert np.allclose(image.affine, preprocessing.template_affine())
    assert np.asarray(image.dataobj)[40:42, 40:42, 40:42].min() == pytest.approx(0.4)
    table = pd.read_csv(outputs.regions, sep="\t")
    assert list(table.columns) == ["atlas", "region", "sensitivity_mean", "sensitivity_max",
                                   "n_voxels", "rank"]  # fmt: skip
    assert not outputs.attribution_map.exists()  # an older bundle config passes no attribution
    assert "AttributionSteps" not in record


def test_outputs_add_the_attribution_map_its_regions_and_its_record(tmp_path, templateflow_home):
    source = tmp_path / "sub-01_ses-1_trc-AV1451_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz"
    outputs = inference.output_paths(source, tmp_path / "out")
    assert outputs.attribution_map.name == (
        "sub-01_ses-1_trc-AV1451_space-MNI152NLin6Asym_res-2_desc-attribution_map.nii.gz"
    )
    occlusion = inference.OcclusionMap(
        np.zeros(preprocessing.INPUT_SHAPE, np.float32), mask_voxels=3, overlap=0.0
    )
    dk = np.asarray(nib.load(templates.atlas_path("DK")).dataobj)
    precuneus = np.isin(dk, atlases.dk_indices(["precuneus"])).astype(np.float32)
    values = 0.3 * preprocessing.downsample(precuneus)  # 4 mm blocks partly in the precuneus
    found = attribution.AttributionMap(values, 32, 2.5, -0.01)
    inference.save_outputs(inference.Prediction(0.9, 0.5), occlusion, outputs, {}, found)
    record = json.loads(outputs.prediction.read_text())
    assert record["AttributionSteps"] == 32 and record["AttributionBaselineSUVR"] == 1.0
    assert record["AttributionLogOddsChange"] == 2.5
    assert record["AttributionCompletenessError"] == -0.01
    assert record["AttributionTopDKRegions"][0] == "precuneus"
    assert record["TopDKRegions"] == []  # the occlusion map was zero: nothing raised P(AD)
    written = np.asarray(nib.load(outputs.attribution_map).dataobj)
    assert np.array_equal(written, preprocessing.to_template_grid(values))
    table = pd.read_csv(outputs.attribution_regions, sep="\t")
    assert table.loc[(table.atlas == "DK") & (table["rank"] == 1), "region"].item() == "precuneus"


def test_uptake_outside_the_template_brain_never_reaches_the_network(templateflow_home):
    """Scalp, skull and meninges uptake (off-target binding that differs by tracer and site)
    is cut before the network: a scan with a hot head outside the brain gives the same input,
    so the same P(AD), as the scan with nothing there."""
    rng = np.random.default_rng(3)
    scan = rng.uniform(0.8, 1.6, preprocessing.TEMPLATE_SHAPE).astype(np.float32)
    brain = preprocessing.template_brain()
    hot_head = np.where(brain, scan, 3.5)
    nothing_outside = np.where(brain, scan, 0.0)
    seen = preprocessing.network_input(hot_head)
    assert np.array_equal(seen, preprocessing.network_input(nothing_outside))
    assert seen.max() > 0.8 and np.all(
        seen[preprocessing.downsample(brain.astype(np.float32)) == 0] == 0
    )
