"""Partial-volume correction through the BIDS App: the MR-based path corrects in PET space.

Runs ``taupet-bids ... participant --pvc gtm rbv mg`` on the participant benchmark's simulated
cohorts (``benchmarks/participant_accuracy.py --out /tmp/taupet-bench``: ``OUT/<anatomy>/bids``)
and compares the app's ``pvc-`` tables with the simulator's **sharp** truth (the unblurred map,
over the subject's own regions), as ``benchmarks/pvc_recovery.py`` does for template-space
correction (the MR-less path).

Worlds are ``anatomy:regional-mask`` pairs: the *template* anatomy (phantoms warped from the
analysis template: the flattering case) and the *other* anatomy (the simulator's default), each
with ``--regional-mask subject-gm`` (the default: the PVC label image follows the subject's
segmented T1w) or ``template`` (the template's DK labels).

PSF: ``table`` (default) runs the app once per world with ``--pvc`` alone, so each scan's PSF
comes from the scanner resolution table, as for a user; ``nominal`` runs one subject at a time
with ``--pvc-fwhm`` set to the FWHM the simulator applied (the oracle).

In the MR-based path the PVC label image is pulled onto the PET grid through the inverse of the
subject's registrations and the correction runs there, where the PSF is the scanner's own; the
reference region is corrected as a region of its own.

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
    venv_bin,
)
from pvc_recovery import GOAL_MAPE_PCT, GOAL_MAX_ABS_PCT, GOAL_REGIONS, KEY_REGIONS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def markers(section: str) -> tuple[str, str]:
    """The docs markers of a section (``pvc-native`` is the main one)."""
    return f"<!-- {section}:start -->", f"<!-- {section}:end -->"


def results_stem(section: str) -> str:
    """File name stem of a section's results (``pvc_native`` for the main one)."""
    return section.replace("-", "_")


METHODS = ("none", "GTM", "RBV", "MG")
WORLDS = ("template:subject-gm", "other:subject-gm", "other:template")
#: QC flags that say nothing about the SUVR: inter-frame motion is corrected, and cohorts simulated
#: before restlessness (simulate/head_motion.py, 2026-12-08) reach the FD flag on half the scans.
IGNORED_FLAGS = ("motion:",)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", type=Path, default=Path("/tmp/taupet-bench"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/taupet-bench-pvc"))
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS))
    parser.add_argument("--psf", choices=("table", "nominal"), default="table")
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument(
        "--reuse", action="store_true", help="read the app's tables where --out holds a world's"
    )
    parser.add_argument(
        "--section", default="pvc-native",
        help="docs section (its markers) and results file names; default pvc-native",
    )  # fmt: skip
    return parser.parse_args(argv)


def nominal_fwhm(bids: Path, subject: str) -> float:
    from taupet_bids.simulate.truth import find_truth

    sidecar = Path(find_truth(bids, subject, kind="sharp", suffix=".json"))
    return float(json.loads(sidecar.read_text())["psf_fwhm_mm"])


def parse_world(world: str) -> tuple[str, str, str]:
    """(anatomy, regional mask, PVC regions) of ``anatomy:mask[:regions]`` (regions: hard)."""
    anatomy, mask, *rest = world.split(":")
    return anatomy, mask, rest[0] if rest else "hard"


