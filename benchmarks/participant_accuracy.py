"""Participant-level benchmark: regional SUVR accuracy against the simulator's truth, and cost.

Simulates a cohort with a seed not used in development, runs ``taupet-bids ... participant`` on it
as a user would (one subprocess, timed, its memory sampled), then compares every regional SUVR
the app wrote with the ground truth the simulator kept:

* the **blurred truth** (what a perfect motion-correction/registration/SUVR pipeline without
  partial-volume correction would measure) is the yardstick of the goals;
* the **sharp truth** (the unblurred map) is printed for information: its gap is mostly the
  partial-volume effect of the scanner PSF, which this pipeline does not correct.

Cost comes from two places: the whole run (wall clock, and the resident memory of the app's
process tree sampled from /proc) and Nipype's per-node result files (duration per node, and peak
memory per node where Nipype's resource monitor could be enabled).

Rerun: ``.venv/bin/python benchmarks/participant_accuracy.py --n-subjects 10 --seed 20261
--out /tmp/taupet-bench --nprocs 2 --report docs/benchmarks.md``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stats import agreement  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
MARKER_START = "<!-- participant-accuracy:start -->"
MARKER_END = "<!-- participant-accuracy:end -->"
SEGMENTATIONS = ("DK", "Braak", "MetaTemporal")
BRAAK_COMPOSITES = {
    "BraakI_II": ("BraakI", "BraakII"),
    "BraakIII_IV": ("BraakIII", "BraakIV"),
    "BraakV_VI": ("BraakV", "BraakVI"),
}
GOAL_REGIONS = ("metatemporal", *BRAAK_COMPOSITES)
GOAL_ICC = 0.97
GOAL_MAPE_PCT = 3.0
GOAL_SECONDS_PER_SUBJECT = 300.0
GOAL_GB_PER_SUBJECT = 4.0
RSS_SAMPLE_SECONDS = 0.25


@dataclass
class RunCost:
    """What the app's run cost as a whole, measured from outside it."""

    command: list[str]
    returncode: int
    wall_s: float
    peak_tree_rss_gb: float
    peak_process_rss_gb: float
    rss_samples: int
    mean_load_1min: float | None = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-subjects", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20261, help="a seed not used in development")
    parser.add_argument("--out", type=Path, default=Path("/tmp/taupet-bench"))
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the dataset, outputs and run_cost.json already in --out (re-analyse only)",
    )
    return parser.parse_args(argv)


def venv_bin(name: str) -> str:
    """The console script next to this interpreter, so the benchmark uses the same install."""
    return str(Path(sys.executable).parent / name)


