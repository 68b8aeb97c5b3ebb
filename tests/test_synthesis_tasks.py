"""``taupet-bids-train synthesis --task tau-from-fdg`` and ``--task tspo-from-t1w``: pairs,
tiny training, the bundle (checksum, card) and MONAI's runner, and the refusals.

The networks are tiny and train for a few steps: what they predict means nothing; these tests
check that the right images are paired, the bundle is complete and both runners agree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from taupet_bids.models.bundle import CONFIG, METADATA
from taupet_bids.synthesis import inference
from taupet_bids.synthesis.bundle import check_bundle, load_synthesiser
from taupet_bids.training import cli
from taupet_bids.training.synthesis import TrainConfig, train
from taupet_bids.training.synthesis_card import export_trained_bundle, render_card
from taupet_bids.training.synthesis_data import find_pairs
from tests.synthesis_cohort import write_cohort

TINY = {
    "tau-from-fdg": {"features": [4, 8], "growth": 2, "layers": 1},
    "tspo-from-t1w": {"features": [4, 4, 8], "heads_channels": 4},
}
#: What each task reads and imitates in the cohort.
INPUT = {"tau-from-fdg": "trc-18FFDG", "tspo-from-t1w": "desc-preproc_T1w"}
TARGET = {"tau-from-fdg": "AV1451", "tspo-from-t1w": "11CPBR28"}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, templateflow_home):
    return write_cohort(tmp_path_factory.mktemp("cohort"), n=5, other=("fdg", "tspo"))


def tiny(task: str, out, derivatives, steps: int = 3) -> TrainConfig:
    return TrainConfig(
        out, [derivatives], task=task, seed=3, steps=steps, batch_size=1, learning_rate=1e-2,
        checkpoint_every=steps, **TINY[task],
    )  # fmt: skip


@pytest.fixture(scope="module", params=sorted(TINY))
def run(request, cohort, tmp_path_factory):
    torch.set_num_threads(1)
    task = request.param
    config = tiny(task, tmp_path_factory.mktemp(task), cohort)
    metrics = train(config, log=lambda line: None)
    return task, config, metrics, export_trained_bundle(config, metrics, config.out_dir / "b")


@pytest.mark.parametrize("task", sorted(TINY))
def test_pairs_take_the_tasks_input_and_target_of_the_same_session(task, cohort, tmp_path):
    pairs, without = find_pairs([cohort], tmp_path / "cache", task)
    assert len(pairs) == 5 and not without
    for pair in pairs:
        assert pair.tracer == TARGET[task] and INPUT[task] in pair.source.name
        assert pair.source.name.startswith(f"{pair.participant}_")
        assert pair.suvr.name.startswith(f"{pair.participant}_")


def test_fdg_pairs_are_found_across_two_runs_folders(cohort, tmp_path):
    """``--tracer`` selects one tracer, so tau and FDG may be two runs' derivatives."""
    tau_run, fdg_run = tmp_path / "tau", tmp_path / "fdg"
    shutil.copytree(cohort, tau_run)
    for fdg in sorted(tau_run.rglob("*_trc-18FFDG_*")):
        moved = fdg_run / fdg.relative_to(tau_run)
        moved.parent.mkdir(parents=True, exist_ok=True)
        fdg.rename(moved)
    assert find_pairs([tau_run], tmp_path / "cache", "tau-from-fdg")[0] == []
    pairs, without = find_pairs([tau_run, fdg_run], tmp_path / "cache", "tau-from-fdg")
    assert len(pairs) == 5 and not without
    assert all(pair.source.is_relative_to(fdg_run) for pair in pairs)


def test_tau_from_t1w_leaves_other_tracers_out_instead_of_refusing_the_mix(cohort, tmp_path):
    pairs, _ = find_pairs([cohort], tmp_path / "cache")
    assert {pair.tracer for pair in pairs} == {"AV1451"} and len(pairs) == 5


def test_each_task_has_its_own_seed_and_default_loss(tmp_path):
    tspo = TrainConfig(tmp_path, [tmp_path], task="tspo-from-t1w")
    fdg = TrainConfig(tmp_path, [tmp_path], task="tau-from-fdg")
    assert (tspo.seed, tspo.loss) == (36, "mse") and (fdg.seed, fdg.loss) == (35, "l1")
    t1w = TrainConfig(tmp_path, [tmp_path])
    assert (t1w.seed, t1w.loss) == (33, "mse")  # L1 predicted one image for everyone
    assert set(fdg.architecture()) == {"features", "growth", "layers"}


