"""SUVR and regional statistics on constructed images with known answers."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nipype import Node, Workflow

from taupet_bids.core.regions import regional_statistics
from taupet_bids.core.suvr import compute_suvr
from taupet_bids.errors import InputError
from taupet_bids.interfaces.quantification import ComputeSUVR, RegionalStatistics

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])  # 8 ul voxels


def save(path, data, affine=AFFINE):
    nib.save(nib.Nifti1Image(np.asarray(data), affine), path)
    return str(path)


@pytest.fixture
def scene(tmp_path):
    """PET 1..N; reference voxels hold 1 and 3 (mean 2); atlas with labels 1, 2 and 3."""
    pet = np.arange(1, 10 * 10 * 10 + 1, dtype=np.float32).reshape(10, 10, 10)
    ref = np.zeros(pet.shape, np.uint8)
    pet[0, 0, :2] = [1.0, 3.0]
    ref[0, 0, :2] = 1
    atlas = np.zeros(pet.shape, np.int16)
    atlas[5, 5, :3] = 1  # left
    atlas[6, 6, :2] = 2  # right
    labels = pd.DataFrame({"index": [1, 2, 3], "name": ["left-x", "right-x", "absent"]})
    tsv = tmp_path / "labels.tsv"
    labels.to_csv(tsv, sep="\t", index=False)
    return {
        "pet": pet,
        "atlas": atlas,
        "pet_file": save(tmp_path / "pet.nii.gz", pet),
        "ref_file": save(tmp_path / "ref.nii.gz", ref),
        "atlas_file": save(tmp_path / "atlas.nii.gz", atlas),
        "labels_file": str(tsv),
    }


def test_compute_suvr_exact(scene):
    ref = np.zeros(scene["pet"].shape)
    ref[0, 0, :2] = 1
    suvr, value, count = compute_suvr(scene["pet"].astype(float), ref)
    assert value == 2.0 and count == 2
    np.testing.assert_array_equal(suvr, scene["pet"] / 2.0)
    brain = np.zeros_like(ref)
    brain[:5] = 1
    masked, _, _ = compute_suvr(scene["pet"].astype(float), ref, brain)
    assert masked[6:].max() == 0 and masked[4, 4, 4] == scene["pet"][4, 4, 4] / 2


def test_reference_mean_ignores_voxels_outside_the_field_of_view():
    pet = np.full((4, 4, 4), 2.0)
    pet[:, :, 0] = 0.0  # the lowest slice was not in the PET's field of view
    suvr, value, count = compute_suvr(pet, np.ones_like(pet))
    assert value == 2.0 and count == 48
    assert suvr[1, 1, 1] == 1.0


def test_compute_suvr_rejects_empty_and_nonpositive_reference():
    pet = np.ones((3, 3, 3))
    with pytest.raises(ValueError, match="empty"):
        compute_suvr(pet, np.zeros_like(pet))
    with pytest.raises(ValueError, match="<= 0"):
        compute_suvr(-pet, np.ones_like(pet))


def test_suvr_interface_errors_name_the_file(scene, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    empty = save(tmp_path / "empty_ref.nii.gz", np.zeros((10, 10, 10), np.uint8))
    with pytest.raises(InputError, match=r"^empty_ref.nii.gz: reference region is empty"):
        ComputeSUVR(in_file=scene["pet_file"], reference_mask=empty).run()
    shifted = AFFINE.copy()
    shifted[0, 3] = 1.0
    moved = save(tmp_path / "moved_ref.nii.gz", np.ones((10, 10, 10), np.uint8), shifted)
    with pytest.raises(InputError, match=r"^moved_ref.nii.gz: voxel grid"):
        ComputeSUVR(in_file=scene["pet_file"], reference_mask=moved).run()
    small = save(tmp_path / "small_ref.nii.gz", np.ones((9, 10, 10), np.uint8))
    with pytest.raises(InputError, match="differs from that of pet.nii.gz"):
        ComputeSUVR(in_file=scene["pet_file"], reference_mask=small).run()


def test_regional_statistics_exact_grouping_and_empty_regions(scene):
    suvr = scene["pet"].astype(float) / 2
    labels = {1: "left-x", 2: "right-x", 3: "absent"}
    table = regional_statistics(suvr, scene["atlas"], 0.008, labels).set_index("region")
    left = suvr[5, 5, :3]
    assert table.loc["left-x", "suvr_mean"] == pytest.approx(left.mean())
    assert table.loc["left-x", "suvr_median"] == pytest.approx(np.median(left))
    assert table.loc["left-x", "suvr_sd"] == pytest.approx(left.std())
    assert table.loc["left-x", "volume_ml"] == pytest.approx(0.024)
    assert table.loc["absent", "n_voxels"] == 0
    stats = table.loc["absent", ["suvr_mean", "suvr_median", "suvr_sd"]].astype(float)
    assert np.isnan(stats).all()

    groups = {"x": [1, 2], "nothing": [3]}
    grouped = regional_statistics(suvr, scene["atlas"], 0.008, labels, groups).set_index("region")
    both = np.concatenate([left, suvr[6, 6, :2]])
    assert list(grouped.index) == ["x", "nothing"]
    assert grouped.loc["x", "n_voxels"] == 5
    assert grouped.loc["x", "suvr_mean"] == pytest.approx(both.mean())
    assert grouped.loc["x", "suvr_median"] == pytest.approx(np.median(both))
    assert grouped.loc["nothing", "n_voxels"] == 0


def test_suvr_then_regional_statistics_as_nipype_workflow(scene, tmp_path):
    suvr = Node(
        ComputeSUVR(in_file=scene["pet_file"], reference_mask=scene["ref_file"]), name="suvr"
    )
    stats = Node(
        RegionalStatistics(
            atlas_file=scene["atlas_file"],
            labels_file=scene["labels_file"],
            groups={"x": [1, 2], "absent": [3]},
        ),
        name="stats",
    )
    wf = Workflow(name="quant_wf", base_dir=str(tmp_path))
    wf.config["execution"]["remove_unnecessary_outputs"] = False
    wf.connect(suvr, "out_file", stats, "in_file")
    graph = wf.run()
    results = {node.name: node.result.outputs for node in graph.nodes()}

    assert results["suvr"].reference_value == 2.0
    assert results["suvr"].reference_nvoxels == 2
    image = nib.load(results["suvr"].out_file)
    assert image.get_data_dtype() == np.float32
    np.testing.assert_allclose(image.get_fdata(), scene["pet"] / 2.0, rtol=1e-6)
    table = pd.read_csv(results["stats"].out_table, sep="\t").set_index("region")
    assert list(table.columns) == ["suvr_mean", "suvr_median", "suvr_sd", "volume_ml", "n_voxels"]
    expected = np.concatenate([scene["pet"][5, 5, :3], scene["pet"][6, 6, :2]]) / 2.0
    assert table.loc["x", "suvr_mean"] == pytest.approx(expected.mean(), rel=1e-6)
    assert table.loc["x", "volume_ml"] == pytest.approx(0.04)
    assert table.loc["absent", "n_voxels"] == 0 and np.isnan(table.loc["absent", "suvr_mean"])


def test_regions_cut_by_the_field_of_view_are_averaged_over_their_measured_voxels(scene, tmp_path):
    """Voxels beyond the PET's field of view (exactly 0 once resampled) count for no region."""
    suvr = np.full((10, 10, 10), 1.5, np.float32)
    suvr[:, :, 0] = 0.0  # the lowest slice was not in the PET's field of view
    atlas = np.zeros(suvr.shape, np.int16)
    atlas[2:4, 2:4, 0:2] = 1  # half of it in the missing slice
    labels_tsv = tmp_path / "one.tsv"
    labels_tsv.write_text("index\tname\n1\tcut\n")
    out = (
        RegionalStatistics(
            in_file=save(tmp_path / "suvr.nii.gz", suvr),
            atlas_file=save(tmp_path / "cut_atlas.nii.gz", atlas),
            labels_file=str(labels_tsv),
        )
        .run(cwd=str(tmp_path))
        .outputs
    )
    table = pd.read_csv(out.out_table, sep="\t").set_index("region")
    assert table.loc["cut", "suvr_mean"] == pytest.approx(1.5)  # not 0.75
    assert table.loc["cut", "n_voxels"] == 4
    plain = regional_statistics(suvr, atlas, 0.008, {1: "cut"}).set_index("region")
    assert plain.loc["cut", "suvr_mean"] == pytest.approx(0.75)
