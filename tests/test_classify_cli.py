"""``taupet-bids --classify`` end to end: one simulated participant, an untrained tiny bundle.

The bundle's P(AD) means nothing (tests.classification_cohort.write_untrained_bundle); these
tests check that the BIDS App writes, names, describes and gathers the classifier's outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from taupet_bids.classification.bundle import read_card
from tests.classification_cohort import write_untrained_bundle

STEM = "sub-001_trc-18FAV1451"
SPACE = "space-MNI152NLin6Asym_res-2"


def taupet_bids(*args) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("taupet-bids")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def run(tmp_path_factory, templateflow_home) -> dict:
    root = tmp_path_factory.mktemp("classify_cli")
    bids, out = root / "bids", root / "out"
    simulate = Path(sys.executable).with_name("taupet-bids-simulate")
    subprocess.run([simulate, bids, "--n-subjects", "1", "--seed", "13", "--single-frame"],
                   check=True)  # fmt: skip
    bundle = write_untrained_bundle(root / "bundle")
    participant = taupet_bids(
        bids, out, "participant", "-w", root / "work", "--skip-bids-validation",
        "--classify", bundle, "--regional-mask", "template", "--nprocs", "1",
    )  # fmt: skip
    group = taupet_bids(bids, out, "group")
    return {"bids": bids, "out": out, "bundle": bundle, "participant": participant,
            "group": group}  # fmt: skip


def _pet(run: dict) -> Path:
    return run["out"] / "sub-001" / "pet"


def test_the_run_succeeds_and_writes_the_prediction_and_both_maps(run):
    done = run["participant"]
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    record = json.loads((_pet(run) / f"{STEM}_desc-ADvsCN_classification.json").read_text())
    card = read_card(run["bundle"])
    assert record["ModelSHA256"] == card.sha256 and record["ModelVersion"] == card.version
    assert 0 <= record["ADProbability"] <= 1
    assert record["Label"] == ("AD" if record["ADProbability"] >= card.threshold else "CN")
    image = nib.load(_pet(run) / f"{STEM}_{SPACE}_desc-occlusion_map.nii.gz")
    assert image.shape == (91, 109, 91)
    sidecar = json.loads((_pet(run) / f"{STEM}_{SPACE}_desc-occlusion_map.json").read_text())
    assert sidecar["ModelSHA256"] == card.sha256
    regions = pd.read_csv(_pet(run) / f"{STEM}_{SPACE}_desc-occlusion_regions.tsv", sep="\t")
    assert set(regions["atlas"]) == {"DK", "Braak"}
    attribution = nib.load(_pet(run) / f"{STEM}_{SPACE}_desc-attribution_map.nii.gz")
    assert np.asarray(attribution.dataobj).any()
    regions = pd.read_csv(_pet(run) / f"{STEM}_{SPACE}_desc-attribution_regions.tsv", sep="\t")
    assert set(regions["atlas"]) == {"DK", "Braak"}
    assert abs(record["AttributionCompletenessError"]) < 0.05 * max(
        1.0, abs(record["AttributionLogOddsChange"])
    )


def test_report_and_methods_describe_the_classification(run):
    report = (run["out"] / "sub-001.html").read_text()
    assert "AD vs CN classification" in report and "Figure not available" not in report
    assert "by attribution (DK)" in report and "integrated gradients" in report
    citation = (run["out"] / "logs" / "CITATION.md").read_text()
    assert read_card(run["bundle"]).sha256 in citation
    assert "integrated gradients [integratedgradients]" in citation and "Sundararajan" in citation


def test_group_level_lists_the_prediction(run):
    assert run["group"].returncode == 0, run["group"].stderr[-3000:]
    table = pd.read_csv(run["out"] / "group" / "classification.tsv", sep="\t")
    assert list(table["scan"]) == [STEM] and "diagnosis" in table


def test_outputs_pass_the_bids_validator(run):
    validator = Path(sys.executable).with_name("bids-validator-deno")
    done = subprocess.run([validator, "--json", run["out"]], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    issues = json.loads(done.stdout)["issues"]["issues"]
    errors = [issue for issue in issues if issue["severity"] == "error"]
    assert not errors, errors[:3]
