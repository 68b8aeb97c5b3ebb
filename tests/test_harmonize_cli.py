"""``taupet-bids --harmonize auto`` end to end on one simulated ``--pet-mr dixon`` participant,
then ``taupet-bids-train harmoniser`` on that run's outputs and the trained bundle through
MONAI's runner.

The app runs with a tiny untrained bundle whose field is non-zero (tests.harmonisation_bundle),
so the wiring shows; the CT is moved out of the dataset for the app run (never needed at
inference) and back for training (the pseudo-CT head's target).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from taupet_bids.harmonisation import inference
from taupet_bids.harmonisation.bundle import check_bundle, load_harmoniser
from tests.harmonisation_bundle import write_tiny_bundle

MR, CT = "sub-001_trc-18FAV1451_rec-mrac", "sub-001_trc-18FAV1451_rec-ctac"
SPACE = "space-MNI152NLin6Asym_res-2"


def _command(name: str, *args) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name(name)), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def run(tmp_path_factory, templateflow_home) -> dict:
    root = tmp_path_factory.mktemp("harmonize_cli")
    bids, out = root / "bids", root / "out"
    made = _command("taupet-bids-simulate", bids, "--n-subjects", "1", "--seed", "13",
                    "--single-frame", "--pet-mr", "dixon", "--write-ct")  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    shutil.move(bids / "sub-001" / "ct", root / "ct")  # inference must not need it
    bundle = write_tiny_bundle(root / "bundle")
    participant = _command(
        "taupet-bids", bids, out, "participant", "-w", root / "work", "--skip-bids-validation",
        "--regional-mask", "template", "--nprocs", "2", "--harmonize", "auto",
        "--harmonization-model", bundle,
    )  # fmt: skip
    group = _command("taupet-bids", bids, out, "group")
    shutil.move(root / "ct", bids / "sub-001" / "ct")
    return {"root": root, "bids": bids, "out": out, "bundle": bundle,
            "participant": participant, "group": group}  # fmt: skip


def _pet(run: dict) -> Path:
    return run["out"] / "sub-001" / "pet"


def test_only_the_pet_mr_scan_is_harmonised_without_any_ct(run):
    done = run["participant"]
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert f"{MR}_pet.nii.gz: harmonised: AttenuationCorrection" in done.stderr + done.stdout
    assert f"{CT}_pet.nii.gz: not harmonised" in done.stderr + done.stdout
    assert not list(_pet(run).glob(f"{CT}_*harmoni*"))
    measured = _pet(run) / f"{MR}_{SPACE}_desc-suvr_pet.nii.gz"
    harmonized = _pet(run) / f"{MR}_{SPACE}_desc-harmonized_pet.nii.gz"
    log_ratio = _pet(run) / f"{MR}_{SPACE}_desc-harmonization_map.nii.gz"
    values = {p: np.asarray(nib.load(p).dataobj) for p in (measured, harmonized, log_ratio)}
    np.testing.assert_allclose(
        values[harmonized], values[measured] * np.exp(values[log_ratio]), rtol=1e-5, atol=1e-6
    )
    assert np.abs(values[log_ratio]).max() > 1e-3
    sidecar = json.loads(harmonized.with_name(harmonized.name.replace(".nii.gz", ".json"))
                         .read_text())  # fmt: skip
    assert sidecar["HarmonizationAnatomy"] == "subject"
    assert "MR-based" in sidecar["HarmonizationReason"]
    assert sidecar["HarmonizationACMethod"] == "dixon"  # told the method its sidecar names
    assert "AC method given to the harmoniser: dixon" in sidecar["HarmonizationReason"]
    assert sidecar["ModelSHA256"] == check_bundle(run["bundle"]).sha256
    ct_side = json.loads((_pet(run) / f"{CT}_{SPACE}_desc-suvr_pet.json").read_text())
    assert ct_side["Harmonized"] is False and "CT-based" in ct_side["HarmonizationReason"]
    for atlas in ("DK", "Braak", "MetaTemporal"):
        name = f"{MR}_space-MNI152NLin6Asym_seg-{atlas}_label-InfCerebGrey_desc-harmonized_suvr.tsv"
        assert (_pet(run) / name).exists()


def test_report_methods_and_group_describe_it(run):
    report = (run["out"] / "sub-001.html").read_text()
    assert "PET-MR to PET-CT harmonisation" in report
    assert report.count("Figure not available") == 0
    citation = (run["out"] / "logs" / "CITATION.md").read_text()
    assert check_bundle(run["bundle"]).sha256 in citation
    assert run["group"].returncode == 0, run["group"].stderr[-3000:]
    wide = pd.read_csv(run["out"] / "group" / "suvr_wide.tsv", sep="\t")
    rows = wide.set_index(["scan", "method"])["harmonized"]
    assert rows.to_dict() == {(CT, "SUVR"): False, (MR, "SUVR"): False,
                              (MR, "SUVR-harmonized"): True}  # fmt: skip


def test_training_on_the_run_is_deterministic_and_its_bundle_runs_in_monai(run, tmp_path):
    def train(out: Path) -> subprocess.CompletedProcess:
        return _command(
            "taupet-bids-train", "harmoniser", run["out"], "--bids-dir", run["bids"],
            "--out", out, "--steps", "3", "--batch-size", "1", "--channels", "2", "4", "4",
            "--checkpoint-every", "2",
        )  # fmt: skip

    first, second = train(tmp_path / "a"), train(tmp_path / "b")
    for done in (first, second):
        assert done.returncode == 0, done.stderr[-3000:]
    weights = [torch.load(tmp_path / r / "model.pt", weights_only=True) for r in "ab"]
    for part in weights[0]:
        for key, value in weights[0][part].items():
            assert torch.equal(value, weights[1][part][key])
    split = pd.read_csv(tmp_path / "a" / "split.tsv", sep="\t")
    assert list(split["ct"]) == ["sub-001_ct.nii.gz"]
    bundle = tmp_path / "a" / "bundle"
    card = check_bundle(bundle)
    suvr = _pet(run) / f"{MR}_{SPACE}_desc-suvr_pet.nii.gz"
    runner = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "--config_file",
         bundle / "configs" / "inference.json", "--meta_file", bundle / "configs" / "metadata.json",
         "--bundle_root", bundle, "--input_file", suvr, "--ac_method", "dixon",
         "--output_dir", tmp_path / "runner"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert runner.returncode == 0, runner.stderr[-3000:]
    harmoniser = load_harmoniser(bundle)
    image = inference.prepare_files(suvr)
    field = inference.infer(harmoniser.network, harmoniser.inferer, image, "dixon")
    ours = inference.save_outputs(field, suvr, inference.output_paths(suvr, tmp_path / "product"),
                                  harmoniser.metadata, ac_method="dixon")  # fmt: skip
    theirs = inference.output_paths(suvr, tmp_path / "runner")
    np.testing.assert_allclose(nib.load(theirs.suvr).get_fdata(), nib.load(ours.suvr).get_fdata(),
                               atol=1e-3)  # fmt: skip
    theirs_record = json.loads(theirs.record.read_text())
    assert theirs_record["ModelSHA256"] == card.sha256
    assert theirs_record["HarmonizationACMethod"] == "dixon"
    assert theirs_record["HarmonizationConditioning"] == "ct"  # the training default
    assert "taupet-bids-train harmoniser" in (bundle / "docs" / "README.md").read_text()


def test_outputs_pass_the_bids_validator(run):
    validator = Path(sys.executable).with_name("bids-validator-deno")
    done = subprocess.run(
        [validator, "--json", run["out"]], capture_output=True, text=True, timeout=300
    )
    issues = json.loads(done.stdout)["issues"]["issues"]
    errors = [issue for issue in issues if issue["severity"] == "error"]
    assert not errors, errors[:3]
