"""Train the tiny latent diffusion model that the test suite's direction test samples from.

The test ``test_a_tiny_trained_model_gives_more_tau_at_a_lower_mmse`` needs a model that has
learned the clinical condition, and a tiny model needs thousands of denoiser steps for that
(about 20 minutes on one CPU thread), more than a test may spend. So this script trains it once,
on the constructed cohort of ``diffusion_constructed.py`` (one anatomy, Braak I-IV SUVR 1-2.5,
MMSE 30-12: only the MMSE tells the load), with the product's own training code, and writes the
weights, the configuration and the weights' SHA-256 to ``tests/data/diffusion_direction/``.
Training is seeded and bit-reproducible on one thread, so rerunning this script rebuilds the
same file; rerun it whenever the network's layout changes (the test then fails to load it).

It also records the stored model's response (``response`` in config.json; ``--measure-only``
measures the stored model without training): Braak I-IV SUVR of one sample of one T1w at MMSE 12
minus at MMSE 30 for sampling seeds 1-3 at guidance 2 and 5, and an MMSE sweep at guidance 5.

Usage: python benchmarks/diffusion_direction_fixture.py [--work /tmp/diffusion-direction]
[--measure-only]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from diffusion_constructed import ARCHITECTURE, cohort, measure, trained  # noqa: E402
from participant_accuracy import environment  # noqa: E402

from taupet_bids import templates  # noqa: E402
from taupet_bids.models.bundle import load_weights, sha256  # noqa: E402
from taupet_bids.synthesis import preprocessing  # noqa: E402
from taupet_bids.synthesis.diffusion import LatentDiffusion  # noqa: E402
from taupet_bids.training.synthesis_diffusion import DiffusionConfig  # noqa: E402
from tests.synthesis_cohort import braak_suvr_of_sample  # noqa: E402

FIXTURE = REPO / "tests" / "data" / "diffusion_direction"
#: Deterministic autoencoder and a tau latent centred on the cohort's mean (so the denoiser
#: learns what differs between scans); seed 4 is the one that went either way at 2000 steps.
TRAINING = {
    "seed": 4, "autoencoder_steps": 200, "steps": 5000, "batch_size": 2,
    "autoencoder_posterior": "mean", "centre_tau_latent": True, "ddim_steps": 10,
}  # fmt: skip


SWEEP = (30, 27, 24, 21, 18, 15, 12, 6, 0)


@torch.no_grad()
def response(network, derivatives: Path) -> dict:
    """What the test asserts, and an MMSE sweep: Braak I-IV SUVR of one sample of one T1w."""
    t1w = sorted(derivatives.rglob("*desc-preproc_T1w.nii.gz"))[0]
    image = torch.from_numpy(preprocessing.read_t1w(t1w))[None, None]

    def braak_suvr(mmse: int, seed: int, guidance: float) -> float:
        return round(braak_suvr_of_sample(network, image, mmse, seed, guidance), 4)

    rise = {
        str(g): [round(braak_suvr(12, s, g) - braak_suvr(30, s, g), 4) for s in (1, 2, 3)]
        for g in (2.0, 5.0)
    }
    return {"rise_mmse_30_to_12_by_seed": rise,
            "sweep_guidance_5_seed_1": {m: braak_suvr(m, 1, 5.0) for m in SWEEP}}  # fmt: skip


def measure_stored(work: Path) -> None:
    """Measure the stored model and write its response into config.json."""
    record = json.loads((FIXTURE / "config.json").read_text())
    network = load_weights(
        LatentDiffusion(**record["architecture"]), FIXTURE / "model.pt", record["model_sha256"]
    )
    derivatives = cohort(work / "cohort")
    record["response"] = response(network, derivatives)
    (FIXTURE / "config.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["response"], indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/diffusion-direction"))
    parser.add_argument("--measure-only", action="store_true")
    args = parser.parse_args(argv)
    templates.ensure_templateflow()
    torch.set_num_threads(1)
    if args.measure_only:
        measure_stored(args.work)
        return
    derivatives = cohort(args.work / "cohort")
    config = DiffusionConfig(args.work / "run", [derivatives], checkpoint_every=500,
                             **TRAINING, **ARCHITECTURE)  # fmt: skip
    started = time.perf_counter()
    network = trained(config)
    minutes = (time.perf_counter() - started) / 60
    measured = measure(network, derivatives)
    FIXTURE.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config.out_dir / "model.pt", FIXTURE / "model.pt")
    digest = sha256(FIXTURE / "model.pt")
    record = {
        "architecture": ARCHITECTURE, "training": TRAINING, "model_sha256": digest,
        "training_minutes_one_thread": round(minutes, 1), "measured": measured,
        "response": response(network, derivatives),
        "environment": environment(),
    }  # fmt: skip
    (FIXTURE / "config.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
