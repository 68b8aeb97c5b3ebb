"""MCR-VQGAN (T1w -> tau on axial slices): shapes, the EMA codebook, the training command's
bundle through the product, MONAI's runner and the pipeline's refusal of a mismatched family,
and determinism for a seed. Tiny widths and a few steps: the wiring is checked, not accuracy."""

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
import torch

from taupet_bids.boilerplate import methods_text
from taupet_bids.cli.parser import parse_args
from taupet_bids.interfaces.synthesis import SynthesizePET
from taupet_bids.models.bundle import CONFIG, METADATA, WEIGHTS
from taupet_bids.synthesis import inference, preprocessing
from taupet_bids.synthesis.bundle import InvalidBundle, check_bundle, load_synthesiser
from taupet_bids.synthesis.vqgan import CBAM, MCRVQGAN, Generator, MultiScaleConv
from taupet_bids.training import cli, engine
from taupet_bids.training.synthesis_vqgan import VQGANConfig, train
from taupet_bids.training.synthesis_vqgan_card import render_card
from tests.synthesis_cohort import write_cohort

TINY = {
    "channels": [4, 8], "res_blocks": 1, "codebook_size": 16, "embedding_dim": 4,
    "discriminator_channels": 4, "feature_channels": [4],
}  # fmt: skip
TINY_ARGS = [
    "--architecture", "vqgan", "--channels", "4", "8", "--res-blocks", "1",
    "--codebook-size", "16", "--embedding-dim", "4", "--discriminator-channels", "4",
    "--feature-channels", "4", "--steps", "3", "--feature-steps", "2", "--batch-size", "2",
    "--seed", "3", "--checkpoint-every", "2", "--learning-rate", "0.002",
]  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, templateflow_home) -> Path:
    return write_cohort(tmp_path_factory.mktemp("cohort"), n=4)


def _train(cohort: Path, out: Path) -> Path:
    assert cli.main(["synthesis", str(cohort), "--out", str(out), *TINY_ARGS]) == 0
    return out / "bundle"


