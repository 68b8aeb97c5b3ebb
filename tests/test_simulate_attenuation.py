"""Attenuation physics of the simulator: HU -> mu, mu-maps, and the PET-MR bias field.

The physics tests use a small synthetic head of concentric spheres (brain, CSF, a 7 mm skull,
scalp) so that the numbers can be read against published magnitudes.
"""

from __future__ import annotations

import numpy as np
import pytest

from taupet_bids.simulate.attenuation import ct, hounsfield, mumaps, projection
from taupet_bids.simulate.template import BONE, BRAIN, MENINGES, OUTSIDE, SOFT_TISSUE

VOXEL_MM = 2.0
BRAIN_MM, CSF_MM, SKULL_MM, SCALP_MM = 70.0, 3.0, 7.0, 5.0


@pytest.fixture(scope="module")
def sphere_head() -> tuple[np.ndarray, np.ndarray]:
    """Head layers of concentric spheres on a 2 mm grid, and each voxel's radius (mm)."""
    shape = (96, 96, 96)
    centre = (np.array(shape) - 1) / 2
    radius = np.sqrt(((np.indices(shape) - centre.reshape(3, 1, 1, 1)) ** 2).sum(0)) * VOXEL_MM
    layers = np.full(shape, OUTSIDE, np.uint8)
    for code, outer in (
        (SOFT_TISSUE, BRAIN_MM + CSF_MM + SKULL_MM + SCALP_MM),
        (BONE, BRAIN_MM + CSF_MM + SKULL_MM),
        (MENINGES, BRAIN_MM + CSF_MM),
        (BRAIN, BRAIN_MM),
    ):
        layers[radius <= outer] = code
    return layers, radius


def _bias(layers: np.ndarray, bone_hu: float, spec: mumaps.MuMapSpec) -> np.ndarray:
    true_mu = hounsfield.mu_511(ct.ct_from_layers(layers, bone_hu))
    emission = np.select([layers == BRAIN, layers == OUTSIDE], [1.0, 0.0], 0.5)
    assumed = mumaps.mu_map(spec, layers, true_mu, VOXEL_MM)
    return projection.bias_field(emission, true_mu, assumed, VOXEL_MM)


def _cortex_and_centre(bias: np.ndarray, layers: np.ndarray, radius: np.ndarray):
    """Mean bias (%) in the brain's outer 5 mm and within 15 mm of its centre."""
    cortex = (layers == BRAIN) & (radius > BRAIN_MM - 5.0)
    return 100 * (bias[cortex].mean() - 1), 100 * (bias[radius < 15.0].mean() - 1)


def test_hounsfield_conversion_is_bilinear_and_continuous():
    assert float(hounsfield.mu_511(-1000.0)) == 0.0
    assert float(hounsfield.mu_511(0.0)) == pytest.approx(0.096)
    below, above = hounsfield.mu_511([46.999, 47.001])
    assert above == pytest.approx(below, abs=1e-4)  # the published coefficients are rounded
    low, high = hounsfield.mu_511(list(ct.BONE_HU_RANGE))
    assert 0.13 < low < 0.14 and 0.17 < high < 0.18
    water, _, bone_low, bone_high = np.diff(hounsfield.mu_511([-500.0, 0.0, 100.0, 600.0, 1100.0]))
    assert water / 500.0 == pytest.approx(hounsfield.WATER_SLOPE_PER_CM, rel=1e-3)
    assert bone_low / 500.0 == pytest.approx(hounsfield.BONE_SLOPE_PER_CM, rel=1e-3)
    assert bone_high == pytest.approx(bone_low, rel=1e-3)


def test_ct_gives_each_layer_its_number(sphere_head):
    layers, _ = sphere_head
    hu = ct.ct_from_layers(layers, 1234.0)
    assert set(np.unique(hu[layers == BONE])) == {1234.0}
    assert set(np.unique(hu[layers == OUTSIDE])) == {hounsfield.AIR_HU}
    assert 20.0 <= float(hu[layers == BRAIN].mean()) <= 45.0


def test_mr_mu_maps_get_bone_wrong_in_their_own_way(sphere_head):
    layers, _ = sphere_head
    true_mu = hounsfield.mu_511(ct.ct_from_layers(layers, 1100.0))
    bone = layers == BONE
    maps = {
        m: mumaps.mu_map(mumaps.random_spec(np.random.default_rng(3), m), layers, true_mu, 2.0)
        for m in mumaps.METHODS
    }
    np.testing.assert_array_equal(maps["ct"], true_mu)
    assert np.allclose(maps["dixon"][bone], mumaps.SOFT_TISSUE_MU)
    assert np.all(maps["ute"][bone] < true_mu[bone])
    assert np.all(maps["ute"][bone] > mumaps.SOFT_TISSUE_MU)
    for method in ("dixon", "ute"):
        np.testing.assert_array_equal(maps[method][~bone], true_mu[~bone])
    atlas_bone = maps["atlas"] > mumaps.SOFT_TISSUE_MU + 0.02
    assert 0.2 < (atlas_bone & ~bone).sum() / bone.sum() < 0.8


def test_atlas_shift_is_two_to_four_mm():
    for seed in range(20):
        spec = mumaps.random_spec(np.random.default_rng(seed), "atlas")
        assert 2.0 <= np.linalg.norm(spec.shift_mm) <= 4.0


def test_ct_mu_map_leaves_no_bias(sphere_head):
    layers, _ = sphere_head
    bias = _bias(layers, 1100.0, mumaps.MuMapSpec("ct"))
    assert np.abs(bias - 1).max() < 1e-6


@pytest.mark.parametrize(
    ("bone_hu", "cortex_range", "centre_range"),
    [(700.0, (-12.0, -7.0), (-5.0, -2.5)), (1500.0, (-21.0, -15.0), (-9.0, -5.5))],
)
def test_dixon_under_reads_cortex_and_centre(sphere_head, bone_hu, cortex_range, centre_range):
    """Skull mu 0.13-0.17 /cm: the toy of issue 16 gives cortex -9 to -19 %, centre -4 to -8 %."""
    layers, radius = sphere_head
    cortex, centre = _cortex_and_centre(
        _bias(layers, bone_hu, mumaps.MuMapSpec("dixon")), layers, radius
    )
    assert cortex_range[0] < cortex < cortex_range[1]
    assert centre_range[0] < centre < centre_range[1]


def test_dixon_loss_grows_from_centre_to_edge(sphere_head):
    layers, radius = sphere_head
    bias = _bias(layers, 1100.0, mumaps.MuMapSpec("dixon"))
    shells = [(radius >= lo) & (radius < lo + 10.0) & (layers == BRAIN) for lo in range(0, 70, 10)]
    means = [float(bias[shell].mean()) for shell in shells]
    assert all(a > b for a, b in zip(means, means[1:], strict=False))
    assert means[0] < 1.0


def test_ute_biases_less_than_dixon(sphere_head):
    layers, radius = sphere_head
    dixon = _cortex_and_centre(_bias(layers, 1100.0, mumaps.MuMapSpec("dixon")), layers, radius)
    ute = _cortex_and_centre(
        _bias(layers, 1100.0, mumaps.MuMapSpec("ute", bone_scale=0.7)), layers, radius
    )
    assert dixon[0] < ute[0] < 0.0
    assert dixon[1] < ute[1] < 0.0