def simulate(bids_dir: Path, n_subjects: int, seed: int, jobs: int) -> float:
    """Write the cohort with the simulator CLI; returns its wall time (not part of the app cost)."""
    command = [venv_bin("taupet-bids-simulate"), str(bids_dir), "--n-subjects", str(n_subjects)]
    command += ["--seed", str(seed), "--jobs", str(jobs)]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def _rss_by_pid() -> dict[int, tuple[int, int]]:
    """(parent pid, resident kB) of every readable process, from /proc (psutil is not installed)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss_kb = int(fields.get("VmRSS", "0 kB").split()[0])
        table[int(entry.name)] = (int(fields["PPid"]), rss_kb)
    return table


def tree_rss_kb(root: int) -> tuple[int, int]:
    """Summed and largest resident memory (kB) of ``root`` and all its descendants right now.

    The sum counts copy-on-write pages shared by forked workers once per process, so it is an
    upper bound on the physical memory the tree holds.
    """
    table = _rss_by_pid()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    stack, rss = [root], []
    while stack:
        pid = stack.pop()
        if pid in table:
            rss.append(table[pid][1])
        stack.extend(children.get(pid, []))
    return sum(rss), max(rss, default=0)


def run_app(bids_dir: Path, out_dir: Path, work_dir: Path, nprocs: int) -> RunCost:
    """Run the participant level as a user would, sampling the process tree's memory meanwhile.

    Nipype's resource monitor is requested through a private ``NIPYPE_CONFIG_DIR`` (the app is not
    changed); it needs psutil, and per-node memory is reported only if it took effect.
    """
    config_dir = out_dir.parent / "nipype_config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "nipype.cfg").write_text("[monitoring]\nenabled = true\n")
    env = {**os.environ, "NIPYPE_NO_ET": "1", "NIPYPE_CONFIG_DIR": str(config_dir)}
    command = [venv_bin("taupet-bids"), str(bids_dir), str(out_dir), "participant"]
    command += ["-w", str(work_dir), "--nprocs", str(nprocs), "--skip-bids-validation"]
    peaks = {"tree": 0, "process": 0, "samples": 0, "load": 0.0}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total, largest = tree_rss_kb(process.pid)
            peaks["tree"] = max(peaks["tree"], total)
            peaks["process"] = max(peaks["process"], largest)
            peaks["samples"] += 1
            peaks["load"] += float(Path("/proc/loadavg").read_text().split()[0])
            done.wait(RSS_SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    returncode = process.wait()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    return RunCost(
        command=command,
        returncode=returncode,
        wall_s=wall,
        peak_tree_rss_gb=peaks["tree"] / 2**20,
        peak_process_rss_gb=peaks["process"] / 2**20,
        rss_samples=peaks["samples"],
        mean_load_1min=peaks["load"] / max(peaks["samples"], 1),
    )


def with_composites(braak: pd.DataFrame, value: str) -> pd.DataFrame:
    """Add BraakI_II, III_IV, V_VI to a truth Braak table as voxel-weighted means of the stages.

    The stages are disjoint, so the voxel-weighted mean is the mean over their union, which is how
    the app defines a composite.
    """
    indexed = braak.set_index("region")
    rows = []
    for name, stages in BRAAK_COMPOSITES.items():
        part = indexed.loc[list(stages)]
        weighted = np.average(part[value], weights=part["n_voxels"])
        rows.append({"region": name, value: weighted, "n_voxels": part["n_voxels"].sum()})
    return pd.concat([braak, pd.DataFrame(rows)], ignore_index=True)


def truth_table(bids_dir: Path, subject: str, kind: str) -> pd.DataFrame:
    """The truth of one subject as (region, suvr) over the DK, Braak and meta-temporal atlases."""
    from taupet_bids.simulate import load_truth

    truth = load_truth(bids_dir, subject, kind=kind)
    parts = [truth[truth.atlas == "DK"], truth[truth.atlas == "MetaTemporal"]]
    parts.append(with_composites(truth[truth.atlas == "Braak"], "suvr").assign(atlas="Braak"))
    return pd.concat(parts, ignore_index=True)[["atlas", "region", "suvr", "n_voxels"]]


def measured_table(out_dir: Path, subject: str) -> pd.DataFrame:
    """The app's bilateral regional mean SUVR of one subject, from its three stats TSVs."""
    pet_dir = out_dir / f"sub-{subject}" / "pet"
    parts = []
    for seg in SEGMENTATIONS:
        (path,) = sorted(pet_dir.glob(f"sub-{subject}_*_seg-{seg}_*_suvr.tsv"))
        table = pd.read_csv(path, sep="\t")
        keep = ~table.region.str.match(r"^(left-|right-|reference-)")
        parts.append(table.loc[keep, ["region", "suvr_mean"]].assign(atlas=seg))
    return pd.concat(parts, ignore_index=True).rename(columns={"suvr_mean": "measured"})


def collect_measurements(bids_dir: Path, out_dir: Path) -> pd.DataFrame:
    """One row per (subject, region): measured SUVR, blurred and sharp truth, Braak stage."""
    participants = pd.read_csv(bids_dir / "participants.tsv", sep="\t")
    rows = []
    for participant in participants.itertuples():
        subject = participant.participant_id.removeprefix("sub-")
        measured = measured_table(out_dir, subject)
        for kind in ("blurred", "sharp"):
            truth = truth_table(bids_dir, subject, kind).rename(columns={"suvr": f"truth_{kind}"})
            if kind == "sharp":
                truth = truth.drop(columns="n_voxels")
            measured = measured.merge(truth, on=["atlas", "region"], how="inner")
        rows.append(measured.assign(subject=subject, braak_stage=participant.braak_stage))
    return pd.concat(rows, ignore_index=True)


