"""Frame selection and duration-weighted averaging: exact numbers, and as Nipype nodes."""

import nibabel as nib
import numpy as np
import pytest
from nipype import Node, Workflow

from taupet_bids.core.frames import select_frames, time_weighted_average
from taupet_bids.errors import InputError
from taupet_bids.interfaces.frames import SelectFrames, TimeWeightedAverage


def constant_series(values: list[float], shape=(4, 5, 6)) -> np.ndarray:
    return np.stack([np.full(shape, v, dtype=np.float32) for v in values], axis=-1)


def test_select_frames_exact_and_single_frame_is_3d():
    data = constant_series([1, 2, 3, 4])
    picked = select_frames(data, [1, 3])
    assert picked.shape == (4, 5, 6, 2)
    assert picked[0, 0, 0].tolist() == [2, 4]
    assert select_frames(data, [2]).shape == (4, 5, 6)
    assert select_frames(data[..., 0], [0]).shape == (4, 5, 6)
    with pytest.raises(ValueError, match="out of range"):
        select_frames(data, [4])


def test_time_weighted_average_exact():
    data = constant_series([1, 2, 4])
    mean = time_weighted_average(data, [60, 120, 60])
    assert mean.shape == (4, 5, 6)
    np.testing.assert_allclose(mean, (60 * 1 + 120 * 2 + 60 * 4) / 240)
    three_d = data[..., 0]
    np.testing.assert_array_equal(time_weighted_average(three_d, []), three_d)
    with pytest.raises(ValueError, match="durations"):
        time_weighted_average(data, [60, 60])


def test_select_then_average_as_nipype_workflow(tmp_path):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    pet = tmp_path / "pet.nii.gz"
    nib.save(nib.Nifti1Image(constant_series([1, 2, 3, 6]), affine), pet)

    select = Node(SelectFrames(in_file=str(pet), frame_indices=[1, 2, 3]), name="select")
    average = Node(TimeWeightedAverage(frame_durations=[300, 300, 600]), name="average")
    wf = Workflow(name="frames_wf", base_dir=str(tmp_path))
    wf.connect(select, "out_file", average, "in_file")
    graph = wf.run()

    results = {node.name: node.result.outputs for node in graph.nodes()}
    cut = nib.load(results["select"].out_file)
    assert cut.shape == (4, 5, 6, 3)
    out = nib.load(results["average"].out_file)
    assert out.shape == (4, 5, 6)
    np.testing.assert_allclose(out.affine, affine)
    np.testing.assert_allclose(out.get_fdata(), (300 * 2 + 300 * 3 + 600 * 6) / 1200, rtol=1e-6)


def test_average_of_4d_without_durations_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pet = tmp_path / "pet.nii.gz"
    nib.save(nib.Nifti1Image(constant_series([1, 2]), np.eye(4)), pet)
    with pytest.raises(InputError, match="pet.nii.gz: 0 frame durations for 2 frames"):
        TimeWeightedAverage(in_file=str(pet)).run()


def test_frames_are_scaled_as_they_are_cut_and_unscaled_ones_pass_bit_for_bit(tmp_path):
    """kBq/mL -> Bq/mL happens before motion correction, so every later step sees Bq/mL."""
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    pet = tmp_path / "pet.nii.gz"
    series = constant_series([1.5, 2.5, 3.5])
    nib.save(nib.Nifti1Image(series, affine), pet)
    scaled = SelectFrames(in_file=str(pet), frame_indices=[1, 2], scale=1000.0).run(cwd=tmp_path)
    np.testing.assert_allclose(nib.load(scaled.outputs.out_file).get_fdata()[0, 0, 0], [2500, 3500])
    (tmp_path / "plain").mkdir()
    plain = SelectFrames(in_file=str(pet), frame_indices=[1, 2]).run(cwd=tmp_path / "plain")
    kept = np.asarray(nib.load(plain.outputs.out_file).dataobj)
    assert kept.dtype == series.dtype and np.array_equal(kept, series[..., 1:])
