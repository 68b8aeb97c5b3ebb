"""The shipped MR-less bundle runs through MONAI's own bundle runner and gives the pipeline's field.

MONAI's runner (``python -m monai.bundle run``) and ``ConfigWorkflow`` read only the bundle's
configs; the pipeline loads the same config through :func:`load_normaliser`. Both must write
the same ITK displacement field, and both must refuse weights whose checksum does not match.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.bundle import ConfigWorkflow

from taupet_bids import templates
from taupet_bids.models.bundle import CONFIG, METADATA, ModelIntegrityError
from taupet_bids.normalisation import inference
from taupet_bids.normalisation.bundle import SHIPPED_BUNDLE, load_normaliser
from tests.phantoms import phantom

#: Largest difference (mm) between runner and pipeline fields: the same code, maybe other threads.
FIELD_ATOL_MM = 1e-3
#: Keys MONAI's metadata schema (meta_schema_20220324.json) requires.
MONAI_REQUIRED_METADATA = (
    "version",
    "changelog",
    "monai_version",
    "pytorch_version",
    "numpy_version",
    "task",
    "description",
    "authors",
    "copyright",
    "network_data_format",
)


@pytest.fixture(scope="module")
def pet_file(tmp_path_factory, templateflow_home) -> Path:
    """A small head-like PET, rotated and shifted, in a 4-D file with one frame."""
    volume, affine = phantom(shift=(6, -10, 4), rot=(12, -5, 20))
    path = tmp_path_factory.mktemp("bundle") / "sub-01_trc-AV1451_pet.nii.gz"
    nib.Nifti1Image(volume[..., None], affine).to_filename(path)
    return path


@pytest.fixture(scope="module")
def pipeline_field(pet_file, tmp_path_factory) -> np.ndarray:
    """The field the pipeline's own calls write for ``pet_file``."""
    volume, affine = inference.read_pet(pet_file)
    result = inference.normalise(volume, affine, load_normaliser())
    out = tmp_path_factory.mktemp("pipeline") / "field.nii.gz"
    inference.write_itk_displacement(result, nib.load(templates.t1w_path(2)), str(out))
    return np.asarray(nib.load(out).dataobj)


def monai_run(bundle: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run`` on ``bundle``, as the model card documents it."""
    command = [
        sys.executable, "-m", "monai.bundle", "run",
        "--config_file", str(bundle / CONFIG),
        "--meta_file", str(bundle / METADATA),
        "--bundle_root", str(bundle),
        *overrides,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())


def test_monai_runner_writes_the_pipelines_field(pet_file, pipeline_field, tmp_path):
    done = monai_run(SHIPPED_BUNDLE, "--input_file", str(pet_file), "--output_dir", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    written = tmp_path / "sub-01_trc-AV1451_from-pet_to-MNI152NLin6Asym_mode-image_xfm.nii.gz"
    assert str(written) in done.stdout
    field = nib.load(written)
    assert np.allclose(field.affine, nib.load(templates.t1w_path(2)).affine)
    values = np.asarray(field.dataobj)
    assert values.shape == pipeline_field.shape
    assert np.abs(pipeline_field).max() > 1.0  # a real mapping, not an empty field
    assert np.abs(values - pipeline_field).max() < FIELD_ATOL_MM


def test_config_workflow_runs_the_bundle_in_process(pet_file, pipeline_field, tmp_path):
    workflow = ConfigWorkflow(
        config_file=str(SHIPPED_BUNDLE / CONFIG),
        meta_file=str(SHIPPED_BUNDLE / METADATA),
        logging_file=False,
        workflow_type=None,
        bundle_root=str(SHIPPED_BUNDLE),
        input_file=str(pet_file),
        output_dir=str(tmp_path),
    )
    workflow.initialize()
    (written,) = workflow.run()
    workflow.finalize()
    assert np.abs(np.asarray(nib.load(written).dataobj) - pipeline_field).max() < FIELD_ATOL_MM


def test_runner_and_pipeline_refuse_tampered_weights(pet_file, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(SHIPPED_BUNDLE, copy)
    weights = copy / "models" / "model.pt"
    raw = bytearray(weights.read_bytes())
    raw[-100] ^= 0xFF
    weights.write_bytes(bytes(raw))
    done = monai_run(copy, "--input_file", str(pet_file), "--output_dir", str(tmp_path / "out"))
    assert done.returncode != 0
    assert "ModelIntegrityError" in done.stderr and "does not match" in done.stderr
    assert not (tmp_path / "out").exists()
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_normaliser(copy)


def test_shipped_metadata_has_monais_required_keys_and_the_weights_checksum():
    meta = json.loads((SHIPPED_BUNDLE / METADATA).read_text())
    missing = [key for key in MONAI_REQUIRED_METADATA if key not in meta]
    assert not missing
    assert meta["version"] in meta["changelog"]
    assert len(meta["taupet_bids"]["model_sha256"]) == 64


def test_shipped_model_card_is_rendered_from_the_shipped_metadata():
    from taupet_bids.training.normaliser_card import render_card

    meta = json.loads((SHIPPED_BUNDLE / METADATA).read_text())
    assert (SHIPPED_BUNDLE / "docs" / "README.md").read_text() == render_card(meta)
