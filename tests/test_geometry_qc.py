"""The tracer-independent geometry QC of a normalised PET (normalisation/geometry_qc.py).

Phantoms of the simulator's other anatomy (a realistic head with scalp, skull, face and neck,
not the template) are put on the template grid as a correct normalisation would put them, with
three uptake patterns: tau-like, flat, and FDG-like (bright cortex). None may be flagged; the
same images moved by 10 mm, scaled by 10 % or pitched by 12 degrees must be.
"""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from taupet_bids import templates
from taupet_bids.core import qc as core_qc
from taupet_bids.core.grids import apply_affine, linear_coordinates, rigid_matrix, sample
from taupet_bids.normalisation import geometry_qc
from taupet_bids.normalisation.qc import normalisation_qc

#: PSF of the simulated scanner (mm FWHM) and noise (SD relative to the 99th percentile).
FWHM_MM = 6.5
NOISE = 0.03


@pytest.fixture(scope="module")
def phantoms(templateflow_home):
    """tau-like, flat and FDG-like SUVR maps of the other anatomy, blurred by the PSF."""
    from taupet_bids.simulate import uptake
    from taupet_bids.simulate.other_anatomy import load_other_anatomy

    other = load_other_anatomy()
    profile = uptake.random_profile(np.random.default_rng(3), realistic=True)
    tau = uptake.suvr_map(profile, uptake.TauState(5, 0.4), other)
    flat = tau.copy()
    flat[other.brain_mask] = 1.0
    fdg = tau.copy()
    fdg[other.brain_mask] = 2.0
    fdg[other.dk >= 1000] = 5.0  # cortex
    sigma = FWHM_MM / 2.355 / abs(other.grid_2mm.affine[0, 0])
    maps = {"tau": tau, "flat": flat, "fdg": fdg}
    return {k: ndimage.gaussian_filter(v, sigma) for k, v in maps.items()}, other.grid_2mm.affine


def _on_template(phantoms, pattern: str, move: np.ndarray | None = None) -> np.ndarray:
    """The phantom on the template 2 mm grid; ``move`` maps template points to phantom points."""
    maps, affine = phantoms
    move = np.eye(4) if move is None else move
    reference = nib.load(templates.t1w_path(templates.WORKING_RESOLUTION))
    points = apply_affine(move, linear_coordinates(reference.affine, reference.shape))
    values = sample(maps[pattern], affine, points)
    noise = np.random.default_rng(1).normal(0, NOISE * np.percentile(values, 99), values.shape)
    return (values + noise * (values > 1e-3)).astype(np.float32)


def _reference() -> np.ndarray:
    return np.asarray(nib.load(templates.reference_mask_path("InfCerebGrey")).dataobj) > 0


@pytest.mark.parametrize("pattern", ["tau", "flat", "fdg"])
def test_a_correct_normalisation_is_not_flagged_whatever_the_tracer(phantoms, pattern):
    values = geometry_qc.geometry_qc(_on_template(phantoms, pattern), _reference())
    assert values["GeometryFlags"] == []
    assert values["HeadShiftMm"] < 3.0 and abs(values["HeadScalePct"]) < 3.0
    assert values["HeadDice"] > 0.97 and values["ReferenceInHead"] == 1.0
    assert values["PosteriorFossaOutlineMm"] < 3.0


MOVES = {
    "10 mm posterior": rigid_matrix(np.zeros(3), np.array([0.0, 10.0, 0.0])),
    "10 mm inferior": rigid_matrix(np.zeros(3), np.array([0.0, 0.0, -10.0])),
    "10 % too small": np.diag([0.9, 0.9, 0.9, 1.0]),
    "10 % too large": np.diag([1.1, 1.1, 1.1, 1.0]),
    "pitched 12 degrees": rigid_matrix(np.array([12.0, 0.0, 0.0]), np.zeros(3)),
}


@pytest.mark.parametrize("pattern", ["tau", "fdg"])
@pytest.mark.parametrize("case", list(MOVES))
def test_a_shifted_or_scaled_normalisation_is_flagged(phantoms, pattern, case):
    values = geometry_qc.geometry_qc(_on_template(phantoms, pattern, MOVES[case]), _reference())
    assert values["GeometryFlags"], values
    if case.startswith("10 mm"):
        assert values["HeadShiftMm"] == pytest.approx(10.0, abs=2.0)
    elif case.startswith("pitched"):
        assert values["HeadRotationDeg"] > geometry_qc.MAX_HEAD_ROTATION_DEG
    else:
        assert abs(values["HeadScalePct"]) > geometry_qc.MAX_HEAD_SCALE_PCT


def test_a_short_field_of_view_is_not_read_as_a_miss(phantoms):
    """Slices beyond the PET's axial field of view (zero) are left out, not read as air."""
    pet = _on_template(phantoms, "tau")
    z = linear_coordinates(nib.load(templates.t1w_path(2)).affine, pet.shape)[2]
    pet[(z > 70) | (z < -50)] = 0.0
    values = geometry_qc.geometry_qc(pet, _reference())
    assert values["GeometryFlags"] == [] and values["HeadShiftMm"] < 3.0


def test_qc_record_carries_geometry_and_the_refinement_disagreement(phantoms):
    pet = _on_template(phantoms, "fdg")
    record = normalisation_qc(pet, "InfCerebGrey", refinement_shift_mm=6.5)
    assert record["RefinementShiftMm"] == 6.5 and "HeadShiftMm" in record
    assert any("refinement moved" in flag for flag in record["Flags"])
    assert "RefinementShiftMm" not in normalisation_qc(pet, "InfCerebGrey")
    metrics = core_qc.normalisation_metrics(record)
    assert metrics["refinement_shift_mm"] == 6.5
    assert metrics["head_shift_mm"] == record["HeadShiftMm"]
    assert math.isnan(core_qc.normalisation_metrics({})["head_dice"])
