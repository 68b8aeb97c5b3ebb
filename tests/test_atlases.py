"""The region images are what they claim to be."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from taupet_bids import atlases, templates
from taupet_bids.atlases import build


def _load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


@pytest.fixture(scope="module")
def dk1(templateflow_home: Path) -> np.ndarray:
    return _load(templates.atlas_path("DK", 1))


def _volume_ml(mask: np.ndarray, resolution: int = 1) -> float:
    return float(mask.sum()) * resolution**3 / 1000.0


def test_region_tables_are_consistent() -> None:
    known = {label.region for label in atlases.dk_labels()}
    staged = [r for regions in atlases.braak_regions().values() for r in regions]
    assert sorted(atlases.braak_regions()) == [1, 2, 3, 4, 5, 6]
    assert set(staged) <= known
    assert len(staged) == len(set(staged)), "a region belongs to one Braak stage only"
    assert set(atlases.metatemporal_regions()) <= set(
        atlases.braak_regions()[1] + atlases.braak_regions()[3] + atlases.braak_regions()[4]
    )
    assert atlases.DEFAULT_REFERENCE in atlases.reference_regions()


@pytest.mark.parametrize("index", [1006, 2006])
def test_entorhinal_volume_is_plausible(dk1: np.ndarray, index: int) -> None:
    assert 1.5 <= _volume_ml(dk1 == index) <= 4.0


def test_every_cortical_dk_region_is_present(dk1: np.ndarray) -> None:
    present = set(np.unique(dk1))
    cortical = [lab.index for lab in atlases.dk_labels() if lab.tissue == "cortex"]
    assert len(cortical) == 68
    assert set(cortical) <= present


def test_inferior_cerebellar_grey_is_inferior_and_grey(dk1: np.ndarray) -> None:
    inferior = _load(templates.reference_mask_path("InfCerebGrey", 1)) > 0
    cerebellar_grey = np.isin(dk1, atlases.dk_indices(["cerebellum-cortex"]))
    superior = cerebellar_grey & ~inferior
    assert 20 < _volume_ml(inferior) < 80
    assert np.all(cerebellar_grey[inferior]), "reference voxels must lie in cerebellar grey"
    z_inferior = np.nonzero(inferior)[2].mean()
    z_superior = np.nonzero(superior)[2].mean()
    assert z_inferior < z_superior - 5  # at least 5 mm lower on average


def test_deep_inferior_cerebellar_grey_keeps_away_from_the_brain_surface(
    templateflow_home: Path,
) -> None:
    inferior = _load(templates.reference_mask_path("InfCerebGrey", 1)) > 0
    deep = _load(templates.reference_mask_path("InfCerebGreyDeep", 1)) > 0
    brain = _load(templates.brain_mask_path(1)) > 0
    depth = ndimage.distance_transform_edt(brain)
    assert np.all(inferior[deep]), "the deep region is part of the inferior cerebellar grey"
    assert depth[deep].min() >= 8.0
    assert depth[inferior].min() < 3.0, "the full region reaches the surface"
    assert 8 < _volume_ml(deep) < 0.6 * _volume_ml(inferior)


def test_targets_and_references_do_not_overlap(templateflow_home: Path) -> None:
    braak = _load(templates.atlas_path("Braak", 1)) > 0
    metatemporal = _load(templates.atlas_path("MetaTemporal", 1)) > 0
    assert np.all(braak[metatemporal]), "meta-temporal regions are Braak regions"
    for label in atlases.reference_regions():
        reference = _load(templates.reference_mask_path(label, 1)) > 0
        assert reference.sum() > 1000, label
        assert not np.any(reference & braak), label


def test_pons_is_a_slab_of_the_brainstem(dk1: np.ndarray) -> None:
    pons = _load(templates.reference_mask_path("Pons", 1)) > 0
    brainstem = dk1 == 16
    assert np.all(brainstem[pons])
    assert 0.2 < pons.sum() / brainstem.sum() < 0.8


@pytest.mark.parametrize("name", ["atlas-DK_dseg", "atlas-Braak_dseg", "label-Pons_mask"])
def test_two_mm_images_sample_the_one_mm_images(templateflow_home: Path, name: str) -> None:
    folder = templateflow_home / f"tpl-{templates.TEMPLATE}"
    fine = _load(folder / f"tpl-{templates.TEMPLATE}_res-01_{name}.nii.gz")
    coarse = nib.load(folder / f"tpl-{templates.TEMPLATE}_res-02_{name}.nii.gz")
    assert np.array_equal(np.asarray(coarse.dataobj), build.downsample_labels(fine))
    assert np.allclose(coarse.affine, build.GRIDS[2][1])


def test_atlas_label_tables_match_the_images(templateflow_home: Path) -> None:
    for atlas in atlases.ATLAS_NAMES:
        rows = atlases.atlas_table(atlas)
        tsv = templates.atlas_labels_path(atlas).read_text().splitlines()
        assert tsv[0] == "index\tname"
        assert len(tsv) == len(rows) + 1
        in_image = set(np.unique(_load(templates.atlas_path(atlas, 1)))) - {0}
        assert in_image <= {int(r["index"]) for r in rows}
