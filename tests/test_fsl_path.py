"""The FSL path (--use-fsl): graph wiring and the converters; FSL binaries are not run here."""

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
from nipype.interfaces import fsl

from taupet_bids.cli.parser import parse_args
from taupet_bids.core.motion import mcflirt_motion_table
from taupet_bids.core.registration import fsl_to_itk
from taupet_bids.workflows.coregistration import init_coregistration_wf
from taupet_bids.workflows.pet import init_pet_preproc_wf

FRAMES = SimpleNamespace(frames=(0, 1, 2), frame_duration_min=(5.0, 5.0, 5.0))


def _plan(use_fsl: bool = False) -> SimpleNamespace:
    """The plan fields the PET and coregistration factories read."""
    return SimpleNamespace(
        checked=FRAMES, use_fsl=use_fsl, seed=42, omp_nthreads=1, units_scale=1.0,
        smooth_to_fwhm_mm=None, smooth_kernel_mm=None,
    )  # fmt: skip


def _interfaces(workflow) -> dict:
    return {name: workflow.get_node(name).interface for name in workflow.list_node_names()}


def test_pet_preproc_uses_mcflirt_when_asked() -> None:
    nodes = _interfaces(init_pet_preproc_wf(_plan(use_fsl=True)))
    assert isinstance(nodes["mcflirt"], fsl.MCFLIRT)
    assert nodes["mcflirt"].inputs.save_plots and nodes["mcflirt"].inputs.dof == 6
    assert "motion_correct" not in nodes
    default = _interfaces(init_pet_preproc_wf(_plan()))
    assert "motion_correct" in default and "mcflirt" not in default


def test_coregistration_uses_flirt_when_asked() -> None:
    nodes = _interfaces(init_coregistration_wf(_plan(use_fsl=True)))
    assert isinstance(nodes["flirt"], fsl.FLIRT)
    assert nodes["flirt"].inputs.cost == "normmi" and nodes["flirt"].inputs.dof == 6
    assert "pet_to_t1w" in _interfaces(init_coregistration_wf(_plan()))


def test_mcflirt_parameters_become_our_motion_table(tmp_path) -> None:
    par = tmp_path / "mc.par"
    np.savetxt(par, [[0, 0, 0, 0, 0, 0], [0, 0, np.radians(2.0), 1.5, 0, 0]])
    table = mcflirt_motion_table(str(par))
    assert table.loc[1, "rot_z"] == pytest.approx(2.0)
    assert table.loc[1, "trans_x"] == pytest.approx(1.5)
    expected_fd = 1.5 + 50 * np.radians(2.0)
    assert table.loc[1, "framewise_displacement"] == pytest.approx(expected_fd)


def test_flirt_matrix_becomes_an_itk_transform(tmp_path) -> None:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -31
    for name in ("ref", "mov"):
        nib.save(
            nib.Nifti1Image(np.ones((32, 32, 32), np.float32), affine), tmp_path / f"{name}.nii.gz"
        )
    shift = np.eye(4)
    shift[1, 3] = 5.0
    np.savetxt(tmp_path / "flirt.mat", shift)
    out = fsl_to_itk(
        str(tmp_path / "flirt.mat"), str(tmp_path / "ref.nii.gz"), str(tmp_path / "mov.nii.gz"),
        str(tmp_path / "itk.txt"),
    )  # fmt: skip
    parameters = open(out).read().split("Parameters: ")[1].split("\n")[0].split()
    np.testing.assert_allclose([float(p) for p in parameters], [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 5, 0])


def test_use_fsl_without_fsl_is_refused(monkeypatch, capsys) -> None:
    monkeypatch.delenv("FSLDIR", raising=False)
    with pytest.raises(SystemExit):
        parse_args(["/data", "/out", "participant", "--use-fsl"])
    assert "FSLDIR" in capsys.readouterr().err
