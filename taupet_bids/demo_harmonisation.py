"""``python -m taupet_bids.demo DIR --harmonize``: the PET-MR harmonisation path on the demo.

taupet-bids ships no harmoniser weights (docs/harmonisation.md), so the demo does what a lab
with same-day PET/MR and PET-CT pairs would do: every visit is simulated on both systems (the
PET/MR with MR-based attenuation correction, one method drawn per participant, and the CT that
trains the auxiliary head), the participant level processes both, a small harmoniser is trained
on the demo's own pairs (``taupet-bids-train harmoniser``), and the participant level runs again
with ``--harmonize auto`` and that bundle: only the PET/MR scans are harmonised, each told its
AC method. A few steps on a few pairs show the path (names, sidecars, tables, report, group
column), not an accuracy: the demo says so, and the benchmark is where accuracy is measured.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

#: Extra simulator options: each visit on a PET-CT and a PET/MR, and the CT for training.
SIMULATE_OPTIONS = ["--pet-mr", "mixed", "--write-ct"]
#: Training steps and narrow widths: well under a minute on one CPU thread.
STEPS = 30
TRAINING = ["--channels", "4", "8", "8", "--batch-size", "2", "--checkpoint-every", str(STEPS)]

RunApp = Callable[[list[str]], int]


def run(bids_dir: Path, out_dir: Path, work_dir: Path, models_dir: Path, run_app: RunApp,
        train: RunApp) -> int:  # fmt: skip
    """Train on the processed pairs, then harmonise; 1 where the training failed, else the app
    run's exit code."""
    run_dir = models_dir / "harmoniser"
    argv = ["harmoniser", str(out_dir), "--bids-dir", str(bids_dir), "--out", str(run_dir),
            "--steps", str(STEPS), *TRAINING]  # fmt: skip
    print(f"[demo] training: taupet-bids-train {' '.join(argv)}", flush=True)
    if train(argv) != 0:
        print("[demo] training the harmoniser failed: no scan is harmonised", flush=True)
        return 1
    options = ["--harmonize", "auto", "--harmonization-model", str(run_dir / "bundle")]
    print(f"[demo] harmonising the PET/MR scans: {' '.join(options)}", flush=True)
    code = run_app([str(bids_dir), str(out_dir), "participant", "-w", str(work_dir), *options])
    print(
        f"[demo] the harmoniser in {run_dir} was trained for {STEPS} steps on this demo's few "
        "pairs: it shows the path, not an accuracy (docs/harmonisation.md)",
        flush=True,
    )
    return code
