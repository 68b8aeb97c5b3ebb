"""MR-less participant run time: what issue #15's speed goal (<= 20 s per scan on 2 cores) measures.

Simulates a cohort of the default (other) anatomy, runs the participant level on it as a user
would (``--mr-less always`` with the default method, ``--nprocs 2``), and reports the wall time
per scan from start to the last table, with Nipype's node runtimes per scan so the cost can be
placed. Run it on an otherwise idle machine: the number is a wall time. Writes the "MR-less
participant speed" section of docs/benchmarks.md and benchmarks/results/mrless_speed.json.

Usage: python benchmarks/mrless_speed.py [--n-subjects 10] [--seed 20263] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import (  # noqa: E402
    REPO,
    RESULTS_DIR,
    environment,
    load_node_costs,
    markdown_table,
    simulate,
    update_report,
    venv_bin,
)

START, END = "<!-- mrless-speed:start -->", "<!-- mrless-speed:end -->"
GOAL_S_PER_SCAN = 20.0
TOP_NODES = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20263)
    parser.add_argument("--out", type=Path, default=Path("/tmp/taupet-mrless-speed"))
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    return parser.parse_args(argv)


def run_participant(args: argparse.Namespace) -> tuple[float, list[str]]:
    """One fresh participant run (its output and work folders are removed first)."""
    out_dir, work_dir = args.out / "derivatives", args.out / "work"
    for stale in (out_dir, work_dir):
        shutil.rmtree(stale, ignore_errors=True)
    command = [venv_bin("taupet-bids"), str(args.out / "bids"), str(out_dir), "participant"]
    command += ["-w", str(work_dir), "--nprocs", str(args.nprocs), "--mr-less", "always"]
    command += ["--skip-bids-validation"]
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "NIPYPE_NO_ET": "1"})
    return time.perf_counter() - start, command


def node_table(work_dir: Path) -> tuple[pd.DataFrame, float]:
    """Mean runtime per scan of the costliest nodes, and the summed node time per scan."""
    nodes = load_node_costs(work_dir)
    per_scan = nodes.groupby(["scan", "node"]).duration_s.sum().reset_index()
    mean = per_scan.groupby("node").duration_s.mean().sort_values(ascending=False)
    total = float(per_scan.groupby("scan").duration_s.sum().mean())
    table = pd.DataFrame({"node": mean.index[:TOP_NODES], "mean_s": mean.to_numpy()[:TOP_NODES]})
    return table, total


def render(result: dict, table: pd.DataFrame) -> str:
    per_scan = result["wall_s_per_scan"]
    verdict = "met" if per_scan <= GOAL_S_PER_SCAN else "NOT met"
    return "\n".join(
        [
            START,
            "## MR-less participant speed",
            "",
            f"`benchmarks/mrless_speed.py`: {result['n_scans']} scans of a simulated cohort "
            f"(other anatomy, seed {result['seed']}, 4 frames of 5 min each), one participant run "
            f"with `--mr-less always` (default method, `{result['method']}`) and `--nprocs "
            f"{result['nprocs']}`, from the command to the last table and report.",
            "",
            f"- Wall time: {result['wall_s']:.0f} s, **{per_scan:.1f} s per scan** "
            f"(goal <= {GOAL_S_PER_SCAN:.0f} s: {verdict}).",
            f"- Summed node time per scan: {result['node_s_per_scan']:.1f} s (two nodes run "
            "at once, so the wall time per scan is about half of this plus the start-up: "
            "reading the dataset, building the graph, loading the network once).",
            "",
            "Costliest nodes (mean seconds per scan):",
            "",
            markdown_table(table, ".2f"),
            "",
            f"Machine: {result['environment']['cpu']}, {result['nprocs']} processes; measured "
            "on an otherwise idle machine.",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not (args.out / "bids" / "dataset_description.json").exists():
        simulate(args.out / "bids", args.n_subjects, args.seed, args.nprocs, "other")
    wall, command = run_participant(args)
    table, node_s = node_table(args.out / "work")
    n_scans = len(list((args.out / "derivatives").glob("sub-*/pet/*_desc-preproc_pet.nii.gz")))
    result = {
        "seed": args.seed,
        "n_scans": n_scans,
        "nprocs": args.nprocs,
        "method": "network+ants",
        "wall_s": wall,
        "wall_s_per_scan": wall / n_scans,
        "node_s_per_scan": node_s,
        "nodes": table.to_dict(orient="records"),
        "command": command,
        "environment": environment(),
    }
    (RESULTS_DIR / "mrless_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    update_report(args.report, render(result, table), START, END)
    print(f"{wall:.0f} s for {n_scans} scans: {wall / n_scans:.1f} s per scan")


if __name__ == "__main__":
    main()