def run_app(
    bids: Path, out: Path, mask: str, nprocs: int, extra: list[str], regions: str = "hard"
) -> float:
    """One app run (seconds), as a user would type it."""
    command = [
        venv_bin("taupet-bids"), bids, out / "derivatives", "participant", "-w", out / "work",
        "--skip-bids-validation", "--mr-less", "never", "--nprocs", str(nprocs),
        "--regional-mask", mask, "--pvc", "gtm", "rbv", "mg", "--pvc-regions", regions, *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{out} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - start


def measured(derivatives: Path, subject: str, method: str) -> pd.DataFrame:
    """Bilateral regional SUVR of one subject and method from the app's tables."""
    pet_dir = derivatives / f"sub-{subject}" / "pet"
    entity = "" if method == "none" else f"_pvc-{method}"
    parts = []
    for seg in SEGMENTATIONS:
        found = pet_dir.glob(f"sub-{subject}_*_seg-{seg}_label-*{entity}_suvr.tsv")
        (path,) = [f for f in found if method != "none" or "_pvc-" not in f.name]
        table = pd.read_csv(path, sep="\t", na_values="n/a")
        keep = ~table.region.str.match(r"^(left-|right-|reference-)")
        parts.append(table.loc[keep, ["region", "suvr_mean"]].assign(atlas=seg))
    return pd.concat(parts, ignore_index=True).rename(columns={"suvr_mean": "measured"})


def scan_flags(derivatives: Path, subject: str) -> list[str]:
    """The scan's QC flags that bear on its SUVR (motion flags left out, see IGNORED_FLAGS)."""
    (path,) = sorted((derivatives / f"sub-{subject}" / "pet").glob("*_qc.json"))
    flags = json.loads(path.read_text()).get("flags", [])
    return [flag for flag in flags if not flag.startswith(IGNORED_FLAGS)]


def collect(bench: Path, out: Path, world: str, psf: str, nprocs: int, reuse: bool):
    """Long table (world, subject, method, region, measured, sharp truth, flagged), run times."""
    anatomy, mask, regions = parse_world(world)
    folder = mask if regions == "hard" else f"{mask}-{regions}"
    bids, run_dir = bench / anatomy / "bids", out / anatomy / folder
    participants = pd.read_csv(bids / "participants.tsv", sep="\t")
    subjects = [p.removeprefix("sub-") for p in participants.participant_id]
    fwhm = {subject: nominal_fwhm(bids, subject) for subject in subjects}
    runs = []
    reuse = reuse and (run_dir / "derivatives").exists()
    if not reuse and psf == "table":
        seconds = run_app(bids, run_dir, mask, nprocs, [], regions)
        runs.append({"world": world, "subject": "all", "seconds": seconds})
    rows = []
    for participant in participants.itertuples():
        subject = participant.participant_id.removeprefix("sub-")
        if not reuse and psf == "nominal":
            extra = ["--participant-label", subject, "--pvc-fwhm", f"{fwhm[subject]:.4f}"]
            seconds = run_app(bids, run_dir, mask, nprocs, extra, regions)
            runs.append({"world": world, "subject": subject, "seconds": seconds})
        derivatives = run_dir / "derivatives"
        flags = scan_flags(derivatives, subject)
        truth = truth_table(bids, subject, "sharp").rename(columns={"suvr": "truth_sharp"})
        for method in METHODS:
            table = measured(derivatives, subject, method).merge(truth, on=["atlas", "region"])
            rows.append(
                table.assign(
                    world=world,
                    subject=subject,
                    braak_stage=participant.braak_stage,
                    method=method,
                    nominal_fwhm_mm=fwhm[subject],
                    flagged=bool(flags),
                    flags="; ".join(flags),
                )  # fmt: skip
            )
        print(f"{world} sub-{subject}: nominal FWHM {fwhm[subject]:.2f} mm", flush=True)
    return pd.concat(rows, ignore_index=True), pd.DataFrame(runs)


def summarise(long: pd.DataFrame) -> pd.DataFrame:
    """Agreement with the sharp truth per (world, scans, method, region); *scans* is ``all`` or
    ``unflagged``."""
    rows = []
    for scans, part in (("all", long), ("unflagged", long[~long.flagged])):
        for (world, method, region), group in part.groupby(["world", "method", "region"],
                                                           sort=False):  # fmt: skip
            group = group.dropna(subset=["measured"])
            if group.empty:
                continue
            stats = agreement(group.measured.to_numpy(), group.truth_sharp.to_numpy())
            rows.append({"world": world, "scans": scans, "method": method, "region": region,
                         **stats})  # fmt: skip
    return pd.DataFrame(rows)


def goal_rows(summary: pd.DataFrame, worlds: list[str]) -> tuple[pd.DataFrame, dict]:
    """GTM per world and goal region: MAPE and worst scan, over all and unflagged scans."""
    indexed = summary.set_index(["world", "scans", "region", "method"])
    rows, goals = [], {}
    for world in worlds:
        goals[world] = {}
        for region in GOAL_REGIONS:
            row = {"world": world, "region": region}
            for scans in ("all", "unflagged"):
                gtm = indexed.loc[(world, scans, region, "GTM")]
                none = indexed.loc[(world, scans, region, "none")]
                met = bool(gtm.mape_pct <= GOAL_MAPE_PCT and gtm.max_abs_pct <= GOAL_MAX_ABS_PCT)
                goals[world].setdefault(scans, {})[region] = {
                    "n": int(gtm.n), "mape_before_pct": none.mape_pct,
                    "mape_gtm_pct": gtm.mape_pct, "max_abs_gtm_pct": gtm.max_abs_pct,
                    "icc_gtm": gtm.icc, "met": met,
                }  # fmt: skip
                row[f"{scans}: n"] = int(gtm.n)
                row[f"{scans}: MAPE % before"] = none.mape_pct
                row[f"{scans}: GTM MAPE % / max abs %"] = (
                    f"{gtm.mape_pct:.2f} / {gtm.max_abs_pct:.2f} ({'met' if met else 'NOT MET'})"
                )
            rows.append(row)
    return pd.DataFrame(rows), goals


def region_rows(summary: pd.DataFrame, worlds: list[str]) -> pd.DataFrame:
    """MAPE % per key region, method and world (all scans)."""
    indexed = summary[summary.scans == "all"].set_index(["world", "region", "method"])
    rows = []
    for region in KEY_REGIONS:
        for method in METHODS:
            row = {"region": region, "method": "no PVC" if method == "none" else method}
            for world in worlds:
                row[f"MAPE % ({world})"] = indexed.loc[(world, region, method), "mape_pct"]
                row[f"bias % ({world})"] = indexed.loc[(world, region, method), "bias_pct"]
            rows.append(row)
    return pd.DataFrame(rows)


def per_scan_rows(long: pd.DataFrame) -> pd.DataFrame:
    """GTM error % per scan and goal region, with the scan's QC flags."""
    part = long[(long.method == "GTM") & long.region.isin(GOAL_REGIONS)].copy()
    part["error"] = 100 * (part.measured / part.truth_sharp - 1)
    wide = part.pivot_table(index=["world", "subject", "braak_stage", "nominal_fwhm_mm", "flags"],
                            columns="region", values="error").reset_index()  # fmt: skip
    wide.columns.name = None
    wide["flags"] = wide["flags"].replace("", "-")
    return wide[["world", "subject", "braak_stage", "nominal_fwhm_mm", *GOAL_REGIONS, "flags"]]


def render(env: dict, args, long, summary, runs, goals_table, worlds) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    n = long.subject.nunique()
    psf = (
        "`--pvc` alone, so each scan's PSF is the scanner resolution table's row for its sidecar"
        if args.psf == "table"
        else "`--pvc-fwhm <nominal FWHM>` per subject (the oracle PSF)"
    )
    start, end = markers(args.section)
    stem = results_stem(args.section)
    lines = [
        start,
        "## Partial-volume correction in PET space (MR-based path, through the app)"
        + ("" if args.section == "pvc-native" else f": {args.section}"),
        "",
        "Produced by `benchmarks/pvc_native.py`; do not edit by hand. Rerun with",
        "",
        "```",
        f"NIPYPE_NO_ET=1 .venv/bin/python benchmarks/pvc_native.py --bench {args.bench} "
        f"--out {args.out} --psf {args.psf} --worlds {' '.join(worlds)} "
        + ("" if args.section == "pvc-native" else f"--section {args.section} ")
        + "--report docs/benchmarks.md",
        "```",
        "",
        f"Measured {env['date']} on {env['cpu']}, {env['cores']} cores; Python {env['python']}, "
        f"{packages}; commit `{env['git_commit']}`. Raw results: "
        f"`benchmarks/results/{stem}_long.csv` and `{stem}_summary.json`.",
        "",
        f"Input: the participant benchmark's cohorts ({n} subjects per anatomy), processed by "
        f"`taupet-bids participant --pvc gtm rbv mg --regional-mask <mask>` with {psf}. Worlds "
        "are *anatomy:regional-mask*: the template anatomy (phantoms warped from the analysis "
        "template, the flattering case) or the other anatomy (the simulator's default); with "
        "`subject-gm` the PVC label image follows the subject's segmented T1w (cortex where its "
        "grey matter is, white matter likewise, CSF unlabelled, as reference the subject's grey "
        "matter of the template reference mask), with `template` it is the template's DK atlas; "
        "a third part `:soft` runs with `--pvc-regions soft` (each brain voxel shared between "
        "grey matter, white matter and CSF by the T1w's estimated fractions), else hard labels. "
        "In both the head around the brain is split into shells (0-4 mm: meninges, sinuses, "
        "inner skull; 4-10 mm: skull; the rest) and template voxels without PET data form a "
        "region of their own. The label image is pulled onto the subject's PET grid through the "
        "inverse of the PET-to-T1w and T1w-to-template registrations, the PET is corrected "
        "there, each corrected image is divided by its own mean in the reference region, and "
        "each label's value is painted on the template labels for the usual tables. Errors are "
        "against the sharp truth over the subject's own regions. *Unflagged*: scans whose "
        "`_qc.json` has no flag other than motion (inter-frame motion is corrected; cohorts "
        "simulated before 2026-12-08 reach the framewise-displacement flag on half the scans).",
        "",
        f"### Goal: GTM MAPE <= {GOAL_MAPE_PCT:g} % and every scan within "
        f"{GOAL_MAX_ABS_PCT:g} % of the sharp truth",
        "",
        markdown_table(goals_table),
        "",
        "### Key regions: MAPE and bias % vs sharp truth (all scans)",
        "",
        markdown_table(region_rows(summary, worlds)),
        "",
        "### GTM error % per scan",
        "",
        markdown_table(per_scan_rows(long), floatfmt=".2f"),
        "",
    ]
    if not runs.empty:
        lines += [
            "Wall time of the app runs (s): "
            + ", ".join(f"{r.world} {r.subject} {r.seconds:.0f}" for r in runs.itertuples())
            + ".",
            "",
        ]
    lines.append(end)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    bench, out = args.bench.resolve(), args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    parts, runs = [], []
    for world in args.worlds:
        long, run = collect(bench, out, world, args.psf, args.nprocs, args.reuse)
        parts.append(long)
        runs.append(run)
    long, runs = pd.concat(parts, ignore_index=True), pd.concat(runs, ignore_index=True)
    summary = summarise(long)
    goals_table, goals = goal_rows(summary, args.worlds)
    env = environment()
    update_report(args.report, render(env, args, long, summary, runs, goals_table, args.worlds),
                  *markers(args.section))  # fmt: skip
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = results_stem(args.section)
    long.to_csv(RESULTS_DIR / f"{stem}_long.csv", index=False, float_format="%.6f")
    payload = {"environment": env, "psf": args.psf, "goals": goals,
               "runs": runs.to_dict(orient="records")}  # fmt: skip
    (RESULTS_DIR / f"{stem}_summary.json").write_text(
        json.dumps(payload, indent=2, default=float) + "\n"
    )
    for world, by_scans in goals.items():
        for region, goal in by_scans["all"].items():
            print(f"{world} {region}: MAPE {goal['mape_before_pct']:.2f} % -> "
                  f"{goal['mape_gtm_pct']:.2f} % (max {goal['max_abs_gtm_pct']:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
