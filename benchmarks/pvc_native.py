"""Partial-volume correction through the BIDS App: the MR-based path corrects in PET space.

Runs ``taupet-bids ... participant --pvc gtm rbv mg`` on the participant benchmark's simulated
cohort (``benchmarks/participant_accuracy.py --out /tmp/taupet-bench``), one subject at a time so
that each gets its own **nominal** PSF (``--pvc-fwhm``, the FWHM the simulator blurred it with,
from the truth sidecar). In the MR-based path the template labels are pulled onto the PET grid
through the inverse of the subject's registrations and the correction runs there, where that
nominal FWHM is the PET's actual resolution; the reference region is corrected as a region of its
own. The app's ``pvc-`` tables are compared with the simulator's **sharp** truth, as
``benchmarks/pvc_recovery.py`` does for template-space correction (the MR-less path).

Rerun: ``NIPYPE_NO_ET=1 .venv/bin/python benchmarks/pvc_native.py --bench /tmp/taupet-bench
--out /tmp/taupet-bench-pvc --report docs/benchmarks.md``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stats import agreement  # noqa: E402
from participant_accuracy import (  # noqa: E402
    RESULTS_DIR,
    SEGMENTATIONS,
    environment,
    markdown_table,
    truth_table,
    update_report,
)
from pvc_recovery import GOAL_MAPE_PCT, GOAL_REGIONS, KEY_REGIONS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MARKER_START = "<!-- pvc-native:start -->"
MARKER_END = "<!-- pvc-native:end -->"
METHODS = ("none", "GTM", "RBV", "MG")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", type=Path, default=Path("/tmp/taupet-bench"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/taupet-bench-pvc"))
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--reuse", action="store_true", help="tables already in --out")
    return parser.parse_args(argv)


def nominal_fwhm(bids: Path, subject: str) -> float:
    from taupet_bids.simulate.truth import find_truth

    sidecar = Path(find_truth(bids, subject, kind="sharp", suffix=".json"))
    return float(json.loads(sidecar.read_text())["psf_fwhm_mm"])


def run_subject(bids: Path, out: Path, subject: str, fwhm: float) -> float:
    """One app run (seconds), as a user would type it."""
    app = Path(sys.executable).with_name("taupet-bids")
    command = [
        app, bids, out / "derivatives", "participant", "-w", out / "work",
        "--participant-label", subject, "--skip-bids-validation", "--mr-less", "never",
        "--pvc", "gtm", "rbv", "mg", "--pvc-fwhm", f"{fwhm:.4f}",
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"sub-{subject} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - start


def measured(out: Path, subject: str, method: str) -> pd.DataFrame:
    """Bilateral regional SUVR of one subject and method from the app's tables."""
    pet_dir = out / "derivatives" / f"sub-{subject}" / "pet"
    entity = "" if method == "none" else f"_pvc-{method}"
    parts = []
    for seg in SEGMENTATIONS:
        found = pet_dir.glob(f"sub-{subject}_*_seg-{seg}_label-*{entity}_suvr.tsv")
        (path,) = [f for f in found if method != "none" or "_pvc-" not in f.name]
        table = pd.read_csv(path, sep="\t", na_values="n/a")
        keep = ~table.region.str.match(r"^(left-|right-|reference-)")
        parts.append(table.loc[keep, ["region", "suvr_mean"]].assign(atlas=seg))
    return pd.concat(parts, ignore_index=True).rename(columns={"suvr_mean": "measured"})


