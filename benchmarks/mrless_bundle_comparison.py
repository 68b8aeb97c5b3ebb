"""Two MR-less network bundles on the same validation heads: does a retrained one do better?

Each training run reports its validation error on its own held-out heads, so two runs of
different seeds are scored on different heads. This script scores both bundles on the
validation heads of both runs (the training generator's realistic heads, made with the
current simulator: ``seed * 100000 + 50000`` onwards), with each run's own validation
augmentation (:func:`taupet_bids.training.normaliser.validate`): mean, 95th percentile and worst
PET-space error in the brain (mm) after the affine stage and after the deformable one.

Usage: python benchmarks/mrless_bundle_comparison.py --bundle 0.3.0=PATH --bundle 0.4.0=PATH
[--seeds 8 10] [--n-heads 40] [--jobs 2]
Writes benchmarks/results/mrless_bundles_crossvalidation.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from taupet_bids.normalisation.bundle import load_normaliser
from taupet_bids.training.normaliser import (
    SEED_STRIDE,
    VALIDATION_OFFSET,
    _build_simulated,
    validate,
)

RESULTS = Path(__file__).resolve().parent / "results" / "mrless_bundles_crossvalidation.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", action="append", required=True, help="NAME=PATH")
    parser.add_argument("--seeds", type=int, nargs="+", default=[8, 10])
    parser.add_argument("--n-heads", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    bundles = dict(item.split("=", 1) for item in args.bundle)
    results = {}
    for seed in args.seeds:
        first = seed * SEED_STRIDE + VALIDATION_OFFSET
        heads = _build_simulated(range(first, first + args.n_heads), args.jobs, print, "other")
        for name, path in bundles.items():
            network = load_normaliser(path).network
            network.eval()
            results[f"{name} on seed {seed}"] = validate(network, heads, seed)
            print(name, seed, json.dumps(results[f"{name} on seed {seed}"]), flush=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
