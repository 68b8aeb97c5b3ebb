"""The MR-less ANTs baseline: one simulated PET, in several poses, against the blurred truth."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from taupet_bids import templates
from taupet_bids.core.suvr import compute_suvr
from taupet_bids.errors import InputError
from taupet_bids.interfaces.mrless import ANTsPETNormalisation
from taupet_bids.interfaces.registration import ApplyTransforms
from taupet_bids.normalisation.ants_baseline import prepare_pet
from taupet_bids.simulate import CohortConfig, load_truth, simulate_cohort, truth_value
from taupet_bids.simulate.template import load_template
from taupet_bids.simulate.truth import regional_table

#: Not 9100: that cohort built the shipped tau PET template.
SEED = 8123


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, templateflow_home) -> Path:
    root = tmp_path_factory.mktemp("ants_baseline") / "bids"
    config = CohortConfig(n_subjects=1, seed=SEED, n_frames=1, jobs=1)
    simulate_cohort(root, config, log=lambda line: None)
    return root


def _rotation(degrees: float, axis: int) -> np.ndarray:
    angle = np.deg2rad(degrees)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    matrix = np.eye(4)
    matrix[i, i] = matrix[j, j] = np.cos(angle)
    matrix[i, j], matrix[j, i] = -np.sin(angle), np.sin(angle)
    return matrix


def _posed(dataset: Path, out: Path, degrees: float, axis: int, shift_mm: float, order) -> Path:
    """The simulated PET moved in the scanner (rotated about its centre, shifted), axes reordered.

    Only the header changes, so the truth still applies: the head is simply somewhere else.
    """
    pet = nib.load(dataset / "sub-001" / "pet" / "sub-001_trc-18FAV1451_pet.nii.gz")
    data = np.asarray(pet.dataobj, dtype=np.float32)
    data = data[..., 0] if data.ndim == 4 else data
    centre = pet.affine @ np.r_[(np.array(data.shape) - 1) / 2, 1]
    to_centre, back = np.eye(4), np.eye(4)
    to_centre[:3, 3] = -centre[:3]
    back[:3, 3] = centre[:3] + shift_mm * np.ones(3) / np.sqrt(3)
    affine = back @ _rotation(degrees, axis) @ to_centre @ pet.affine
    reordered = np.eye(4)
    reordered[:3, :3] = affine[:3, :3][:, order]
    reordered[:3, 3] = affine[:3, 3]
    nib.save(nib.Nifti1Image(np.transpose(data, order), reordered), out)
    return out


def _regional_suvr(pet_std: str) -> pd.DataFrame:
    """Regional SUVR of a template-space PET, in the simulator's truth-table layout."""
    pet = nib.load(pet_std).get_fdata()
    reference = nib.load(templates.reference_mask_path("InfCerebGrey")).get_fdata()
    suvr, _, _ = compute_suvr(pet, reference)
    return pd.DataFrame(regional_table(suvr, load_template()))


POSES = {
    "as-acquired": (0.0, 0, 0.0, (0, 1, 2)),
    "pitch30-shift40": (30.0, 0, 40.0, (0, 1, 2)),
    "yaw-30-shift40-axes-zxy": (-30.0, 2, 40.0, (2, 0, 1)),
}


@pytest.mark.parametrize("pose", sorted(POSES))
def test_normalised_pet_matches_the_blurred_truth(dataset, tmp_path, monkeypatch, pose) -> None:
    monkeypatch.chdir(tmp_path)
    moving = _posed(dataset, tmp_path / "pet.nii.gz", *POSES[pose])
    result = ANTsPETNormalisation(in_file=str(moving), seed=1, num_threads=1).run().outputs
    assert len(result.transforms) == 1 and result.transforms[0].endswith(".mat")
    assert result.similarity > 0.75

    reference = str(templates.t1w_path(2))
    warped = nib.load(result.warped_file)
    np.testing.assert_allclose(warped.affine, nib.load(reference).affine)
    resampled = ApplyTransforms(
        in_file=str(moving), reference_image=reference, transforms=result.transforms
    ).run()
    measured = _regional_suvr(resampled.outputs.out_file)
    truth = load_truth(dataset, "001", kind="blurred")

    metatemporal = truth_value(measured, "MetaTemporal", "metatemporal")
    expected = truth_value(truth, "MetaTemporal", "metatemporal")
    assert abs(metatemporal / expected - 1) < 0.03, (metatemporal, expected)
    both = measured.merge(truth, on=["atlas", "region"], suffixes=("", "_truth"))
    dk = both[both.atlas == "DK"]
    assert (dk.suvr / dk.suvr_truth - 1).abs().mean() < 0.03


def test_deformable_stage_adds_a_warp(dataset, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    moving = _posed(dataset, tmp_path / "pet.nii.gz", *POSES["as-acquired"])
    result = ANTsPETNormalisation(in_file=str(moving), deformable=True).run().outputs
    warp, affine = result.transforms
    assert warp.endswith("Warp.nii.gz") and affine.endswith(".mat")
    measured = _regional_suvr(result.warped_file)
    expected = truth_value(
        load_truth(dataset, "001", kind="blurred"), "MetaTemporal", "metatemporal"
    )
    assert abs(truth_value(measured, "MetaTemporal", "metatemporal") / expected - 1) < 0.08


def test_empty_pet_is_refused(tmp_path) -> None:
    empty = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), empty)
    with pytest.raises(InputError, match="no positive voxel"):
        prepare_pet(str(empty), str(tmp_path / "out.nii.gz"))
