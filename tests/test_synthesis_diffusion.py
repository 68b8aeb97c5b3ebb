"""Clinically conditioned latent diffusion (T1w + MMSE, amyloid, age -> tau): the clinical
tokens, seeded sampling, unconditional sampling of missing values, the training command's
bundle through MONAI's runner, the autoencoder's loss and ceiling. Tiny widths and few steps:
wiring is checked, not accuracy. That a trained model follows MMSE the right way is tested on
a tiny model trained once by benchmarks/diffusion_direction_fixture.py (thousands of denoiser
steps, more than a test may spend) and stored in tests/data; benchmarks/diffusion.py measures
the direction at full size."""

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
from taupet_bids.cli.run import select_synthesis
from taupet_bids.interfaces.synthesis import StageSynthetic, SynthesizePET
from taupet_bids.models.bundle import CONFIG, METADATA, WEIGHTS, load_weights
from taupet_bids.synthesis import clinical, diffusion_inference, preprocessing
from taupet_bids.synthesis.bundle import InvalidBundle, check_bundle
from taupet_bids.synthesis.diffusion import LatentDiffusion
from taupet_bids.training import cli
from taupet_bids.training.synthesis_diffusion import DiffusionConfig, autoencoder_stage, train
from taupet_bids.training.synthesis_diffusion_card import render_card
from tests.synthesis_cohort import braak_suvr_of_sample, write_cohort

TINY = {"autoencoder_channels": [4, 4, 4], "latent_channels": 2, "unet_channels": [8, 8],
        "norm_groups": 4, "head_channels": 4}  # fmt: skip
