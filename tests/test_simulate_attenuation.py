"""Attenuation physics of the simulator: HU -> mu, mu-maps, the PET-MR bias field, and pairs.

The physics tests use a small synthetic head of concentric spheres (brain, CSF, a 7 mm skull,
scalp) so that the numbers can be read against published magnitudes; one real phantom subject
checks that pairs land in the BIDS dataset and its truth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from taupet_bids.simulate import CohortConfig, find_truth, load_truth, simulate_cohort
from taupet_bids.simulate.attenuation import ct, hounsfield, mumaps, projection, spheres
from taupet_bids.simulate.cli import build_parser
from taupet_bids.simulate.template import BONE, BRAIN, OUTSIDE

VALIDATOR = Path(sys.executable).with_name("bids-validator-deno")

VOXEL_MM = 2.0


@pytest.fixture(scope="module")
def sphere_head() -> tuple[np.ndarray, np.ndarray]:
    """Head layers of concentric spheres on a 2 mm grid, and each voxel's radius (mm)."""
    return spheres.sphere_head(VOXEL_MM)


def _bias(layers: np.ndarray, bone_hu: float, spec: mumaps.MuMapSpec) -> np.ndarray:
    true_mu = hounsfield.mu_511(ct.ct_from_layers(layers, bone_hu))
    assumed = mumaps.mu_map(spec, layers, true_mu, VOXEL_MM)
    return projection.bias_field(spheres.sphere_emission(layers), true_mu, assumed, VOXEL_MM)


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
    cortex, centre = spheres.cortex_and_centre(
        _bias(layers, bone_hu, mumaps.MuMapSpec("dixon")), layers, radius
    )
    assert cortex_range[0] < cortex < cortex_range[1]
    assert centre_range[0] < centre < centre_range[1]


def test_dixon_loss_grows_from_centre_to_edge(sphere_head):
    layers, radius = sphere_head
    bias = _bias(layers, 1100.0, mumaps.MuMapSpec("dixon"))
    shells = [(radius >= lo) & (radius < lo + 10) & (layers == BRAIN) for lo in range(0, 70, 10)]
    means = [float(bias[shell].mean()) for shell in shells]
    assert all(a > b for a, b in zip(means, means[1:], strict=False))
    assert means[0] < 1.0


def test_ute_biases_less_than_dixon(sphere_head):
    layers, radius = sphere_head
    dixon = spheres.cortex_and_centre(
        _bias(layers, 1100.0, mumaps.MuMapSpec("dixon")), layers, radius
    )
    ute = spheres.cortex_and_centre(
        _bias(layers, 1100.0, mumaps.MuMapSpec("ute", bone_scale=0.7)), layers, radius
    )
    assert dixon[0] < ute[0] < 0.0
    assert dixon[1] < ute[1] < 0.0


@pytest.fixture(scope="module")
def pair(templateflow_home, tmp_path_factory) -> Path:
    """One subject of the default anatomy imaged as a PET-CT/PET-MR (Dixon) pair, with its CT."""
    out = tmp_path_factory.mktemp("sim") / "pair"
    config = CohortConfig(n_subjects=1, seed=3, n_frames=1, jobs=1, pet_mr="dixon", write_ct=True)
    simulate_cohort(out, config, log=lambda line: None)
    return out


def test_pair_is_two_pets_told_apart_by_rec_and_sidecar(pair):
    pet = pair / "sub-001" / "pet"
    sidecars = {
        rec: json.loads((pet / f"sub-001_trc-18FAV1451_rec-{rec}_pet.json").read_text())
        for rec in ("ctac", "mrac")
    }
    assert sidecars["ctac"]["AttenuationCorrection"] == "CT-based"
    assert sidecars["mrac"]["AttenuationCorrection"].startswith("MR-based, Dixon")
    assert sidecars["mrac"]["ManufacturersModelName"] == "Biograph mMR"
    assert sidecars["ctac"]["ManufacturersModelName"] != "Biograph mMR"
    assert sidecars["ctac"]["InjectedRadioactivity"] == sidecars["mrac"]["InjectedRadioactivity"]
    shapes = {nib.load(p).shape for p in pet.glob("*_pet.nii.gz")}
    assert len(shapes) == 2


def test_pair_truth_records_the_method_and_its_bias(pair):
    parameters = json.loads(
        find_truth(pair, "001", kind="sharp", rec="mrac", suffix=".json").read_text()
    )["attenuation_correction"]
    assert parameters["method"] == "dixon"
    assert ct.BONE_HU_RANGE[0] <= parameters["bone_hu"] <= ct.BONE_HU_RANGE[1]
    assert 0.02 <= abs(parameters["calibration_factor"] - 1) <= 0.05
    assert 0.8 < parameters["reference_bias"] < 0.97
    blurred = load_truth(pair, "001", kind="blurred", rec="mrac")
    biased = load_truth(pair, "001", kind="acbiased", rec="mrac")
    ratio = biased["suvr"] / blurred["suvr"]
    assert ratio.max() - ratio.min() > 0.03
    petct = json.loads(find_truth(pair, "001", rec="ctac", suffix=".json").read_text())
    assert petct["attenuation_correction"]["method"] == "ct"


def test_pair_ct_has_the_subjects_skull(pair):
    parameters = json.loads(find_truth(pair, "001", rec="mrac", suffix=".json").read_text())
    hu = np.asarray(nib.load(pair / "sub-001" / "ct" / "sub-001_ct.nii.gz").dataobj)
    bone = round(parameters["attenuation_correction"]["bone_hu"])
    assert hu.min() == -1000
    assert 20_000 < (hu == bone).sum() < 80_000


def test_pair_dataset_is_valid_bids(pair):
    run = subprocess.run(
        [str(VALIDATOR), str(pair), "--format", "json"], capture_output=True, text=True, timeout=300
    )
    report = json.loads(run.stdout)
    assert [i for i in report["issues"]["issues"] if i["severity"] == "error"] == []


@pytest.mark.parametrize(
    "options",
    [
        {"pet_mr": "dixon", "anatomy": "template"},
        {"write_ct": True},
        {"pet_mr": "ute", "rec": "acstat"},
        {"pet_mr": "zte"},
    ],
)
def test_pair_options_that_cannot_work_are_refused(options):
    with pytest.raises(ValueError):
        CohortConfig(n_subjects=1, **options)


def test_cli_takes_pair_options():
    args = build_parser().parse_args(["out", "--pet-mr", "mixed", "--write-ct"])
    assert (args.pet_mr, args.write_ct) == ("mixed", True)
    assert build_parser().parse_args(["out"]).pet_mr is None
