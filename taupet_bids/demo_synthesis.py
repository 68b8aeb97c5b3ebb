"""``python -m taupet_bids.demo DIR --synthesize``: every synthesis path on the demo cohort.

taupet-bids ships no synthesis weights (docs/synthesis.md), so the demo does what a lab would
do with its own pairs: process the FDG and TSPO scans too, train one small bundle per task on
the demo's own derivatives (``taupet-bids-train synthesis``) and a latent diffusion model
conditioned on the participants' clinical values, then run the participant level with
``--synthesize`` and those bundles. A handful of scans and a few steps make bundles that
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
#: The latent diffusion model of tau from T1w and clinical values (MMSE, amyloid, age, from the
#: demo's participants.tsv): tiny widths, a few steps of each stage, 5 DDIM steps.
DIFFUSION = "tau-from-t1w-diffusion"
DIFFUSION_TRAINING = [
    "--task", "tau-from-t1w", "--architecture", "diffusion", "--autoencoder-steps", "20",
    "--autoencoder-channels", "4", "8", "8", "--latent-channels", "2", "--unet-channels", "8",
    "16", "--norm-groups", "4", "--head-channels", "4", "--ddim-steps", "5",
]  # fmt: skip
#: Its app run comes last: it writes the same desc-syntheticFromT1w names as the U-Net's (one
#: model per task and scan), so its images replace the U-Net's and add their SD maps.
DIFFUSION_RUN = ["--synthesize", "tau-from-t1w", "--synthesis-architecture", "diffusion",
                 "--n-samples", "2"]  # fmt: skip
#: The app runs that synthesise: T1w tasks with the tau run, tau-from-fdg with the FDG run.
SYNTHESIS_RUNS = (
    ([], ("tau-from-t1w", "tspo-from-t1w")),
    (OTHER_TRACERS["FDG"], ("tau-from-fdg",)),
)

RunApp = Callable[[list[str]], int]


def training_runs(bids_dir: Path) -> dict[str, list[str]]:
    """The training options of each bundle: one per task, and the diffusion model."""
    runs = {task: ["--task", task, *widths] for task, widths in WIDTHS.items()}
    runs[DIFFUSION] = [*DIFFUSION_TRAINING, "--bids-dir", str(bids_dir)]
    return runs


def train_bundles(bids_dir: Path, out_dir: Path, models_dir: Path, train: RunApp) -> dict:
    """One small bundle per training run, on the demo's own derivatives; failures named."""
    bundles = {}
    for name, options in training_runs(bids_dir).items():
        run_dir = models_dir / name
        argv = ["synthesis", str(out_dir), "--out", str(run_dir), "--steps", str(STEPS),
                "--checkpoint-every", str(STEPS), "--batch-size", "2", *options]  # fmt: skip
        print(f"[demo] training: taupet-bids-train {' '.join(argv)}", flush=True)
        if train(argv) == 0:
            bundles[name] = run_dir / "bundle"
        else:
            print(f"[demo] training {name} failed: it is left out of the synthesis runs")
    return bundles


def run(bids_dir: Path, out_dir: Path, work_dir: Path, models_dir: Path, run_app: RunApp,
        train: RunApp) -> int:  # fmt: skip
    """Process the other tracers, train, synthesise; the worst exit code of the app runs (1
    where a training failed)."""
    codes = []
    for name, options in OTHER_TRACERS.items():
        print(f"[demo] processing the {name} scans: {' '.join(options)}", flush=True)
        codes.append(run_app(_participant(bids_dir, out_dir, work_dir, options)))
    bundles = train_bundles(bids_dir, out_dir, models_dir, train)
    codes += [1] * (len(training_runs(bids_dir)) - len(bundles))
    for options, tasks in SYNTHESIS_RUNS:
        tasks = [task for task in tasks if task in bundles]
        if not tasks:
            continue
        synthesis = ["--synthesize", *tasks, "--synthesis-model", *(str(bundles[t]) for t in tasks)]
        print(f"[demo] synthesising: {' '.join([*options, *synthesis])}", flush=True)
        codes.append(run_app(_participant(bids_dir, out_dir, work_dir, [*options, *synthesis])))
    if DIFFUSION in bundles:
        diffusion = [*DIFFUSION_RUN, "--synthesis-model", str(bundles[DIFFUSION])]
        print(f"[demo] synthesising with the latent diffusion model and each participant's "
              f"clinical values: {' '.join(diffusion)} (its desc-syntheticFromT1w images replace "
              "the U-Net's)", flush=True)  # fmt: skip
        codes.append(run_app(_participant(bids_dir, out_dir, work_dir, diffusion)))
    print(
        f"[demo] the synthesis bundles in {models_dir} were trained for {STEPS} steps on this "
        "demo's few scans: they show the path, not an accuracy (docs/synthesis.md)",
        flush=True,
    )
    return max(codes, default=0)


def _participant(bids_dir: Path, out_dir: Path, work_dir: Path, options: list[str]) -> list[str]:
    return [str(bids_dir), str(out_dir), "participant", "-w", str(work_dir), *options]