def summarise_accuracy(long: pd.DataFrame) -> pd.DataFrame:
    """Agreement per region against each truth: ICC(2,1), MAPE, bias and max error."""
    rows = []
    for (atlas, region), group in long.groupby(["atlas", "region"], sort=False):
        for kind in ("blurred", "sharp"):
            stats = agreement(group.measured.to_numpy(), group[f"truth_{kind}"].to_numpy())
            voxels = int(group.n_voxels.iloc[0])
            rows.append(
                {"atlas": atlas, "region": region, "voxels": voxels, "truth": kind, **stats}
            )
    return pd.DataFrame(rows)


def load_node_costs(work_dir: Path) -> pd.DataFrame:
    """Duration (and peak memory, if monitored) of every node, from Nipype's result files."""
    from nipype.pipeline.engine.utils import load_resultfile

    rows = []
    root = work_dir / "taupet_participant_wf"
    # Sub-workflows nest (quantification_wf/coregistration_wf/...): search every depth and
    # attribute each node to the scan and the top-level stage it belongs to.
    for path in sorted(root.glob("scan_*/**/result_*.pklz")):
        node_dir = path.parent
        scan_dir, stage, *inner = node_dir.relative_to(root).parts
        runtime = load_resultfile(str(path)).runtime
        runtimes = runtime if isinstance(runtime, list) else [runtime]
        memory = [getattr(r, "mem_peak_gb", None) for r in runtimes]
        rows.append(
            {
                "scan": scan_dir.removeprefix("scan_"),
                "subworkflow": stage,
                "node": "/".join(inner),
                "duration_s": sum(getattr(r, "duration", 0.0) or 0.0 for r in runtimes),
                "mem_peak_gb": max((m for m in memory if m is not None), default=np.nan),
            }
        )
    return pd.DataFrame(rows)


def summarise_cost(nodes: pd.DataFrame, cost: RunCost, n_scans: int) -> dict:
    """Per-subject time by stage and node, the cohort totals, and whether the cost goal is met."""
    per_scan = nodes.groupby("scan").duration_s.sum()
    by_stage = nodes.groupby(["scan", "subworkflow"]).duration_s.sum().unstack(fill_value=0)
    by_node = nodes.groupby(["scan", "subworkflow", "node"]).duration_s.sum()
    node_means = by_node.groupby(["subworkflow", "node"]).mean().sort_values(ascending=False)
    monitored = bool(nodes.mem_peak_gb.notna().any())
    node_memory = nodes.groupby(["subworkflow", "node"]).mem_peak_gb.max() if monitored else None
    worst_memory = float(nodes.mem_peak_gb.max()) if monitored else cost.peak_tree_rss_gb
    return {
        "cohort_wall_s": cost.wall_s,
        "cohort_wall_per_subject_s": cost.wall_s / n_scans,
        "node_seconds_per_subject": per_scan.describe()[["mean", "min", "max"]].to_dict(),
        "stage_seconds_per_subject": {
            stage: by_stage[stage].describe()[["mean", "min", "max"]].to_dict()
            for stage in by_stage.columns
        },
        "top_nodes_mean_s": {f"{s}/{n}": v for (s, n), v in node_means.head(10).items()},
        "node_memory_monitored": monitored,
        "node_peak_memory_gb": (
            {f"{s}/{n}": v for (s, n), v in node_memory.items()} if monitored else {}
        ),
        "peak_tree_rss_gb": cost.peak_tree_rss_gb,
        "peak_process_rss_gb": cost.peak_process_rss_gb,
        "goal_time_met": bool(per_scan.max() <= GOAL_SECONDS_PER_SUBJECT),
        "goal_memory_met": bool(worst_memory <= GOAL_GB_PER_SUBJECT),
    }


def accuracy_goals(summary: pd.DataFrame) -> dict[str, dict]:
    """ICC >= 0.97 and MAPE <= 3 % against the blurred truth, per goal region."""
    blurred = summary[summary.truth == "blurred"].set_index("region")
    goals = {}
    for region in GOAL_REGIONS:
        row = blurred.loc[region]
        goals[region] = {
            "icc": row.icc,
            "mape_pct": row.mape_pct,
            "met": bool(row.icc >= GOAL_ICC and row.mape_pct <= GOAL_MAPE_PCT),
        }
    return goals


