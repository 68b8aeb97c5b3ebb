"""Wall time of the digital-phantom simulator for a cohort, recorded in docs/benchmarks.md.

Usage: ``python benchmarks/simulator_speed.py [--n-subjects 10] [--seed 1] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import update_report  # noqa: E402

from taupet_bids.simulate import CohortConfig, simulate_cohort

START, END = "<!-- simulator-speed:start -->", "<!-- simulator-speed:end -->"
REPORT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def time_cohort(n_subjects: int, seed: int, jobs: int) -> float:
    """Seconds to write one cohort (T1w + 4-frame tau PET + truth per subject)."""
    folder = Path(tempfile.mkdtemp(prefix="taupet-simspeed-"))
    try:
        begin = time.perf_counter()
        config = CohortConfig(n_subjects=n_subjects, seed=seed, jobs=jobs)
        simulate_cohort(folder / "bids", config, log=lambda line: None)
        return time.perf_counter() - begin
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def section(n_subjects: int, seed: int, jobs: int, seconds: float, load: float) -> str:
    return "\n".join([
        START,
        "## Simulator speed",
        "",
        "Produced by `benchmarks/simulator_speed.py`; rerun with "
        f"`.venv/bin/python benchmarks/simulator_speed.py --n-subjects {n_subjects} "
        f"--seed {seed} --jobs {jobs}`.",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores "
        f"(1-minute load average at the end: {load:.1f}).",
        "",
        "| subjects | jobs | wall time (s) | per subject (s) | goal (10 subjects < 120 s) |",
        "|---|---|---|---|---|",
        f"| {n_subjects} | {jobs} | {seconds:.1f} | {seconds / n_subjects:.1f} | "
        f"{'MET' if n_subjects >= 10 and seconds < 120 else 'see text'} |",
        END,
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-subjects", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    seconds = time_cohort(args.n_subjects, args.seed, args.jobs)
    update_report(
        REPORT,
        section(args.n_subjects, args.seed, args.jobs, seconds, os.getloadavg()[0]),
        START,
        END,
    )
    print(f"{args.n_subjects} subjects in {seconds:.1f} s")


if __name__ == "__main__":
    main()
