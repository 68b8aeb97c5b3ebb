"""``taupet-bids --tracer FDG --synthesize tau-from-fdg`` end to end on one simulated participant.

The FDG scan is processed like any scan (pons SUVR on the template grid); its SUVR is the input
of a tiny Dense-U-Net trained for one step. Its numbers mean nothing; this checks that the path
runs, and that the synthetic tau image and tables are named, described and tabulated as
synthetic, and never taken for a measured scan.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import pandas as pd
import pytest
import torch

from taupet_bids.training.synthesis import TrainConfig, train
from taupet_bids.training.synthesis_card import export_trained_bundle
from tests.synthesis_cohort import TRACER, write_cohort

SPACE = "space-MNI152NLin6Asym"
DESC = "desc-syntheticFromFDG"


def taupet_bids(*args) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("taupet-bids")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def run(tmp_path_factory, templateflow_home) -> dict:
    root = tmp_path_factory.mktemp("synthesis_fdg_cli")
    bids, out = root / "bids", root / "out"
    simulate = Path(sys.executable).with_name("taupet-bids-simulate")
    subprocess.run([simulate, bids, "--n-subjects", "1", "--seed", "13", "--single-frame",
                    "--jobs", "1", "--modalities", "tau", "fdg"],
                   check=True, capture_output=True)  # fmt: skip
    torch.set_num_threads(1)
    config = TrainConfig(
        root / "train", [write_cohort(root / "cohort", n=3, other=("fdg",))],
        task="tau-from-fdg", seed=3, steps=1, batch_size=1, checkpoint_every=1,
        features=[4, 8], growth=2, layers=1,
    )  # fmt: skip
    bundle = export_trained_bundle(config, train(config, log=lambda _: None), root / "bundle")
    participant = taupet_bids(
        bids, out, "participant", "-w", root / "work", "--skip-bids-validation",
        "--tracer", "FDG", "--synthesize", "tau-from-fdg", "--synthesis-model", bundle,
        "--regional-mask", "template", "--nprocs", "1",
    )  # fmt: skip
    group = taupet_bids(bids, out, "group")
    return {"out": out, "participant": participant, "group": group}


def test_the_fdg_scan_gets_a_labelled_synthetic_tau_image_and_tables(run):
    done = run["participant"]
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    pet = run["out"] / "sub-001" / "pet"
    measured_fdg = pet / f"sub-001_trc-18FFDG_{SPACE}_res-2_desc-suvr_pet.nii.gz"
    assert measured_fdg.is_file()
    image = pet / f"sub-001_trc-{TRACER}_{SPACE}_res-2_{DESC}_pet.nii.gz"
    assert nib.load(image).shape == (91, 109, 91)
    sidecar = json.loads(image.with_name(image.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["Synthetic"] is True and sidecar["SynthesisSource"] == "FDG"
    assert sidecar["SynthesisTask"] == "tau-from-fdg"
    assert sidecar["Sources"] == ["bids:raw:sub-001/pet/sub-001_trc-18FFDG_pet.nii.gz"]
    table = (
        pet / f"sub-001_trc-{TRACER}_{SPACE}_seg-MetaTemporal_label-InfCerebGrey_{DESC}_suvr.tsv"
    )
    assert pd.read_csv(table, sep="\t")["suvr_mean"].notna().any()
    assert json.loads(table.with_suffix(".json").read_text())["Synthetic"] is True
    # No template-space T1w is written for it: the network read the FDG scan's SUVR.
    assert not list((run["out"] / "sub-001").glob("anat/*_space-*_desc-preproc_T1w.nii.gz"))
    report = (run["out"] / "sub-001.html").read_text()
    assert "Synthetic: sub-001" in report and "measured scan of this session" not in report


def test_group_tables_keep_the_synthetic_tau_apart_from_the_measured_fdg(run):
    assert run["group"].returncode == 0, run["group"].stderr[-3000:]
    wide = pd.read_csv(run["out"] / "group" / "suvr_wide.tsv", sep="\t")
    synthetic = wide[wide["synthetic"]]
    assert list(synthetic["participant_id"]) == ["sub-001"]
    assert set(synthetic["method"]) == {"SUVR-syntheticFromFDG"}
    assert set(wide[~wide["synthetic"]]["method"]) == {"SUVR"}
