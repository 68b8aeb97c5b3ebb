"""Train the tiny latent diffusion model that the test suite's direction test samples from.

The test ``test_a_tiny_trained_model_gives_more_tau_at_a_lower_mmse`` needs a model that has
learned the clinical condition, and a tiny model needs thousands of denoiser steps for that
(about 20 minutes on one CPU thread), more than a test may spend. So this script trains it once,
on the constructed cohort of ``diffusion_constructed.py`` (one anatomy, Braak I-IV SUVR 1-2.5,
MMSE 30-12: only the MMSE tells the load), with the product's own training code, and writes the
weights, the configuration and the weights' SHA-256 to ``tests/data/diffusion_direction/``.
Training is seeded and bit-reproducible on one thread, so rerunning this script rebuilds the
same file; rerun it whenever the network's layout changes (the test then fails to load it).

Usage: python benchmarks/diffusion_direction_fixture.py [--work /tmp/diffusion-direction]
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
from taupet_bids.models.bundle import sha256  # noqa: E402
from taupet_bids.training.synthesis_diffusion import DiffusionConfig  # noqa: E402

FIXTURE = REPO / "tests" / "data" / "diffusion_direction"
#: Deterministic autoencoder and a tau latent centred on the cohort's mean (so the denoiser
#: learns what differs between scans); seed 4 is the one that went either way at 2000 steps.
TRAINING = {
    "seed": 4, "autoencoder_steps": 200, "steps": 5000, "batch_size": 2,
    "autoencoder_posterior": "mean", "centre_tau_latent": True, "ddim_steps": 10,
}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/diffusion-direction"))
    args = parser.parse_args(argv)
    templates.ensure_templateflow()
    torch.set_num_threads(1)
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
        "environment": environment(),
    }  # fmt: skip
    (FIXTURE / "config.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
