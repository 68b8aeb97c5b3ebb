"""``python -m taupet_bids.demo DIR --synthesize``: every synthesis path on the demo cohort.

taupet-bids ships no synthesis weights (docs/synthesis.md), so the demo does what a lab would
do with its own pairs: process the FDG and TSPO scans too, train one small bundle per task on
the demo's own derivatives (``taupet-bids-train synthesis``), then run the participant level
with ``--synthesize`` and those bundles. A handful of scans and a few steps make bundles that
show the path (names, sidecars, tables, report, group columns), not an accuracy: the demo says
so, and the benchmark (docs/benchmarks.md) is where accuracy is measured.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

#: Extra simulator options: FDG and TSPO scans, and atrophy that follows each person's tau.
SIMULATE_OPTIONS = ["--modalities", "tau", "fdg", "tspo", "--atrophy", "braak"]
#: The app options that process each other tracer (the TSPO reference of docs/synthesis.md).
OTHER_TRACERS = {
    "FDG": ["--tracer", "FDG"],
    "TSPO": ["--tracer", "PBR28", "--reference-region", "WholeCereb"],
}
#: Training steps and narrow widths per task: a minute or two each on one CPU thread.
STEPS = 40
WIDTHS = {
    "tau-from-t1w": ["--channels", "8", "16", "--strides", "2", "--num-res-units", "0"],
    "tspo-from-t1w": ["--features", "4", "8", "16", "--heads-channels", "4"],
    "tau-from-fdg": ["--features", "4", "8", "16", "--growth", "4"],
}
#: The app runs that synthesise: T1w tasks with the tau run, tau-from-fdg with the FDG run.
SYNTHESIS_RUNS = (
    ([], ("tau-from-t1w", "tspo-from-t1w")),
    (OTHER_TRACERS["FDG"], ("tau-from-fdg",)),
)

RunApp = Callable[[list[str]], int]


def train_bundles(out_dir: Path, models_dir: Path, train: RunApp) -> dict[str, Path]:
    """One small bundle per task, trained on the demo's own derivatives; failures named."""
    bundles = {}
    for task, widths in WIDTHS.items():
        run_dir = models_dir / task
        argv = ["synthesis", str(out_dir), "--task", task, "--out", str(run_dir),
                "--steps", str(STEPS), "--checkpoint-every", str(STEPS), "--batch-size", "2",
                *widths]  # fmt: skip
        print(f"[demo] training: taupet-bids-train {' '.join(argv)}", flush=True)
        if train(argv) == 0:
            bundles[task] = run_dir / "bundle"
        else:
            print(f"[demo] training {task} failed: it is left out of the synthesis runs")
    return bundles


def run(bids_dir: Path, out_dir: Path, work_dir: Path, models_dir: Path, run_app: RunApp,
        train: RunApp) -> int:  # fmt: skip
    """Process the other tracers, train, synthesise; the worst exit code of the app runs (1
    where a training failed)."""
    codes = []
    for name, options in OTHER_TRACERS.items():
        print(f"[demo] processing the {name} scans: {' '.join(options)}", flush=True)
        codes.append(run_app(_participant(bids_dir, out_dir, work_dir, options)))
    bundles = train_bundles(out_dir, models_dir, train)
    codes += [1] * (len(WIDTHS) - len(bundles))
    for options, tasks in SYNTHESIS_RUNS:
        tasks = [task for task in tasks if task in bundles]
        if not tasks:
            continue
        synthesis = ["--synthesize", *tasks, "--synthesis-model", *(str(bundles[t]) for t in tasks)]
        print(f"[demo] synthesising: {' '.join([*options, *synthesis])}", flush=True)
        codes.append(run_app(_participant(bids_dir, out_dir, work_dir, [*options, *synthesis])))
    print(
        f"[demo] the synthesis bundles in {models_dir} were trained for {STEPS} steps on this "
        "demo's few scans: they show the path, not an accuracy (docs/synthesis.md)",
        flush=True,
    )
    return max(codes, default=0)


def _participant(bids_dir: Path, out_dir: Path, work_dir: Path, options: list[str]) -> list[str]:
    return [str(bids_dir), str(out_dir), "participant", "-w", str(work_dir), *options]