@pytest.fixture(scope="module")
def bundle(cohort, tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return _train(cohort, tmp_path_factory.mktemp("run") / "run")


def _t1w(cohort: Path) -> Path:
    return sorted(cohort.rglob("*desc-preproc_T1w.nii.gz"))[-1]


def test_blocks_keep_the_shape_and_slices_are_stacked_back_in_place():
    torch.manual_seed(0)
    x = torch.rand(2, 4, 12, 14)
    assert CBAM(4)(x).shape == x.shape and MultiScaleConv(4, 6)(x).shape == (2, 6, 12, 14)
    network = MCRVQGAN(**TINY).eval()
    slices, commitment = network.generator(torch.rand(3, 1, 48, 56))
    assert slices.shape == (3, 1, 48, 56) and commitment.ndim == 0
    assert 0 <= slices.min() and slices.max() <= preprocessing.SUVR_MAX
    assert network.discriminator(slices)[-1].shape[:2] == (3, 1)
    volume = torch.rand(1, 1, *preprocessing.INPUT_SHAPE)
    with torch.no_grad():
        stacked = network(volume)
        alone, _ = network.generator(volume[..., 20])
    assert stacked.shape == volume.shape
    assert torch.allclose(stacked[..., 20], alone, atol=1e-6)
    assert not torch.allclose(stacked[..., 20], stacked[..., 21])


def test_the_codebook_moves_by_its_moving_average_not_by_gradient():
    torch.manual_seed(0)
    generator = Generator(channels=[4, 8], res_blocks=1, codebook_size=16, embedding_dim=4)
    quantiser = generator.quantizer.quantizer
    assert quantiser.decay == 0.99 and not generator.codebook.requires_grad
    before = generator.codebook.clone()
    with torch.no_grad():
        generator.eval()(torch.rand(2, 1, 48, 56))
    assert torch.equal(generator.codebook, before)  # no update outside training
    optimiser = torch.optim.Adam(generator.parameters(), lr=1e-3)
    generator.train()
    out, commitment = generator(torch.rand(2, 1, 48, 56))
    (out.mean() + commitment).backward()
    optimiser.step()
    assert generator.codebook.grad is None
    assert not torch.equal(generator.codebook, before)
    assert float(quantiser.ema_cluster_size.sum()) == pytest.approx(0.01 * 2 * 24 * 28, rel=1e-4)


def test_the_training_command_writes_a_checked_bundle_with_its_card(bundle, tmp_path):
    meta = json.loads((bundle / METADATA).read_text())
    ours = meta["taupet_bids"]
    assert ours["network"] == "vqgan" and ours["architecture"]["channels"] == [4, 8]
    assert (bundle / "docs" / "README.md").read_text() == render_card(meta)
    text = " ".join(render_card(meta).split())
    assert "perceptual term is not VGG16's" in text and "about 75 million parameters" in text
    log = (bundle.parent / "training_log.tsv").read_text().splitlines()[1:]
    assert [row.split("\t")[0] for row in log] == ["features"] * 2 + ["gan"] * 3
    card = check_bundle(bundle, "tau-from-t1w", network="vqgan")
    assert card.network == "vqgan" and card.desc == "syntheticFromT1w"
    with pytest.raises(InvalidBundle, match="is a vqgan bundle, not unet"):
        check_bundle(bundle, network="unet")
    trained = torch.load(bundle / WEIGHTS, weights_only=True)
    assert set(trained) == {"generator", "discriminator", "features"}
    initial = engine.seeded(lambda: MCRVQGAN(**TINY), 3, 1)
    key = "quantizer.quantizer.embedding.weight"
    assert not torch.equal(trained["generator"][key], initial.generator.state_dict()[key])
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    raw = bytearray((copy / WEIGHTS).read_bytes())
    raw[-100] ^= 0xFF
    (copy / WEIGHTS).write_bytes(bytes(raw))
    with pytest.raises(InvalidBundle, match="does not match"):
        check_bundle(copy)


def test_monai_runner_and_pipeline_write_the_same_volume_on_the_template_grid(
    bundle, cohort, tmp_path, monkeypatch
):
    t1w = _t1w(cohort)
    done = subprocess.run(
        [
            sys.executable, "-m", "monai.bundle", "run",
            "--config_file", str(bundle / CONFIG), "--meta_file", str(bundle / METADATA),
            "--bundle_root", str(bundle), "--input_file", str(t1w),
            "--output_dir", str(tmp_path / "runner"),
        ],
        capture_output=True, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ours = inference.synthesise(load_synthesiser(bundle), t1w, tmp_path / "product")
    image = nib.load(ours.image)
    assert image.shape == preprocessing.TEMPLATE_SHAPE
    assert np.allclose(image.affine, preprocessing.template_affine())
    mine = np.asarray(image.dataobj)
    brain = preprocessing.brain_mask()
    assert mine[~brain].max() == 0 and mine[brain].min() > 0
    theirs = np.asarray(nib.load(tmp_path / "runner" / ours.image.name).dataobj)
    assert np.abs(theirs - mine).max() < 1e-5
    monkeypatch.chdir(tmp_path)
    node = SynthesizePET(in_file=str(t1w), bundle=str(bundle)).run()
    assert np.array_equal(np.asarray(nib.load(node.outputs.out_file).dataobj), mine)
    sidecar = json.loads(ours.sidecar.read_text())
    assert sidecar["Synthetic"] is True and "MCR-VQGAN" in sidecar["ModelName"]


def test_a_seed_gives_the_same_weights_and_the_same_synthetic_image(bundle, cohort, tmp_path):
    again = _train(cohort, tmp_path / "again")
    first = torch.load(bundle / WEIGHTS, weights_only=True)
    second = torch.load(again / WEIGHTS, weights_only=True)
    assert all(torch.equal(first[c][k], second[c][k]) for c in first for k in first[c])
    t1w = _t1w(cohort)
    one = inference.synthesise(load_synthesiser(bundle), t1w, tmp_path / "one")
    two = inference.synthesise(load_synthesiser(again), t1w, tmp_path / "two")
    assert np.array_equal(
        np.asarray(nib.load(one.image).dataobj), np.asarray(nib.load(two.image).dataobj)
    )


class _Interrupt(Exception):
    pass


def test_a_run_stopped_in_the_gan_stage_resumes_to_the_same_weights(bundle, cohort, tmp_path):
    config = VQGANConfig(
        tmp_path / "resumed", [cohort], seed=3, steps=3, feature_steps=2, batch_size=2,
        learning_rate=0.002, checkpoint_every=2, **TINY,
    )  # fmt: skip

    def stop(line: str) -> None:
        if "checkpoint: gan step 2" in line:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(config, log=stop)
    lines: list[str] = []
    train(config, log=lines.append)
    assert any("resuming" in line and "stage gan, step 2" in line for line in lines)
    first = torch.load(bundle.parent / "model.pt", weights_only=True)
    resumed = torch.load(config.out_dir / "model.pt", weights_only=True)
    assert all(torch.equal(first[c][k], resumed[c][k]) for c in first for k in first[c])


def _args(tmp_path: Path, *extra) -> list[str]:
    return [str(tmp_path / "bids"), str(tmp_path / "out"), "participant", *map(str, extra)]


def test_the_pipeline_takes_a_vqgan_bundle_only_as_vqgan(bundle, tmp_path, capsys):
    asked = ["--synthesize", "tau-from-t1w", "--synthesis-model", bundle]
    with pytest.raises(SystemExit):
        parse_args(_args(tmp_path, *asked))
    assert "is a vqgan bundle, not unet: give --synthesis-architecture vqgan" in (
        capsys.readouterr().err
    )
    config = parse_args(_args(tmp_path, *asked, "--synthesis-architecture", "vqgan"))
    assert config.synthesis_architecture == "vqgan"
    methods = methods_text(config)
    assert "MCR-VQGAN [mcrvqgan]" in methods and "[unet]" not in methods
    unet = tmp_path / "unet"
    shutil.copytree(bundle, unet)
    meta = json.loads((unet / METADATA).read_text())
    del meta["taupet_bids"]["network"]  # a bundle without a family is a U-Net's
    (unet / METADATA).write_text(json.dumps(meta))
    with pytest.raises(SystemExit):
        parse_args(
            _args(tmp_path, "--synthesize", "tau-from-t1w", "--synthesis-model", unet,
                  "--synthesis-architecture", "vqgan")
        )  # fmt: skip
    assert "is a unet bundle, not vqgan" in capsys.readouterr().err
