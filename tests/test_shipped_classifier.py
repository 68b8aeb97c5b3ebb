"""The shipped AD-vs-CN bundle on scans painted by the simulator's uptake model on the template.

These scans are the simulator's tau-free levels plus Braak-staged tau, smoothed by a 6 mm PSF,
on the template's own labels: easier than the held-out cohorts of the benchmark (which go
through the whole pipeline), so a failure here means the bundle is broken, not merely weak.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy import ndimage

from taupet_bids import templates
from taupet_bids.classification import attribution, inference, preprocessing
from taupet_bids.classification.bundle import SHIPPED_CLASSIFIER, load_classifier, read_card
from taupet_bids.simulate import uptake
from taupet_bids.simulate.template import load_template
from taupet_bids.training.classifier_card import render_card

#: Gaussian SD (2 mm voxels) of a 6 mm FWHM PSF.
PSF_SIGMA = 6.0 / 2.3548 / 2.0
#: SUVR per Braak stage of the painted scans (the middle of the simulator's range).
UNIT = float(np.mean(uptake.AMPLITUDE_PER_STAGE))
#: Global scale changes (a reference-region error) that must not change a clear label, and the
#: most P(AD) may move under them.
SCALES = (0.95, 1.05)
SCALE_TOLERANCE = 0.2


@pytest.fixture(autouse=True)
def two_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="module")
def classifier(templateflow_home):
    return load_classifier(SHIPPED_CLASSIFIER)


def painted_scan(stage: int, seed: int) -> np.ndarray:
    """A template-space SUVR image of one simulated person at ``stage``, network input size."""
    rng = np.random.default_rng(seed)
    profile = uptake.random_profile(rng)
    state = uptake.TauState(stage, uptake.stage_amplitude(stage, UNIT))
    suvr = uptake.suvr_map(profile, state, load_template())
    return preprocessing.downsample(ndimage.gaussian_filter(suvr, PSF_SIGMA))


def probability(classifier, image: np.ndarray) -> float:
    tensor = torch.from_numpy(image)[None, None]
    return inference.infer(classifier.network, classifier.inferer, tensor)


def test_the_shipped_card_is_its_metadata_rendered(classifier):
    card = read_card(SHIPPED_CLASSIFIER)
    assert card.sha256 == classifier.metadata["taupet_bids"]["model_sha256"]
    readme = (SHIPPED_CLASSIFIER / "docs" / "README.md").read_text()
    assert readme == render_card(classifier.metadata)


@pytest.mark.parametrize("seed", [11, 12])
def test_braak_vi_is_called_ad_and_braak_0_cn(classifier, seed):
    assert probability(classifier, painted_scan(6, seed)) >= classifier.threshold
    assert probability(classifier, painted_scan(0, seed)) < classifier.threshold


@pytest.mark.parametrize("stage", [0, 6])
def test_a_global_scale_change_keeps_a_clear_label(classifier, stage):
    image = painted_scan(stage, seed=13)
    base = probability(classifier, image)
    for scale in SCALES:
        moved = probability(classifier, image * np.float32(scale))
        assert (moved >= classifier.threshold) == (base >= classifier.threshold)
        assert abs(moved - base) <= SCALE_TOLERANCE


#: How far above chance (the Braak regions' share of the brain) the attribution map's top 10 %
#: must fall inside the regions that carry the painted tau (measured: 45 % against 8 % chance
#: at stage IV, 59-60 % against 29 % at stage VI).
ABOVE_CHANCE = 0.20


@pytest.mark.parametrize("stage", [4, 6])
def test_the_attribution_map_of_a_painted_scan_lies_in_its_braak_regions(classifier, stage):
    rng = np.random.default_rng(21)
    state = uptake.TauState(stage, uptake.stage_amplitude(stage, UNIT))
    suvr = uptake.suvr_map(uptake.random_profile(rng), state, load_template())
    image = preprocessing.network_input(ndimage.gaussian_filter(suvr, PSF_SIGMA))
    found = attribution.attribution_map(classifier.network, torch.from_numpy(image)[None, None])
    assert abs(found.completeness_error) < 0.01 * abs(found.log_odds_change)
    full = preprocessing.to_template_grid(found.values)
    brain = preprocessing.template_brain()
    top = brain & (full > 0) & (full >= np.quantile(full[brain & (full > 0)], 0.9))
    braak = np.asarray(nib.load(templates.atlas_path("Braak")).dataobj).astype(int)
    carrying = (braak >= 1) & (braak <= stage)
    chance = (carrying & brain).sum() / brain.sum()
    assert (top & carrying).sum() / top.sum() > chance + ABOVE_CHANCE
