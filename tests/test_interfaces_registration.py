"""antspyx registration, resampling, N4 and template brain masks on a synthetic phantom."""

import os

# ITK fixes its thread count at the first multi-threaded call of the process: one thread keeps
# the seeded registrations reproducible. Set at collection time, before any antspyx work.
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"

import ants  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from nipype import Node, Workflow  # noqa: E402

from taupet_bids.core.motion import motion_parameters, transform_affine_lps  # noqa: E402
from taupet_bids.core.registration import register, transform_points  # noqa: E402
from taupet_bids.interfaces.registration import (  # noqa: E402
    ApplyTransforms,
    N4BiasCorrect,
    RegisterImages,
    TemplateBrainMask,
)
from tests.phantoms import phantom  # noqa: E402

SHIFT, ROT = (4.0, -3.0, 2.0), (2.0, -3.0, 5.0)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reg")
    fixed, affine = phantom()
    moving, _ = phantom(SHIFT, ROT)
    paths = {"fixed": fixed, "moving": moving, "mask": (fixed > 0.5).astype(np.uint8)}
    for name, data in paths.items():
        nib.save(nib.Nifti1Image(data, affine), folder / f"{name}.nii.gz")
    return {name: str(folder / f"{name}.nii.gz") for name in paths} | {"dir": folder}


def test_rigid_registration_recovers_known_transform_deterministically(images, monkeypatch):
    monkeypatch.chdir(images["dir"])
    runs = [
        register(images["fixed"], images["moving"], f"run{i}_", metric="meansquares", seed=7)
        for i in range(2)
    ]
    transform = runs[0]["forward_transforms"][0]
    params = motion_parameters(*transform_affine_lps(transform), np.zeros(3))
    np.testing.assert_allclose(params[:3], SHIFT, atol=0.5)
    np.testing.assert_allclose(params[3:], ROT, atol=0.5)
    second = ants.read_transform(runs[1]["forward_transforms"][0]).parameters
    np.testing.assert_array_equal(ants.read_transform(transform).parameters, second)
    assert runs[0]["correlation"] > 0.99 and runs[0]["nmi"] > 1.2
    assert runs[0]["inverse_invert_flags"] == [True]


def test_register_apply_roundtrip_and_brain_mask_as_workflow(images, tmp_path):
    reg = Node(
        RegisterImages(
            fixed_image=images["fixed"], moving_image=images["moving"], transform_type="Rigid"
        ),
        name="reg",
    )
    forward = Node(
        ApplyTransforms(in_file=images["moving"], reference_image=images["fixed"]), name="fwd"
    )
    back = Node(ApplyTransforms(reference_image=images["moving"]), name="back")
    mask = Node(
        TemplateBrainMask(in_file=images["moving"], template_mask=images["mask"]), name="mask"
    )
    wf = Workflow(name="reg_wf", base_dir=str(tmp_path))
    wf.config["execution"]["remove_unnecessary_outputs"] = False
    wf.connect([
        (reg, forward, [("forward_transforms", "transforms")]),
        (forward, back, [("out_file", "in_file")]),
        (reg, back, [("inverse_transforms", "transforms"),
                     ("inverse_invert_flags", "invert_transform_flags")]),
        (reg, mask, [("inverse_transforms", "transforms"),
                     ("inverse_invert_flags", "invert_transform_flags")]),
    ])  # fmt: skip
    out = {node.name: node.result.outputs for node in wf.run().nodes()}

    fixed = nib.load(images["fixed"]).get_fdata()
    moving = nib.load(images["moving"]).get_fdata()
    warped = nib.load(out["fwd"].out_file)
    assert warped.get_data_dtype() == np.float32
    assert corr(warped.get_fdata(), fixed) > 0.95
    inside = fixed > 0.5
    before = np.abs(moving - fixed)[inside].mean()
    assert np.abs(warped.get_fdata() - fixed)[inside].mean() < before / 3
    assert out["reg"].correlation > 0.95
    # forward then inverse: back on the moving image (identity up to two interpolations)
    assert corr(nib.load(out["back"].out_file).get_fdata(), moving) > 0.98

    brain_mask = nib.load(out["mask"].out_mask)
    assert brain_mask.shape == moving.shape
    np.testing.assert_allclose(brain_mask.affine, nib.load(images["moving"]).affine)
    truth = moving > 0.5
    got = brain_mask.get_fdata() > 0
    assert 2 * (got & truth).sum() / (got.sum() + truth.sum()) > 0.95
    assert np.all(nib.load(out["mask"].out_file).get_fdata()[~got] == 0)


