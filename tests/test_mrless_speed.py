"""Speed habits of the MR-less path: the network loaded once per process, PyTorch imported only
where it runs."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from taupet_bids.models.bundle import ModelIntegrityError
from taupet_bids.normalisation.bundle import SHIPPED_BUNDLE, cached_normaliser


def test_the_network_is_loaded_once_per_bundle_and_weights(tmp_path):
    first = cached_normaliser()
    assert cached_normaliser(None) is first
    assert cached_normaliser(SHIPPED_BUNDLE) is first
    copy = tmp_path / "bundle"
    shutil.copytree(SHIPPED_BUNDLE, copy)
    other = cached_normaliser(copy)
    assert other is not first and cached_normaliser(copy) is other
    # weights retrained into the same folder: a new key, so loaded (and checksum-checked) again
    weights = copy / "models" / "model.pt"
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match="sha256"):  # refused, not served from cache
        cached_normaliser(copy)


def test_building_the_participant_graph_does_not_import_torch():
    code = (
        "import sys, taupet_bids.workflows.base, taupet_bids.interfaces.mrless, "
        "taupet_bids.normalisation.refinement; "
        "print(sorted(m for m in ('torch', 'monai') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