TINY_ARGS = [
    "--architecture", "diffusion", "--autoencoder-channels", "4", "4", "4",
    "--latent-channels", "2", "--unet-channels", "8", "8", "--norm-groups", "4",
    "--head-channels", "4", "--autoencoder-steps", "2", "--steps", "3", "--batch-size", "2",
    "--seed", "3", "--checkpoint-every", "2", "--ddim-steps", "3",
]  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def _participants(root: Path, rows: list[tuple]) -> Path:
    lines = ["participant_id\tage\tmmse\tamyloid_status"]
    lines += ["\t".join(map(str, row)) for row in rows]
    (root / "participants.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, templateflow_home) -> Path:
    derivatives = write_cohort(tmp_path_factory.mktemp("cohort"), n=4)
    rows = [("sub-p0", 70, 29, "negative"), ("sub-p1", 72, 26, "negative"),
            ("sub-p2", 75, 22, "positive"), ("sub-p3", 78, "n/a", "n/a")]  # fmt: skip
    _participants(derivatives.parent, rows)
    return derivatives


@pytest.fixture(scope="module")
def bundle(cohort, tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run") / "run"
    assert cli.main(["synthesis", str(cohort), "--out", str(out), *TINY_ARGS]) == 0
    return out / "bundle"


def _t1w(cohort: Path) -> Path:
    return sorted(cohort.rglob("*desc-preproc_T1w.nii.gz"))[-1]


def test_clinical_values_become_tokens_and_missing_ones_the_null_context(tmp_path):
    values = clinical.parse(["mmse=20", "amyloid_status=Positive", "age=n/a"])
    assert values == {"mmse": 20.0, "amyloid_status": "positive", "age": None}
    assert clinical.missing(values) == ["age"]
    tokens = clinical.encode(values)
    assert tokens.shape == (3, clinical.CONTEXT_DIM)
    assert tokens[0, :2].tolist() == [-1.0, 1.0] and tokens[1, :2].tolist() == [1.0, 1.0]
    assert np.array_equal(tokens[2], clinical.null_context()[2])
    assert np.array_equal(clinical.encode(clinical.parse("mmse=n/a")), clinical.null_context())
    for bad, says in (("mmse=40", "outside"), ("amyloid_status=maybe", "positive, negative"),
                      ("mmse20", "KEY=VALUE"), ("moca=20", "unknown clinical")):  # fmt: skip
        with pytest.raises(ValueError, match=says):
            clinical.parse([bad])
    _participants(tmp_path, [("sub-a", 70, 28, "negative")])
    (tmp_path / "sub-a").mkdir()
    (tmp_path / "sub-a" / "sub-a_sessions.tsv").write_text(
        "session_id\tage\tmmse\nses-1\t70\t28\nses-2\t72\t21\n"
    )
    assert clinical.from_tables(tmp_path, "sub-a", "ses-2") == {
        "mmse": 21.0, "amyloid_status": "negative", "age": 72.0,
    }  # fmt: skip
    assert clinical.from_tables(tmp_path, "sub-b", None) == clinical.parse(None)


def _untrained() -> LatentDiffusion:
    """A tiny network whose U-Net output is not zero (MONAI zero-initialises its last layer,
    which would make every condition give the same noise)."""
    torch.manual_seed(0)
    network = LatentDiffusion(**TINY).eval()
    for weight in network.unet.out.parameters():
        torch.nn.init.normal_(weight, std=0.3)
    return network


def test_a_seed_gives_the_same_sample_and_another_seed_another():
    network = _untrained()
    image = torch.rand(1, 1, *preprocessing.INPUT_SHAPE)
    one = diffusion_inference.sample(network, image, ["mmse=18"], n_samples=2, seed=4, steps=3)
    two = diffusion_inference.sample(network, image, ["mmse=18"], n_samples=2, seed=4, steps=3)
    other = diffusion_inference.sample(network, image, ["mmse=18"], n_samples=2, seed=5, steps=3)
    assert one.mean.shape == preprocessing.TEMPLATE_SHAPE
    assert np.array_equal(one.mean, two.mean) and np.array_equal(one.sd, two.sd)
    assert not np.array_equal(one.mean, other.mean)
    assert one.sd[preprocessing.brain_mask()].max() > 0  # two samples differ


def test_missing_clinical_values_sample_unconditionally_and_say_so():
    network = _untrained()
    image = torch.rand(1, 1, *preprocessing.INPUT_SHAPE)
    missing = diffusion_inference.sample(network, image, {"mmse": "n/a"}, seed=1, steps=3)
    plain = network.sample(
        image, torch.from_numpy(clinical.null_context())[None], 3, 1.0,
        torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert np.array_equal(missing.mean, preprocessing.to_template_grid(plain[0, 0].numpy()))
    record = missing.conditioning
    assert record["Conditioning"].startswith("unconditional")
    assert record["ClinicalMissing"] == list(clinical.VARIABLES)
    assert record["GuidanceScale"] is None and record["ClinicalConditioning"] == {}
    given = diffusion_inference.sample(network, image, ["mmse=12"], seed=1, steps=3)
    assert not np.array_equal(given.mean, missing.mean)
    assert given.conditioning["ClinicalMissing"] == ["amyloid_status", "age"]
    assert "missing (not conditioned on)" in given.conditioning["Conditioning"]


DIRECTION_MODEL = Path(__file__).resolve().parent / "data" / "diffusion_direction"


def _direction_model() -> LatentDiffusion:
    """The stored tiny model, refused if its weights are not the ones its script recorded (and,
    loaded strictly, if the network's layout has changed since)."""
    record = json.loads((DIRECTION_MODEL / "config.json").read_text())
    network = LatentDiffusion(**record["architecture"])
    return load_weights(network, DIRECTION_MODEL / "model.pt", record["model_sha256"])


def test_a_tiny_trained_model_gives_more_tau_at_a_lower_mmse(tmp_path, templateflow_home):
    """Its training cohort has one anatomy and Braak I-IV SUVR rising as MMSE falls (30 -> 12),
    so only the clinical condition can move the sample; it must move it up, whatever the
    sampling seed, and more with stronger guidance."""
    network = _direction_model()
    derivatives = write_cohort(tmp_path, n=2, atrophy=0.0)
    image = torch.from_numpy(preprocessing.read_t1w(_t1w(derivatives)))[None, None]

    def braak_suvr(mmse: int, seed: int, guidance: float) -> float:
        return braak_suvr_of_sample(network, image, mmse, seed, guidance)

    for seed in (1, 2, 3):
        rise = {g: braak_suvr(12, seed, g) - braak_suvr(30, seed, g) for g in (2.0, 5.0)}
        assert 0 < rise[2.0] < rise[5.0], (seed, rise)


def test_the_training_command_writes_a_checked_bundle_that_monai_runs(bundle, cohort, tmp_path):
    meta = json.loads((bundle / METADATA).read_text())
    ours = meta["taupet_bids"]
    assert ours["network"] == "diffusion" and ours["sampling"] == {"steps": 3, "guidance": 2.0}
    card = (bundle / "docs" / "README.md").read_text()
    assert card == render_card(meta)
    assert meta["eval_metrics"]["train_scans_without_clinical_values"] == 0
    assert "masked MSE" in card and "| autoencoder (ceiling) |" in card
    held = [name for name in ("validation", "test") if meta["eval_metrics"][name]]
    assert held, "the tiny cohort's split left no held-out scan"
    for name in held:
        ceiling = meta["eval_metrics"][f"{name}_autoencoder"]
        assert ceiling["n"] == meta["eval_metrics"][name]["n"] and ceiling["mse"] >= 0
    assert meta["eval_metrics"]["clinical_tables"] == [str(cohort.parent.absolute())]
    log = (bundle.parent / "training_log.tsv").read_text().splitlines()[1:]
    assert [row.split("\t")[0] for row in log] == ["autoencoder"] * 2 + ["denoiser"] * 3
    trained = torch.load(bundle / WEIGHTS, weights_only=True)
    assert set(trained) == {"autoencoder", "unet", "standard"}
    for kind in ("t1w", "suvr"):
        assert bool(trained["standard"][f"{kind}.fitted"])
        assert float(trained["standard"][f"{kind}.value"]) > 0
    assert not trained["standard"]["suvr.center"].any()  # scaled only, by default
    assert not trained["standard"]["t1w.center"].any()
    # one scale for the latent space (version 0.1.0's recipe)
    assert torch.equal(trained["standard"]["t1w.value"], trained["standard"]["suvr.value"])
    assert check_bundle(bundle, "tau-from-t1w", network="diffusion").network == "diffusion"
    with pytest.raises(InvalidBundle, match="is a diffusion bundle, not unet"):
        check_bundle(bundle, network="unet")
    copy = tmp_path / "damaged"
    shutil.copytree(bundle, copy)
    raw = bytearray((copy / WEIGHTS).read_bytes())
    raw[-100] ^= 0xFF
    (copy / WEIGHTS).write_bytes(bytes(raw))
    with pytest.raises(InvalidBundle, match="does not match"):
        check_bundle(copy)
    done = subprocess.run(
        [
            sys.executable, "-m", "monai.bundle", "run",
            "--config_file", str(bundle / CONFIG), "--meta_file", str(bundle / METADATA),
            "--bundle_root", str(bundle), "--input_file", str(_t1w(cohort)),
            "--output_dir", str(tmp_path / "runner"), "--clinical", "mmse=20,age=71",
            "--n_samples", "2", "--seed", "7",
        ],
        capture_output=True, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    images = sorted((tmp_path / "runner").glob("*.nii.gz"))
    assert [p.name.split("_desc-")[1] for p in images] == [
        "syntheticFromT1wSD_pet.nii.gz", "syntheticFromT1w_pet.nii.gz",
    ]  # fmt: skip
    mean = nib.load(images[1])
    assert mean.shape == preprocessing.TEMPLATE_SHAPE
    sidecar = json.loads(
        images[1].with_name(images[1].name.replace(".nii.gz", ".json")).read_text()
    )
    assert sidecar["Synthetic"] is True and sidecar["SamplingSeed"] == 7
    assert sidecar["SamplingSteps"] == 3 and sidecar["GuidanceScale"] == 2.0
    assert sidecar["NumberOfSamples"] == 2 and sidecar["ModelSHA256"] == ours["model_sha256"]
    assert sidecar["ClinicalConditioning"] == {"mmse": 20.0, "age": 71.0}
    assert sidecar["ClinicalMissing"] == ["amyloid_status"]


def _bids(root: Path, rows: list[tuple]) -> Path:
    bids = root / "bids"
    (bids / "sub-001" / "anat").mkdir(parents=True)
    (bids / "dataset_description.json").write_text(
        json.dumps({"Name": "t", "BIDSVersion": "1.10.0"})
    )
    image = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4))
    nib.save(image, bids / "sub-001" / "anat" / "sub-001_T1w.nii.gz")
    return _participants(bids, rows)


def _run_args(tmp_path: Path, *extra) -> list[str]:
    return [str(tmp_path / "bids"), str(tmp_path / "out"), "participant", *map(str, extra)]


def test_the_pipeline_plans_a_diffusion_bundle_with_each_sessions_clinical_values(
    bundle, tmp_path, capsys
):
    _bids(tmp_path, [("sub-001", 74, 19, "positive")])
    asked = ["--synthesize", "tau-from-t1w", "--synthesis-model", bundle]
    for extra, says in (
        ([], "is a diffusion bundle, not unet"),
        (["--synthesis-architecture", "diffusion", "--clinical", "moca=3"], "unknown clinical"),
        (["--synthesis-architecture", "diffusion", "--n-samples", "0"], "at least 1"),
    ):
        with pytest.raises(SystemExit):
            parse_args(_run_args(tmp_path, *asked, *extra))
        assert says in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(_run_args(tmp_path, "--clinical", "mmse=20"))
    assert "need --synthesis-architecture diffusion" in capsys.readouterr().err
    diffusion = [*asked, "--synthesis-architecture", "diffusion", "--n-samples", "2"]
    config = parse_args(_run_args(tmp_path, *diffusion))
    assert "[ldm]" in methods_text(config) and "[unet]" not in methods_text(config)
    (plan,) = select_synthesis(config, [])
    assert dict(plan.clinical) == {"mmse": 19.0, "amyloid_status": "positive", "age": 74.0}
    assert plan.n_samples == 2
    config = parse_args(_run_args(tmp_path, *diffusion, "--clinical", "mmse=n/a", "age=80"))
    (plan,) = select_synthesis(config, [])
    assert dict(plan.clinical) == {"mmse": None, "amyloid_status": "positive", "age": 80.0}


def test_the_nipype_node_writes_the_mean_the_sd_map_and_the_conditioning(
    bundle, cohort, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    values = {"mmse": None, "amyloid_status": None, "age": None}
    node = SynthesizePET(
        in_file=str(_t1w(cohort)), bundle=str(bundle), clinical=values, n_samples=2, seed=5
    ).run()
    mean, sd = node.outputs.out_file, node.outputs.extra_files[0]
    assert "desc-syntheticFromT1w_pet" in mean and "desc-syntheticFromT1wSD_pet" in sd
    sidecar = json.loads(Path(node.outputs.sidecar).read_text())
    assert sidecar["Conditioning"].startswith("unconditional") and sidecar["SamplingSeed"] == 5
    assert sidecar["NumberOfSamples"] == 2 and sidecar["SamplingSteps"] == 3
    table = tmp_path / "table.tsv"
    table.write_text("region\tmean\n")
    staged = StageSynthetic(
        image=mean, sidecar=node.outputs.sidecar, tables=[str(table)], atlases=["Braak"],
        reference_region="InfCerebGrey", t1w_std=str(_t1w(cohort)),
        source_uri="bids:raw:sub-p3/anat/sub-p3_T1w.nii.gz", staging_dir=str(tmp_path / "st"),
        extra_files=node.outputs.extra_files,
    ).run()  # fmt: skip
    names = [Path(p).name for p in staged.outputs.out_files]
    assert Path(sd).name in names
    kept = json.loads(next(Path(p) for p in staged.outputs.out_files
                           if p.endswith("SD_pet.json")).read_text())  # fmt: skip
    assert kept["Sources"] == ["bids:raw:sub-p3/anat/sub-p3_T1w.nii.gz"]


class _Interrupt(Exception):
    pass


def test_a_seed_gives_the_same_weights_and_a_run_stopped_in_the_denoiser_resumes_to_them(
    bundle, cohort, tmp_path
):
    config = DiffusionConfig(
        tmp_path / "resumed", [cohort], seed=3, steps=3, autoencoder_steps=2, batch_size=2,
        checkpoint_every=2, ddim_steps=3, **TINY,
    )  # fmt: skip

    def stop(line: str) -> None:
        if "checkpoint: denoiser step 2" in line:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(config, log=stop)
    lines: list[str] = []
    train(config, log=lines.append)
    assert any("resuming" in line and "stage denoiser, step 2" in line for line in lines)
    first = torch.load(bundle.parent / "model.pt", weights_only=True)
    resumed = torch.load(config.out_dir / "model.pt", weights_only=True)
    assert all(torch.equal(first[c][k], resumed[c][k]) for c in first for k in first[c])


def test_the_report_shows_the_mean_with_its_conditioning_and_not_the_sd_map_as_suvr(
    bundle, cohort, tmp_path
):
    from taupet_bids.reports.synthesis import synthesis_section, synthetic_images

    network, metadata = diffusion_inference.load(bundle)
    pet = tmp_path / "sub-p3" / "pet"
    diffusion_inference.run(network, metadata, _t1w(cohort), pet, ["mmse=12"], n_samples=2)
    (image,) = synthetic_images(tmp_path, "sub-p3")
    assert naming_desc(image) == "syntheticFromT1w"
    html = synthesis_section(image)
    assert "conditioned on the values given" in html and "syntheticFromT1wSD" in html


def naming_desc(path: Path) -> str:
    return path.name.split("_desc-")[1].split("_")[0]


@pytest.mark.parametrize(
    "loss, power, posterior", [("mse", 2, "mean"), ("l1", 1, "mean"), ("mse", 2, "sample")]
)
def test_the_autoencoder_stage_uses_the_configured_loss_and_posterior(
    loss, power, posterior, tmp_path
):
    config = DiffusionConfig(
        tmp_path, [], autoencoder_loss=loss, autoencoder_posterior=posterior, kl_weight=0.0,
        **TINY,
    )  # fmt: skip
    network = config.network()
    stage = autoencoder_stage(config, network)
    generator = torch.Generator().manual_seed(0)
    volumes = torch.rand(2, 1, *preprocessing.INPUT_SHAPE, generator=generator)
    torch.manual_seed(1)
    loss_value = stage.loss((volumes.numpy(),))
    torch.manual_seed(1)
    with torch.no_grad():
        sampled = network.autoencoder(volumes)[0]
        from_mean = network.autoencoder.reconstruct(volumes)
    assert not torch.allclose(sampled, from_mean)  # the two posteriors differ
    rebuilt = from_mean if posterior == "mean" else sampled
    mask = torch.from_numpy(preprocessing.network_mask())
    expected = (rebuilt - volumes)[:, 0][:, mask].abs().pow(power).mean()
    assert loss_value.item() == pytest.approx(float(expected), rel=1e-5)


def test_the_tau_latents_are_standardised_about_the_cohorts_mean_and_decode_unchanged():
    from taupet_bids.training.synthesis_diffusion import fit_standard

    network = _untrained()
    generator = torch.Generator().manual_seed(2)
    volumes = torch.rand(5, *preprocessing.INPUT_SHAPE, generator=generator).numpy()
    fit_standard(network, volumes, volumes + 1.0, centre_tau=True)
    with torch.no_grad():
        tau = torch.cat([network.encode(torch.from_numpy(v + 1.0)[None, None]) for v in volumes])
        t1w = torch.cat([network.encode(torch.from_numpy(v)[None, None], "t1w") for v in volumes])
        raw = network.autoencoder.encode(torch.from_numpy(volumes[:1] + 1.0)[:, None])[0]
        rebuilt = network.decode(network.encode(torch.from_numpy(volumes[:1] + 1.0)[:, None]))
        direct = network.autoencoder.decode(raw)
    assert tau.mean(0).abs().max() < 1e-4 and float(tau.std()) == pytest.approx(1.0, rel=1e-3)
    assert float(t1w.std()) == pytest.approx(1.0, rel=1e-3) and float(t1w.mean().abs()) > 0.01
    assert torch.allclose(rebuilt, direct, atol=1e-5)