def test_apply_transforms_4d_and_labels(images, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fixed = nib.load(images["fixed"])
    series = np.stack([fixed.get_fdata(), 2 * fixed.get_fdata()], axis=-1).astype(np.float32)
    nib.save(nib.Nifti1Image(series, fixed.affine), tmp_path / "series.nii.gz")
    shift = ants.create_ants_transform(transform_type="AffineTransform", dimension=3)
    shift.set_parameters([1, 0, 0, 0, 1, 0, 0, 0, 1, 0.0, 0.0, 3.0])  # one voxel along z
    ants.write_transform(shift, str(tmp_path / "shift.mat"))

    run = ApplyTransforms(
        in_file=str(tmp_path / "series.nii.gz"),
        reference_image=images["fixed"],
        transforms=[str(tmp_path / "shift.mat")],
    ).run()
    out = nib.load(run.outputs.out_file)
    assert out.shape == series.shape
    # output(x) = input(x + 3 mm along z): a one-voxel shift
    np.testing.assert_allclose(out.get_fdata()[:, :, :-1], series[:, :, 1:], atol=1e-4)

    labels = np.zeros(fixed.shape, np.int16)
    labels[20:40, 20:40, 20:40] = 7
    nib.save(nib.Nifti1Image(labels, fixed.affine), tmp_path / "labels.nii.gz")
    run = ApplyTransforms(
        in_file=str(tmp_path / "labels.nii.gz"),
        reference_image=images["fixed"],
        transforms=[str(tmp_path / "shift.mat")],
        interpolation="genericLabel",
    ).run()
    resampled = nib.load(run.outputs.out_file)
    assert np.issubdtype(resampled.get_data_dtype(), np.integer)
    assert set(np.unique(resampled.get_fdata())) == {0, 7}


def test_n4_reduces_multiplicative_bias(tmp_path):
    clean, affine = phantom(shape=(48, 48, 48), vox=4.0)
    x = np.linspace(-1, 1, 48)[:, None, None]
    biased = (clean * np.exp(0.4 * x) * np.ones((1, 48, 48))).astype(np.float32)
    nib.save(nib.Nifti1Image(biased, affine), tmp_path / "t1w.nii.gz")
    node = Node(N4BiasCorrect(in_file=str(tmp_path / "t1w.nii.gz")), name="n4")
    wf = Workflow(name="n4_wf", base_dir=str(tmp_path))
    wf.config["execution"]["remove_unnecessary_outputs"] = False
    wf.add_nodes([node])
    out = next(iter(wf.run().nodes())).result.outputs
    corrected = nib.load(out.out_file).get_fdata()
    assert nib.load(out.bias_field).shape == biased.shape
    # a flat-intensity compartment: the large ellipsoid minus the small blobs
    region = (clean > 2.45) & (clean < 2.55)

    def cv(data):
        return data[region].std() / data[region].mean()

    assert region.sum() > 1000
    assert cv(corrected) < 0.6 * cv(biased)


def test_transform_points_moves_ras_points_through_an_lps_transform_and_its_inverse(tmp_path):
    shift = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, translation=(1.0, 2.0, 3.0)
    )
    path = str(tmp_path / "shift.mat")
    ants.write_transform(shift, path)
    points = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    moved = transform_points(points, [path])
    expected = points + np.array([-1.0, -2.0, 3.0])[:, None, None]  # LPS (1, 2, 3) in RAS
    np.testing.assert_allclose(moved, expected, atol=1e-4)
    assert moved.shape == points.shape
    np.testing.assert_allclose(transform_points(moved, [path], [True]), points, atol=1e-4)