def environment() -> dict:
    """Machine and software the numbers were measured on."""
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    packages = ("taupet-bids", "nipype", "antspyx", "numpy", "nibabel", "pandas")
    return {
        "date": dt.date.today().isoformat(),
        "cpu": cpu_model,
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "git_commit": commit,
        "packages": {name: _version(name) for name in packages},
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured Markdown table (pandas' to_markdown needs tabulate, not installed)."""

    def cell(value: object) -> str:
        if isinstance(value, float | np.floating):
            return "n/a" if np.isnan(value) else format(value, floatfmt)
        return str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def accuracy_section(summary: pd.DataFrame, goals: dict[str, dict]) -> list[str]:
    """Markdown for the goal regions, the Braak stages and the DK regions."""
    wide = summary.pivot(
        index=["atlas", "region", "voxels"],
        columns="truth",
        values=["icc", "mape_pct", "bias_pct"],
    )
    wide.columns = [f"{stat}_{kind}" for stat, kind in wide.columns]
    blurred = summary[summary.truth == "blurred"]
    max_blurred = blurred.set_index(["atlas", "region", "voxels"]).max_abs_pct
    wide = wide.join(max_blurred.rename("max_abs_pct_blurred")).reset_index()
    columns = {
        "region": "region",
        "voxels": "voxels (2 mm)",
        "icc_blurred": "ICC vs blurred",
        "mape_pct_blurred": "MAPE % vs blurred",
        "bias_pct_blurred": "bias % vs blurred",
        "max_abs_pct_blurred": "max abs % vs blurred",
        "icc_sharp": "ICC vs sharp",
        "mape_pct_sharp": "MAPE % vs sharp",
        "bias_pct_sharp": "bias % vs sharp",
    }
    order = ["metatemporal", *BRAAK_COMPOSITES, *(f"Braak{s}" for s in "I II III IV V VI".split())]
    key = wide[wide.region.isin(order)].set_index("region").loc[order].reset_index()
    dk = wide[wide.atlas == "DK"].sort_values("mape_pct_blurred", ascending=False)
    goal_rows = pd.DataFrame(
        [
            {
                "region": region,
                "ICC(2,1)": g["icc"],
                "MAPE %": g["mape_pct"],
                "goal": "MET" if g["met"] else "NOT MET",
            }
            for region, g in goals.items()
        ]
    )
    return [
        f"### Goals (vs blurred truth): ICC(2,1) >= {GOAL_ICC}, MAPE <= {GOAL_MAPE_PCT:g} %",
        "",
        markdown_table(goal_rows),
        "",
        "### Meta-temporal and Braak regions",
        "",
        markdown_table(key[list(columns)].rename(columns=columns)),
        "",
        "### Desikan-Killiany regions (bilateral), sorted by MAPE vs blurred truth",
        "",
        markdown_table(dk[list(columns)].rename(columns=columns)),
        "",
    ]


def subject_section(long: pd.DataFrame) -> list[str]:
    """Meta-temporal SUVR per subject, so a reader can see where the error sits."""
    meta = long[long.region == "metatemporal"].copy()
    meta["error % vs blurred"] = 100 * (meta.measured / meta.truth_blurred - 1)
    meta = meta.rename(
        columns={
            "truth_blurred": "blurred truth",
            "truth_sharp": "sharp truth",
            "braak_stage": "Braak",
        }
    )
    columns = ["subject", "Braak", "measured", "blurred truth", "sharp truth", "error % vs blurred"]
    return [
        "### Meta-temporal SUVR per subject",
        "",
        markdown_table(meta[columns]),
        "",
    ]


def cost_section(cost: dict, run: RunCost, n_scans: int, nprocs: int) -> list[str]:
    """Markdown for the cohort totals, the per-subject split by stage, and the slowest nodes."""
    stages = pd.DataFrame(
        [
            {"stage": stage, "mean s": s["mean"], "min s": s["min"], "max s": s["max"]}
            for stage, s in cost["stage_seconds_per_subject"].items()
        ]
    ).sort_values("mean s", ascending=False)
    total = cost["node_seconds_per_subject"]
    stages.loc[len(stages)] = ["**all nodes**", total["mean"], total["min"], total["max"]]
    top = pd.DataFrame(
        [{"node": node, "mean s per subject": s} for node, s in cost["top_nodes_mean_s"].items()]
    )
    if cost["node_memory_monitored"]:
        memory_line = "Peak memory per node (Nipype resource monitor) is in the JSON results."
    else:
        memory_line = (
            "Per-node peak memory is **not available**: Nipype's resource monitor was requested "
            "(`[monitoring] enabled = true` via `NIPYPE_CONFIG_DIR`) but needs psutil, which is "
            "not installed, so Nipype disabled it. The memory figures below are the app's whole "
            "process tree, sampled from `/proc` every "
            f"{RSS_SAMPLE_SECONDS:g} s."
        )
    per_subject_wall = cost["cohort_wall_per_subject_s"]
    cores = os.cpu_count()
    if run.mean_load_1min is None:
        load_line = "The machine's load during the run was not recorded."
    else:
        load_line = (
            f"Mean 1-min load average during the run: {run.mean_load_1min:.1f} on {cores} cores "
            "(well above the core count means other work competed for the CPUs and the times "
            "are inflated)."
        )
    return [
        f"### Cost ({n_scans} subjects, `--nprocs {nprocs}`)",
        "",
        f"- Cohort wall time: **{run.wall_s:.0f} s** ({run.wall_s / 60:.1f} min), i.e. "
        f"cohort wall / subjects = {per_subject_wall:.0f} s per subject (throughput with "
        f"{nprocs} processes shared by all subjects, not the latency of one subject).",
        f"- Sum of node durations per subject (what one subject costs in process-seconds; an "
        f"upper bound on its wall time alone): mean **{total['mean']:.0f} s**, "
        f"min {total['min']:.0f} s, max {total['max']:.0f} s.",
        f"- Peak resident memory of the whole run (sum over the process tree, shared pages "
        f"counted per process, so an upper bound): **{run.peak_tree_rss_gb:.2f} GB**; "
        f"largest single process: {run.peak_process_rss_gb:.2f} GB "
        f"({run.rss_samples} samples).",
        f"- {memory_line}",
        f"- {load_line}",
        "",
        "Per-subject node time by stage (sum of node durations per sub-workflow):",
        "",
        markdown_table(stages, ".1f"),
        "",
        "Slowest nodes (mean duration per subject):",
        "",
        markdown_table(top, ".1f"),
        "",
        f"Goal: under {GOAL_SECONDS_PER_SUBJECT / 60:g} min and {GOAL_GB_PER_SUBJECT:g} GB per "
        f"subject on 2 cores. Time: **{'MET' if cost['goal_time_met'] else 'NOT MET'}** "
        "(judged on the slowest subject's node-time sum). Memory: "
        f"**{'MET' if cost['goal_memory_met'] else 'NOT MET'}** (judged on the peak of the "
        f"whole {nprocs}-process run, which bounds any one subject).",
        "",
    ]


def render_report(
    args: argparse.Namespace,
    env: dict,
    run: RunCost,
    summary: pd.DataFrame,
    long: pd.DataFrame,
    goals: dict,
    cost: dict,
) -> str:
    """The whole benchmark section, between its markers."""
    n_scans = long.subject.nunique()
    packages = ", ".join(f"{name} {version}" for name, version in env["packages"].items())
    lines = [
        MARKER_START,
        "## Participant level: accuracy against ground truth, and cost",
        "",
        "Produced by `benchmarks/participant_accuracy.py`; do not edit by hand. Rerun with",
        "",
        "```",
        f"NIPYPE_NO_ET=1 .venv/bin/python benchmarks/participant_accuracy.py "
        f"--n-subjects {args.n_subjects} --seed {args.seed} --out {args.out} "
        f"--nprocs {args.nprocs} --report {_shown(args.report)}",
        "```",
        "",
        f"Measured {env['date']} on {env['cpu']}, {env['cores']} cores, {env['ram_gb']} GB RAM; "
        f"Python {env['python']}, {packages}; commit `{env['git_commit']}`. Raw results: "
        "`benchmarks/results/participant_accuracy_regions.csv` and "
        "`participant_accuracy_summary.json`.",
        "",
        f"Cohort: {n_scans} simulated subjects (seed {args.seed}), Braak stages "
        f"{sorted(long.drop_duplicates('subject').braak_stage.tolist())}. Measured value: the "
        "app's `suvr_mean` (InfCerebGrey reference, MNI152NLin6Asym space, no partial-volume "
        "correction). Truths: *blurred* = the noise-free PSF-blurred image pulled through the "
        "exact subject-to-template map (what a perfect pipeline without PVC measures: the "
        "yardstick); *sharp* = the unblurred map (for information). ICC is ICC(2,1) (two-way "
        "random, absolute agreement, single measures; Shrout & Fleiss 1979) over subjects; "
        "errors are 100 (measured - truth) / truth per subject; MAPE is their mean absolute value.",
        "",
        *accuracy_section(summary, goals),
        *subject_section(long),
        *cost_section(cost, run, n_scans, args.nprocs),
        MARKER_END,
    ]
    return "\n".join(lines)


def _shown(path: Path) -> Path:
    """A path relative to the repository when it lies inside it, for a copy-pasteable command."""
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def update_report(
    report: Path, section: str, start: str = MARKER_START, end: str = MARKER_END
) -> None:
    """Replace a benchmark's section between its markers; append it if it is not there yet.

    Every benchmark script uses this with its own ``start``/``end`` markers.
    """
    text = report.read_text() if report.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text)


def save_results(summary: pd.DataFrame, payload: dict) -> None:
    """Raw results next to the script, so the docs' numbers can be checked and diffed."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    summary.to_csv(RESULTS_DIR / "participant_accuracy_regions.csv", index=False)
    text = json.dumps(payload, indent=2, default=float)
    (RESULTS_DIR / "participant_accuracy_summary.json").write_text(text + "\n")


def produce_outputs(args: argparse.Namespace) -> RunCost:
    """Simulate and run the app, or with --reuse read back the cost of an earlier run."""
    bids_dir, out_dir, work_dir = args.out / "bids", args.out / "derivatives", args.out / "work"
    cost_file = args.out / "run_cost.json"
    if args.reuse:
        saved = json.loads(cost_file.read_text())
        vars(args).update(saved["arguments"])
        return RunCost(**saved["run"])
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty; remove it or pass --reuse")
    args.out.mkdir(parents=True, exist_ok=True)
    simulate_s = simulate(bids_dir, args.n_subjects, args.seed, args.nprocs)
    print(f"simulated {args.n_subjects} subjects in {simulate_s:.0f} s", flush=True)
    run = run_app(bids_dir, out_dir, work_dir, args.nprocs)
    arguments = {"n_subjects": args.n_subjects, "seed": args.seed, "nprocs": args.nprocs}
    cost_file.write_text(json.dumps({"arguments": arguments, "run": asdict(run)}, indent=2))
    if run.returncode != 0:
        raise SystemExit(f"taupet-bids exited with {run.returncode}; see {out_dir}/logs")
    print(f"taupet-bids ran in {run.wall_s:.0f} s", flush=True)
    return run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out = args.out.resolve()
    args.report = args.report.resolve()
    run = produce_outputs(args)
    long = collect_measurements(args.out / "bids", args.out / "derivatives")
    summary = summarise_accuracy(long)
    goals = accuracy_goals(summary)
    nodes = load_node_costs(args.out / "work")
    cost = summarise_cost(nodes, run, long.subject.nunique())
    env = environment()
    update_report(args.report, render_report(args, env, run, summary, long, goals, cost))
    save_results(
        summary,
        {
            "environment": env,
            "arguments": {k: str(v) for k, v in vars(args).items()},
            "run": asdict(run),
            "accuracy_goals": goals,
            "cost": cost,
        },
    )
    for region, goal in goals.items():
        verdict = "MET" if goal["met"] else "NOT MET"
        print(f"{region}: ICC {goal['icc']:.3f}, MAPE {goal['mape_pct']:.2f} % -> {verdict}")
    print(f"time goal {'MET' if cost['goal_time_met'] else 'NOT MET'}, "
          f"memory goal {'MET' if cost['goal_memory_met'] else 'NOT MET'}")  # fmt: skip


if __name__ == "__main__":
    main()
