"""``--mr-less-method network+ants``: the short affine refinement of the network's field.

A PET already in template space (a noisy, rescaled copy of the tau PET template) is given a
deliberately wrong "network" field (10 mm shift and 4 degrees of pitch); the refinement must
bring the composed map back towards the identity.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nitransforms.io.itk import ITKDisplacementsField
from scipy import ndimage

from taupet_bids import templates
from taupet_bids.core.grids import apply_affine, linear_coordinates, rigid_matrix
from taupet_bids.normalisation import refinement
from taupet_bids.normalisation.pet_template import pet_template_path


def _write_field(matrix: np.ndarray, reference: nib.Nifti1Image, out_file: str) -> str:
    """ITK field mapping template points x to matrix @ x (RAS)."""
    points = linear_coordinates(reference.affine, reference.shape[:3])
    vectors = apply_affine(matrix, points) - points
    image = nib.Nifti1Image(np.moveaxis(vectors, 0, -1).astype(np.float32), reference.affine)
    ITKDisplacementsField.to_image(image).to_filename(out_file)
    return out_file


def _field_error_mm(field_file: str, mask: np.ndarray) -> float:
    """Mean length of a displacement field over a mask: its distance from the identity."""
    field = np.asarray(ITKDisplacementsField.from_image(nib.load(field_file)).dataobj)
    return float(np.linalg.norm(field[mask], axis=-1).mean())


@pytest.fixture(scope="module")
def pet_in_template_space(tmp_path_factory, templateflow_home):
    folder = tmp_path_factory.mktemp("refine")
    template = nib.load(pet_template_path())
    rng = np.random.default_rng(5)
    data = np.asarray(template.dataobj, dtype=np.float32) * 4000.0
    data = ndimage.gaussian_filter(data + rng.normal(0, 150, data.shape), 1.0)
    path = folder / "pet.nii.gz"
    nib.save(nib.Nifti1Image(np.clip(data, 0, None).astype(np.float32), template.affine), path)
    return folder, str(path)


def test_refinement_undoes_a_perturbed_network_field(pet_in_template_space):
    folder, pet = pet_in_template_space
    reference = nib.load(templates.t1w_path(templates.WORKING_RESOLUTION))
    brain = np.asarray(nib.load(templates.brain_mask_path()).dataobj) > 0
    wrong = rigid_matrix(np.array([4.0, 0.0, 0.0]), np.array([6.0, -8.0, 3.0]))
    field = _write_field(wrong, reference, str(folder / "wrong_field.nii.gz"))
    before = _field_error_mm(field, brain)
    result = refinement.refine_normalisation(pet, field, str(folder / "refine_"))
    after = _field_error_mm(result["transforms"][0], brain)
    assert before > 9.0
    assert after < 2.5, f"refined error {after:.2f} mm (before {before:.2f} mm)"
    # The disagreement the QC reports is the size of the correction.
    assert abs(result["shift_mean_mm"] - before) < 2.5
    assert result["shift_max_mm"] >= result["shift_mean_mm"]


def test_refinement_of_a_correct_field_moves_little(pet_in_template_space):
    folder, pet = pet_in_template_space
    reference = nib.load(templates.t1w_path(templates.WORKING_RESOLUTION))
    brain = np.asarray(nib.load(templates.brain_mask_path()).dataobj) > 0
    field = _write_field(np.eye(4), reference, str(folder / "right_field.nii.gz"))
    result = refinement.refine_normalisation(pet, field, str(folder / "ok_"))
    assert result["shift_mean_mm"] < 1.5
    assert _field_error_mm(result["transforms"][0], brain) < 1.5


def test_a_field_of_view_cutting_the_cerebellum_does_not_stretch_the_brain(
    pet_in_template_space,
):
    """Planes beyond the field of view are empty; matched to the template's cerebellum they
    would pull the brain into the cut. The refinement reads only the covered part."""
    folder, pet = pet_in_template_space
    image = nib.load(pet)
    data = np.asarray(image.dataobj).copy()
    z = linear_coordinates(image.affine, data.shape)[2]
    reference = np.asarray(nib.load(templates.reference_mask_path("InfCerebGrey")).dataobj) > 0
    cut_at = z[reference].min() + 20.0  # through the inferior cerebellum
    data[z < cut_at] = 0.0
    cut = str(folder / "cut_pet.nii.gz")
    nib.save(nib.Nifti1Image(data, image.affine), cut)
    brain = np.asarray(nib.load(templates.brain_mask_path()).dataobj) > 0
    _, unmasked_mm, _ = refinement.short_affine_to_template(cut, str(folder / "unmasked_"))
    reference_image = nib.load(templates.t1w_path(templates.WORKING_RESOLUTION))
    field = _write_field(np.eye(4), reference_image, str(folder / "cut_field.nii.gz"))
    result = refinement.refine_normalisation(cut, field, str(folder / "cut_"))
    assert result["shift_mean_mm"] < 1.5, result
    assert _field_error_mm(result["transforms"][0], brain) < 1.5
    assert unmasked_mm > 2 * result["shift_mean_mm"], (unmasked_mm, result["shift_mean_mm"])


def test_composition_follows_the_affine_then_the_field(tmp_path, templateflow_home):
    """x -> f(R(x)): a pure-shift R and a pure-shift f add up."""
    reference = nib.load(templates.t1w_path(templates.WORKING_RESOLUTION))
    field = _write_field(rigid_matrix(np.zeros(3), np.array([0, 0, 5.0])), reference,
                         str(tmp_path / "f.nii.gz"))  # fmt: skip
    shift = ants_shift = np.array([3.0, 0.0, 0.0])
    import ants

    transform = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, translation=ants_shift * [-1, -1, 1]
    )
    ants.write_transform(transform, str(tmp_path / "r.mat"))
    out = refinement.compose_with_field(str(tmp_path / "r.mat"), field, str(tmp_path / "c.nii.gz"))
    vectors = np.asarray(ITKDisplacementsField.from_image(nib.load(out)).dataobj)
    centre = tuple(s // 2 for s in vectors.shape[:3])
    np.testing.assert_allclose(vectors[centre], shift + [0, 0, 5.0], atol=1e-3)


def test_the_graph_has_the_refinement_only_with_network_plus_ants(tmp_path, templateflow_home):
    from taupet_bids.boilerplate import _mr_less_paragraph
    from taupet_bids.plan import plan_scan
    from taupet_bids.workflows.base import init_participant_wf
    from tests.test_plan import _checked, _config

    checked = _checked(tmp_path, t1w=False)

    def nodes(method: str) -> set[str]:
        config = _config(tmp_path, mr_less_method=method)
        plan = plan_scan(config, checked)
        assert plan.normalisation == method
        names = init_participant_wf([plan], tmp_path / f"work-{method}").list_node_names()
        return {name.split(".")[-1] for name in names}

    refined, plain = nodes("network+ants"), nodes("network")
    assert {"pet_to_template_network", "pet_to_template_refine"} <= refined
    assert "pet_to_template_refine" not in plain and "pet_to_template_network" in plain
    assert "pet_to_template_ants" not in refined
    text = _mr_less_paragraph(_config(tmp_path, mr_less="always", mr_less_method="network+ants"))
    assert "refined by a short affine registration" in text