def collect(bench: Path, out: Path, reuse: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    bids = bench / "bids"
    participants = pd.read_csv(bids / "participants.tsv", sep="\t")
    rows, runs = [], []
    for participant in participants.itertuples():
        subject = participant.participant_id.removeprefix("sub-")
        fwhm = nominal_fwhm(bids, subject)
        seconds = float("nan") if reuse else run_subject(bids, out, subject, fwhm)
        runs.append({"subject": subject, "fwhm_mm": fwhm, "seconds": seconds})
        truth = truth_table(bids, subject, "sharp").rename(columns={"suvr": "truth_sharp"})
        for method in METHODS:
            table = measured(out, subject, method).merge(truth, on=["atlas", "region"])
            rows.append(
                table.assign(subject=subject, braak_stage=participant.braak_stage, method=method)
            )
        print(f"sub-{subject}: FWHM {fwhm:.2f} mm, {seconds:.0f} s", flush=True)
    return pd.concat(rows, ignore_index=True), pd.DataFrame(runs)


def summarise(long: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (method, region), group in long.groupby(["method", "region"], sort=False):
        group = group.dropna(subset=["measured"])
        if group.empty:
            continue
        stats = agreement(group.measured.to_numpy(), group.truth_sharp.to_numpy())
        rows.append({"method": method, "region": region, **stats})
    return pd.DataFrame(rows)


def region_rows(summary: pd.DataFrame) -> pd.DataFrame:
    indexed = summary.set_index(["region", "method"])
    rows = []
    for region in KEY_REGIONS:
        row = {"region": region}
        for method in METHODS:
            label = "no PVC" if method == "none" else method
            row[f"{label} bias %"] = indexed.loc[(region, method), "bias_pct"]
            row[f"{label} MAPE %"] = indexed.loc[(region, method), "mape_pct"]
        rows.append(row)
    return pd.DataFrame(rows)


def goal_rows(summary: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    indexed = summary.set_index(["region", "method"])
    rows, goals = [], {}
    for region in GOAL_REGIONS:
        gtm, none = indexed.loc[(region, "GTM")], indexed.loc[(region, "none")]
        met = bool(gtm.mape_pct <= GOAL_MAPE_PCT)
        goals[region] = {"mape_before_pct": none.mape_pct, "mape_gtm_pct": gtm.mape_pct,
                         "max_abs_gtm_pct": gtm.max_abs_pct, "met": met}  # fmt: skip
        rows.append(
            {
                "region": region,
                "MAPE % before": none.mape_pct,
                "MAPE % after GTM": gtm.mape_pct,
                "max abs % after GTM": gtm.max_abs_pct,
                "ICC vs sharp after GTM": gtm.icc,
                "goal": "MET" if met else "NOT MET",
            }
        )
    return pd.DataFrame(rows), goals


def per_subject_rows(long: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    part = long[long.region == "metatemporal"]
    wide = part.pivot(index=["subject", "braak_stage", "truth_sharp"], columns="method")
    wide = wide["measured"].reset_index().merge(runs[["subject", "fwhm_mm"]])
    wide.columns.name = None
    wide = wide.rename(columns={"braak_stage": "Braak", "truth_sharp": "sharp truth",
                                "fwhm_mm": "nominal FWHM mm", "none": "no PVC"})  # fmt: skip
    return wide[["subject", "Braak", "nominal FWHM mm", "sharp truth", "no PVC", *METHODS[1:]]]


def render(env: dict, long, summary, runs, goals_table) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    n = long.subject.nunique()
    cost = (
        "Run times are in the raw results only: this benchmark is about accuracy (the cost of "
        "each method is in the section above)."
    )
    lines = [
        MARKER_START,
        "## Partial-volume correction in PET space (MR-based path, through the app)",
        "",
        "Produced by `benchmarks/pvc_native.py`; do not edit by hand. Rerun with",
        "",
        "```",
        "NIPYPE_NO_ET=1 .venv/bin/python benchmarks/pvc_native.py --bench /tmp/taupet-bench "
        "--out /tmp/taupet-bench-pvc --report docs/benchmarks.md",
        "```",
        "",
        f"Measured {env['date']} on {env['cpu']}, {env['cores']} cores; Python {env['python']}, "
        f"{packages}; commit `{env['git_commit']}`. Raw results: "
        "`benchmarks/results/pvc_native_long.csv` and `pvc_native_summary.json`.",
        "",
        f"Input: the same {n} simulated subjects as above, processed by `taupet-bids "
        "participant --pvc gtm rbv mg --pvc-fwhm <nominal FWHM>` one subject at a time. In the "
        "MR-based path the PVC label image (DK labels, the reference region as its own label, "
        "rest of brain, head, air) is pulled onto the subject's PET grid through the inverse of "
        "the PET-to-T1w and T1w-to-template registrations, the motion-corrected PET is corrected "
        "there with the scanner's own PSF, each corrected image is divided by its own mean in "
        "the reference region, and each label's value is painted back on the template labels for "
        "the usual tables. Errors are against the sharp truth, as in the section above. " + cost,
        "",
        f"### Goal: MAPE vs sharp truth <= {GOAL_MAPE_PCT:g} % after GTM",
        "",
        markdown_table(goals_table),
        "",
        "### Meta-temporal and Braak regions: bias and MAPE % vs sharp truth",
        "",
        markdown_table(region_rows(summary)),
        "",
        "### Meta-temporal SUVR per subject",
        "",
        markdown_table(per_subject_rows(long, runs)),
        "",
        MARKER_END,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    long, runs = collect(args.bench.resolve(), args.out.resolve(), args.reuse)
    summary = summarise(long)
    goals_table, goals = goal_rows(summary)
    env = environment()
    update_report(args.report, render(env, long, summary, runs, goals_table), MARKER_START,
                  MARKER_END)  # fmt: skip
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    long.to_csv(RESULTS_DIR / "pvc_native_long.csv", index=False, float_format="%.6f")
    payload = {"environment": env, "goals": goals, "runs": runs.to_dict(orient="list")}
    (RESULTS_DIR / "pvc_native_summary.json").write_text(
        json.dumps(payload, indent=2, default=float) + "\n"
    )
    for region, goal in goals.items():
        print(f"{region}: MAPE {goal['mape_before_pct']:.2f} % -> {goal['mape_gtm_pct']:.2f} %")


if __name__ == "__main__":
    main()
