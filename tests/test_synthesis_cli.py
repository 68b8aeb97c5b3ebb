"""``taupet-bids --synthesize tau-from-t1w tspo-from-t1w`` end to end on two simulated
participants.

sub-001 has a T1w and a tau PET (its synthesis reuses the scan's T1w registration and its
report shows measured beside synthetic); sub-002's PET is removed, so it is a T1w-only session
that gets synthetic tau all the same. Both sessions also get synthetic TSPO. The bundles are tiny
networks trained for a step or two: their numbers mean nothing; these tests check naming,
sidecars, report and group tables.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import pandas as pd
import pytest
import torch

from taupet_bids.training.synthesis import TrainConfig, train
from taupet_bids.training.synthesis_card import export_trained_bundle
from tests.synthesis_cohort import TRACER, tiny_config, write_cohort

SPACE = "space-MNI152NLin6Asym"
DESC = "desc-syntheticFromT1w"


def taupet_bids(*args) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("taupet-bids")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def run(tmp_path_factory, templateflow_home) -> dict:
    root = tmp_path_factory.mktemp("synthesis_cli")
    bids, out = root / "bids", root / "out"
    simulate = Path(sys.executable).with_name("taupet-bids-simulate")
    subprocess.run([simulate, bids, "--n-subjects", "2", "--seed", "13", "--single-frame",
                    "--jobs", "1"], check=True, capture_output=True)  # fmt: skip
    shutil.rmtree(bids / "sub-002" / "pet")
    torch.set_num_threads(1)
    config = tiny_config(root / "train", write_cohort(root / "cohort", n=4), steps=2)
    bundle = export_trained_bundle(config, train(config, log=lambda _: None), root / "bundle")
    tspo = TrainConfig(
        root / "train_tspo", [write_cohort(root / "cohort_tspo", n=3, other=("tspo",))],
        task="tspo-from-t1w", seed=3, steps=1, batch_size=1, checkpoint_every=1,
        features=[4, 4, 8], heads_channels=4,
    )  # fmt: skip
    tspo_bundle = export_trained_bundle(tspo, train(tspo, log=lambda _: None), root / "tspo")
    participant = taupet_bids(
        bids, out, "participant", "-w", root / "work", "--skip-bids-validation",
        "--synthesize", "tau-from-t1w", "tspo-from-t1w",
        "--synthesis-model", bundle, tspo_bundle,
        "--regional-mask", "template", "--nprocs", "1",
    )  # fmt: skip
    group = taupet_bids(bids, out, "group")
    return {"out": out, "work": root / "work", "participant": participant, "group": group}


def _image(run: dict, subject: str) -> Path:
    return run["out"] / subject / "pet" / f"{subject}_trc-{TRACER}_{SPACE}_res-2_{DESC}_pet.nii.gz"


def test_every_session_with_a_t1w_gets_a_labelled_synthetic_image(run):
    done = run["participant"]
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    for subject in ("sub-001", "sub-002"):
        image = _image(run, subject)
        assert nib.load(image).shape == (91, 109, 91)
        sidecar = json.loads(image.with_name(image.name.replace(".nii.gz", ".json")).read_text())
        assert sidecar["Synthetic"] is True and sidecar["SynthesisSource"] == "T1w"
        assert sidecar["Sources"] == [f"bids:raw:{subject}/anat/{subject}_T1w.nii.gz"]
        for atlas in ("DK", "Braak", "MetaTemporal"):
            table = image.parent / (
                f"{subject}_trc-{TRACER}_{SPACE}_seg-{atlas}_label-InfCerebGrey_{DESC}_suvr.tsv"
            )
            assert pd.read_csv(table, sep="\t")["suvr_mean"].notna().any()
            assert json.loads(table.with_suffix(".json").read_text())["Synthetic"] is True
        t1w = run["out"] / subject / "anat" / f"{subject}_{SPACE}_res-2_desc-preproc_T1w.nii.gz"
        assert nib.load(t1w).shape == (91, 109, 91)
    # sub-001's synthesis took the scan's T1w registration; sub-002 (T1w only) registered its
    # T1w once, for both tasks; no synthesis graph registers a T1w of its own.
    graph = run["work"] / "taupet_participant_wf"
    assert sorted(p.name for p in graph.glob("anat_*")) == [
        "anat_sub_001_T1w",
        "anat_sub_002_T1w",
    ]
    assert not list(graph.glob("synth_*/anat_wf"))


def test_tspo_from_t1w_is_written_beside_the_tau_and_never_shares_its_name(run):
    for subject in ("sub-001", "sub-002"):
        pet = run["out"] / subject / "pet"
        image = pet / f"{subject}_trc-11CPBR28_{SPACE}_res-2_{DESC}_pet.nii.gz"
        sidecar = json.loads(image.with_name(image.name.replace(".nii.gz", ".json")).read_text())
        assert sidecar["SynthesisTask"] == "tspo-from-t1w" and sidecar["Synthetic"] is True
        table = pet / f"{subject}_trc-11CPBR28_{SPACE}_seg-DK_label-WholeCereb_{DESC}_suvr.tsv"
        assert pd.read_csv(table, sep="\t")["suvr_mean"].notna().any()
        assert _image(run, subject).is_file() and _image(run, subject) != image
    graph = run["work"] / "taupet_participant_wf"
    assert not (graph / "synth_tspo_from_t1w_sub_001" / "anat_wf").exists()
    assert not (graph / "synth_tspo_from_t1w_sub_002" / "anat_wf").exists()


def test_the_report_labels_the_synthetic_image_beside_the_measured_one(run):
    first = (run["out"] / "sub-001.html").read_text()
    assert "Synthetic: sub-001" in first and "This image was not measured" in first
    assert "measured scan of this session" in first
    second = (run["out"] / "sub-002.html").read_text()
    assert "Synthetic: sub-002" in second and "measured scan of this session" not in second


def test_group_tables_mark_synthetic_rows_and_keep_them_apart(run):
    assert run["group"].returncode == 0, run["group"].stderr[-3000:]
    wide = pd.read_csv(run["out"] / "group" / "suvr_wide.tsv", sep="\t")
    synthetic = wide[wide["synthetic"]]
    for tracer in (TRACER, "11CPBR28"):
        rows = synthetic[synthetic["tracer"] == tracer]
        assert sorted(rows["participant_id"]) == ["sub-001", "sub-002"], synthetic
    assert set(synthetic["method"]) == {"SUVR-syntheticFromT1w"}
    measured = wide[~wide["synthetic"]]
    assert list(measured["participant_id"]) == ["sub-001"]
    assert set(measured["method"]) == {"SUVR"}


def test_outputs_pass_the_bids_validator(run):
    validator = Path(sys.executable).with_name("bids-validator-deno")
    done = subprocess.run([validator, "--json", run["out"]], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    issues = json.loads(done.stdout)["issues"]["issues"]
    errors = [issue for issue in issues if issue["severity"] == "error"]
    assert not errors, errors[:3]


def test_training_pairs_warp_the_native_t1w_as_the_pipeline_did(run, tmp_path):
    """Without the template-space T1w, `taupet-bids-train synthesis` warps the run's native
    T1w with the run's own transforms, and gets the image the pipeline wrote."""
    import numpy as np

    from taupet_bids.training.synthesis_data import find_pairs

    copy = tmp_path / "out"
    shutil.copytree(run["out"] / "sub-001", copy / "sub-001")
    written = copy / "sub-001" / "anat" / f"sub-001_{SPACE}_res-2_desc-preproc_T1w.nii.gz"
    expected = np.asarray(nib.load(written).dataobj)
    written.unlink()
    pairs, without = find_pairs([copy], tmp_path / "cache")
    assert len(pairs) == 1 and not without and pairs[0].source.parent == tmp_path / "cache"
    warped = np.asarray(nib.load(pairs[0].source).dataobj)
    assert np.abs(warped - expected).max() <= 1e-3 * np.abs(expected).max()