def test_the_bundle_loads_with_its_checksum_and_its_card_is_its_metadata(run):
    task, config, metrics, bundle = run
    assert metrics["scans"] == {"train": 3, "validation": 1, "test": 1}
    assert metrics["test"]["n"] == 1 and metrics["test_baseline"]["n"] == 1
    card = check_bundle(bundle, task)
    assert card.tracer == TARGET[task] and card.task == task
    meta = json.loads((bundle / METADATA).read_text())
    assert meta["taupet_bids"]["architecture"] == TINY[task]
    assert (bundle / "docs" / "README.md").read_text() == render_card(meta)
    if task == "tau-from-fdg":
        assert meta["taupet_bids"]["source_image"]["reference_regions"] == ["Pons"]
        assert "reference Pons" in render_card(meta)
    split = (config.out_dir / "split.tsv").read_text().splitlines()
    assert split[0].endswith("\tinput") and all(INPUT[task] in row for row in split[1:])


def test_monai_runner_writes_the_products_output(run, cohort, tmp_path):
    task, _, _, bundle = run
    input_file = next(cohort.rglob(f"sub-p4_*{INPUT[task]}*.nii.gz"))
    done = subprocess.run(
        [
            sys.executable, "-m", "monai.bundle", "run",
            "--config_file", str(bundle / CONFIG), "--meta_file", str(bundle / METADATA),
            "--bundle_root", str(bundle), "--input_file", str(input_file),
            "--output_dir", str(tmp_path / "runner"),
        ],
        capture_output=True, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ours = inference.synthesise(load_synthesiser(bundle), input_file, tmp_path / "product")
    desc = "syntheticFromFDG" if task == "tau-from-fdg" else "syntheticFromT1w"
    assert ours.image.name == (
        f"sub-p4_trc-{TARGET[task]}_space-MNI152NLin6Asym_res-2_desc-{desc}_pet.nii.gz"
    )
    theirs = np.asarray(nib.load(tmp_path / "runner" / ours.image.name).dataobj)
    mine = np.asarray(nib.load(ours.image).dataobj)
    assert np.abs(theirs - mine).max() < 1e-5 and mine.max() > 0
    sidecar = json.loads(ours.sidecar.read_text())
    assert sidecar["Synthetic"] is True and sidecar["SynthesisTask"] == task
    assert sidecar["Sources"] == [input_file.name]


@pytest.mark.parametrize(
    ("task", "says"),
    [("tau-from-fdg", "FDG SUVR image of the same session"), ("tspo-from-t1w", "TSPO SUVR")],
)
def test_the_command_says_why_when_the_tasks_input_is_missing(task, says, tmp_path, capsys):
    tau_only = write_cohort(tmp_path / "tau_only", n=2)
    argv = ["synthesis", str(tau_only), "--out", str(tmp_path / "o"), "--task", task]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert says in err and f"nothing to train for {task}" in err and "--tracer" in err


def test_reconstruction_keeps_a_pet_mr_sessions_mrac_image_out_of_the_targets(cohort, tmp_path):
    """A cohort of PET/MR + PET/CT pairs holds two tau SUVR images per session; ``ctac`` trains
    on the PET/CT one only, instead of on both or refusing."""
    pairs_run = tmp_path / "pairs"
    shutil.copytree(cohort, pairs_run)
    for suvr in sorted(pairs_run.rglob("*_trc-AV1451_*desc-suvr_pet.nii.gz")):
        for rec in ("ctac", "mrac"):
            shutil.copy(
                suvr, suvr.with_name(suvr.name.replace("_trc-AV1451_", f"_trc-AV1451_rec-{rec}_"))
            )
        suvr.unlink()
    assert len(find_pairs([pairs_run], tmp_path / "cache")[0]) == 10
    pairs, without = find_pairs([pairs_run], tmp_path / "cache", reconstruction="ctac")
    assert len(pairs) == 5 and not without
    assert all("_rec-ctac_" in pair.suvr.name for pair in pairs)


def test_every_architecture_takes_the_tasks_seed_when_the_command_line_gives_none(tmp_path):
    """The shared CLI passes ``seed=None`` without ``--seed``; each network family's config
    must turn that into the task's documented seed (VQGAN and diffusion once crashed on it)."""
    from taupet_bids.training.cli_common import run_fields
    from taupet_bids.training.synthesis_cli import build_parser
    from taupet_bids.training.synthesis_diffusion import DiffusionConfig
    from taupet_bids.training.synthesis_tasks import TRAINING
    from taupet_bids.training.synthesis_vqgan import VQGANConfig

    fields = run_fields(build_parser().parse_args([str(tmp_path), "--out", str(tmp_path / "r")]))
    assert fields["seed"] is None
    for config in (TrainConfig(**fields), VQGANConfig(**fields), DiffusionConfig(**fields)):
        assert config.seed == TRAINING["tau-from-t1w"].seed
