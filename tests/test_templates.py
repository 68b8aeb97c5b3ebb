"""The working template resolves through the TemplateFlow API, also with no network."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from taupet_bids import templates

NO_NETWORK = textwrap.dedent(
    """
    import socket

    def _refuse(*args, **kwargs):
        raise OSError("network unreachable (blocked by the test)")

    socket.socket.connect = _refuse
    socket.create_connection = _refuse
    """
)

RESOLVE = textwrap.dedent(
    """
    import json, sys
    from taupet_bids import templates
    from templateflow import api
    paths = {
        "t1w": str(templates.t1w_path(2)),
        "mask": str(templates.brain_mask_path(1)),
        "braak": str(templates.atlas_path("Braak", 2)),
        "ref": str(templates.reference_mask_path("InfCerebGrey", 2)),
        "api": str(api.get("MNI152NLin6Asym", resolution=1, desc=None, suffix="T1w")),
    }
    json.dump(paths, sys.stdout)
    """
)


@pytest.mark.integration  # copies TemplateFlow into a new home (seconds)
def test_templates_resolve_offline_in_a_fresh_home(tmp_path: Path) -> None:
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(NO_NETWORK)
    home = tmp_path / "tf"
    env = {**os.environ, "TEMPLATEFLOW_HOME": str(home), "PYTHONPATH": str(blocker)}
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    paths = json.loads(done.stdout)
    for path in paths.values():
        assert Path(path).is_relative_to(home)
        assert Path(path).stat().st_size > 1000
    assert nib.load(paths["api"]).shape == (182, 218, 182)


def test_grids_match_the_templateflow_description(templateflow_home: Path) -> None:
    folder = templateflow_home / "tpl-MNI152NLin6Asym"
    description = json.loads((folder / "template_description.json").read_text())
    for res in ("01", "02"):
        img = nib.load(templates.t1w_path(int(res)))
        assert list(img.shape) == description["res"][res]["shape"]
        assert np.allclose(img.header.get_zooms(), description["res"][res]["zooms"])
        assert nib.aff2axcodes(img.affine) == ("L", "A", "S")
    assert description["Identifier"] == templates.TEMPLATE


def test_template_is_a_head_with_a_brain_inside(templateflow_home: Path) -> None:
    head = np.asarray(nib.load(templates.t1w_path(2)).dataobj)
    brain = np.asarray(nib.load(templates.brain_mask_path(2)).dataobj) > 0
    stripped = np.asarray(nib.load(templates.t1w_path(2, brain=True)).dataobj)
    head_voxels = (head > 0.1 * head.max()).sum()
    assert 1.2e6 < brain.sum() * 8 < 2.2e6  # brain volume in mm3 (1.2-2.2 L)
    assert head_voxels > 1.3 * brain.sum()  # skull and scalp are present
    assert np.all(stripped[~brain] == 0)


def test_unknown_reference_region_is_a_clear_error(templateflow_home: Path) -> None:
    try:
        templates.reference_mask_path("Cortex")
    except KeyError as error:
        assert "InfCerebGrey" in str(error)
    else:
        raise AssertionError("an unknown reference region must be rejected")
