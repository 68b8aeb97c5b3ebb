"""Is a finer T1w-to-template SyN worth its cost? 2 mm (the app's) against 1 mm.

For the first subjects of the participant benchmark's other-anatomy cohort (``OUT/other``), the
app's N4-corrected T1w is registered to MNI152NLin6Asym again with the app's own call
(:func:`taupet_bids.core.registration.register`, SyN, seed 42), once to the 2 mm template (what
the app does) and once to the 1 mm template. The app's averaged PET is then taken through its own
PET-to-T1w transform and each T1w-to-template result onto the 2 mm grid, divided by its
InfCerebGrey mean, and the meta-temporal and Braak composites are compared with the simulator's
blurred truth. Registration time is wall clock on this machine. Writes the "SyN resolution"
section of docs/benchmarks.md.

Usage: python benchmarks/syn_resolution.py --bench /tmp/taupet-bench14 --n-subjects 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import (  # noqa: E402
    GOAL_REGIONS,
    REPO,
    RESULTS_DIR,
    environment,
    markdown_table,
    truth_table,
    update_report,
)
from registration_qc import composites, template_regions  # noqa: E402

from taupet_bids import templates  # noqa: E402
from taupet_bids.core import registration  # noqa: E402

MARKER_START = "<!-- syn-resolution:start -->"
MARKER_END = "<!-- syn-resolution:end -->"
RESOLUTIONS = (2, 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", type=Path, default=Path("/tmp/taupet-bench14"))
    parser.add_argument("--n-subjects", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    return parser.parse_args(argv)


def one_subject(
    derivatives: Path, bids: Path, subject: str, work: Path, regions: dict
) -> list[dict]:
    anat, pet = derivatives / f"sub-{subject}" / "anat", derivatives / f"sub-{subject}" / "pet"
    (t1w,) = anat.glob("*_desc-preproc_T1w.nii.gz")
    (pet_avg,) = pet.glob("*_desc-preproc_pet.nii.gz")
    (pet_to_t1w,) = pet.glob("*_from-pet_to-T1w_mode-image_xfm.mat")
    truth = truth_table(bids, subject, "blurred").set_index("region").suvr
    reference = str(templates.t1w_path(2))
    rows = []
    for resolution in RESOLUTIONS:
        prefix = work / f"{subject}_res{resolution}_"
        start = time.perf_counter()
        result = registration.register(
            str(templates.t1w_path(resolution)), str(t1w), str(prefix), transform_type="SyN",
            seed=42,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        out = work / f"{subject}_res{resolution}_pet.nii.gz"
        chain = [*result["forward_transforms"], str(pet_to_t1w)]
        registration.apply_transforms(str(pet_avg), reference, chain, str(out))
        values = composites(np.asarray(nib.load(out).dataobj, dtype=np.float32), regions)
        errors = {r: 100 * (values[r] / truth[r] - 1) for r in GOAL_REGIONS}
        rows.append({"subject": subject, "resolution_mm": resolution, "seconds": seconds,
                     "t1w2std_correlation": result["correlation"], **errors})  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    registration.set_threads(args.threads)
    bids = args.bench / "other" / "bids"
    derivatives = args.bench / "other" / "template" / "derivatives"
    subjects = sorted(p.name.removeprefix("sub-") for p in derivatives.glob("sub-*") if p.is_dir())
    rows, regions = [], template_regions()
    with tempfile.TemporaryDirectory() as work:
        for subject in subjects[: args.n_subjects]:
            rows += one_subject(derivatives, bids, subject, Path(work), regions)
    long = pd.DataFrame(rows)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    long.to_csv(RESULTS_DIR / "syn_resolution.csv", index=False)
    summary = long.groupby("resolution_mm").agg(
        seconds=("seconds", "mean"),
        **{f"{r} MAPE %": (r, lambda e: float(np.mean(np.abs(e)))) for r in GOAL_REGIONS},
        **{f"{r} max abs %": (r, lambda e: float(np.max(np.abs(e)))) for r in GOAL_REGIONS},
    )
    env = environment()
    section = "\n".join([
        MARKER_START,
        "## SyN resolution: 2 mm (the app's) against 1 mm",
        "",
        "Produced by `benchmarks/syn_resolution.py` (do not edit by hand): "
        f"`python benchmarks/syn_resolution.py --bench {args.bench} --n-subjects "
        f"{args.n_subjects} --threads {args.threads}`. Measured {env['date']}, commit "
        f"`{env['git_commit']}`, {args.threads} ITK threads; raw rows in "
        "`benchmarks/results/syn_resolution.csv`.",
        "",
        f"The first {args.n_subjects} subjects of the other-anatomy cohort: the app's T1w "
        "registered again to the template at each resolution, the app's averaged PET taken "
        "through its own PET-to-T1w transform and the new T1w-to-template transforms, composite "
        "errors against the blurred truth (template masks).",
        "",
        markdown_table(summary.reset_index(), ".2f"),
        "",
        MARKER_END,
    ])  # fmt: skip
    update_report(args.report, section, MARKER_START, MARKER_END)
    print(summary.to_string())


if __name__ == "__main__":
    main()
