"""Motion correction recovers known head motion; FD and LPS->RAS conventions are exact."""

import os

# ITK fixes its thread count at the first multi-threaded call of the process: one thread keeps
# the seeded registrations reproducible. Set at collection time, before any antspyx work.
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from nipype import Node, Workflow  # noqa: E402

from taupet_bids.core.motion import (  # noqa: E402
    MOTION_COLUMNS,
    euler_degrees,
    framewise_displacement,
    motion_parameters,
)
from taupet_bids.interfaces.motion import MotionCorrect  # noqa: E402
from tests.phantoms import phantom, rotation  # noqa: E402


def test_framewise_displacement_power():
    params = np.zeros((4, 6))
    params[1, :3] = [1, 2, 0]
    params[2, :3] = [1, 2, 3]
    params[3, :3] = [1, 2, 3]
    params[3, 5] = 1.0  # one degree about z: 50 mm * pi / 180
    np.testing.assert_allclose(framewise_displacement(params), [0, 3, 3, 50 * np.pi / 180])


def test_lps_transform_reported_in_ras():
    lps_offset = np.array([1.0, 2.0, 3.0])
    params = motion_parameters(np.eye(3), lps_offset, center_ras=np.array([10.0, 0, 0]))
    np.testing.assert_allclose(params, [-1, -2, 3, 0, 0, 0])
    ras = rotation((2, -3, 5))
    flip = np.diag([-1.0, -1.0, 1.0])
    params = motion_parameters(flip @ ras @ flip, np.zeros(3), center_ras=np.zeros(3))
    np.testing.assert_allclose(params[3:], [2, -3, 5], atol=1e-9)
    np.testing.assert_allclose(euler_degrees(rotation((0, 0, 30))), [0, 0, 30], atol=1e-9)


def test_motion_correct_recovers_known_motion(tmp_path):
    motions = [((0, 0, 0), (0, 0, 0)), ((3, 0, 0), (0, 0, 0)), ((3, 4, 0), (0, 0, 0))]
    motions.append(((3, 4, 0), (0, 0, 3)))
    frames = [phantom(shift, rot)[0] for shift, rot in motions]
    affine = phantom()[1]
    pet = tmp_path / "sub-01_pet.nii.gz"
    nib.save(nib.Nifti1Image(np.stack(frames, axis=-1), affine), pet)

    node = Node(MotionCorrect(in_file=str(pet), frame_durations=[300.0] * 4), name="mc")
    wf = Workflow(name="motion_wf", base_dir=str(tmp_path))
    wf.config["execution"]["remove_unnecessary_outputs"] = False
    wf.add_nodes([node])
    outputs = next(iter(wf.run().nodes())).result.outputs

    table = pd.read_csv(outputs.motion_params, sep="\t")
    assert list(table.columns) == ["frame", *MOTION_COLUMNS, "framewise_displacement"]
    relative = table[MOTION_COLUMNS].to_numpy() - table[MOTION_COLUMNS].to_numpy()[0]
    expected = np.array([[*shift, *rot] for shift, rot in motions], dtype=float)
    np.testing.assert_allclose(relative[:, :3], expected[:, :3], atol=0.5)
    np.testing.assert_allclose(relative[:, 3:], expected[:, 3:], atol=0.5)
    # pure translations: 3 mm along x, then 4 mm along y
    np.testing.assert_allclose(table["framewise_displacement"][:3], [0, 3, 4], atol=0.3)
    assert len(outputs.transforms) == 4 and all(t.endswith(".mat") for t in outputs.transforms)

    corrected = nib.load(outputs.out_file)
    assert corrected.shape == (64, 64, 64, 4)
    data = corrected.get_fdata()
    inside = frames[0] > 0.5
    for index in range(1, 4):
        before = np.abs(frames[index] - frames[0])[inside].mean()
        after = np.abs(data[..., index] - data[..., 0])[inside].mean()
        assert after < before / 4


def test_single_frame_passes_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame, affine = phantom(shape=(16, 16, 16))
    pet = tmp_path / "static_pet.nii.gz"
    nib.save(nib.Nifti1Image(frame, affine), pet)
    outputs = MotionCorrect(in_file=str(pet)).run().outputs
    np.testing.assert_array_equal(nib.load(outputs.out_file).get_fdata(), frame)
    table = pd.read_csv(outputs.motion_params, sep="\t")
    assert len(table) == 1 and (table.drop(columns="frame").to_numpy() == 0).all()
    assert len(outputs.transforms) == 1
