"""FSL factories: only their command lines can be checked (no FSL binaries here)."""

import nibabel as nib
import numpy as np
import pytest

from taupet_bids.interfaces.fsl import flirt_coregistration, fsl_available, mcflirt


@pytest.fixture
def images(tmp_path):
    paths = []
    for name, shape in (("pet.nii.gz", (8, 8, 8, 3)), ("t1w.nii.gz", (8, 8, 8))):
        path = tmp_path / name
        nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)), path)
        paths.append(str(path))
    return paths


def test_fsl_available_follows_fsldir(tmp_path, monkeypatch):
    monkeypatch.delenv("FSLDIR", raising=False)
    assert not fsl_available()
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("FSLDIR", str(tmp_path))
    monkeypatch.setenv("PATH", "/nonexistent")
    assert not fsl_available()
    for program in ("flirt", "mcflirt"):
        (tmp_path / "bin" / program).write_text("")
    assert fsl_available()


def test_mcflirt_cmdline(images):
    cmd = mcflirt(images[0]).cmdline
    assert cmd.startswith("mcflirt ")
    for flag in ("-in " + images[0], "-meanvol", "-plots", "-mats", "-rmsabs", "-dof 6"):
        assert flag in cmd


def test_flirt_cmdline_is_rigid_normmi(images):
    cmd = flirt_coregistration(images[0], images[1]).cmdline
    assert cmd.startswith("flirt ")
    for flag in ("-in " + images[0], "-ref " + images[1], "-dof 6", "-cost normmi"):
        assert flag in cmd
    assert "-searchcost normmi" in cmd
    assert "-omat " in cmd
