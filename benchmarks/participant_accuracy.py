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

from taupet_bids import atlases  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
MARKER_START = "<!-- participant-accuracy:start -->"
MARKER_END = "<!-- participant-accuracy:end -->"
#: Per simulator atrophy model: (report markers, results-file stem, section heading). The
#: default cohorts have the simulator's default atrophy (ventricles and hippocampi by stage);
#: ``braak`` thins the cortex where the subject's tau is, the case subject-gm masks are for.
REPORTS = {
    "stage": (
        (MARKER_START, MARKER_END),
        "participant_accuracy",
        "Participant level: accuracy against ground truth, and cost",
    ),
    "braak": (
        (
            "<!-- participant-accuracy-atrophy:start -->",
            "<!-- participant-accuracy-atrophy:end -->",
        ),
        "participant_accuracy_atrophy",
        "Participant level with grey-matter loss that follows tau (`--atrophy braak`)",
    ),
}
SEGMENTATIONS = ("DK", "Braak", "MetaTemporal")
BRAAK_COMPOSITES = {
    "BraakI_II": ("BraakI", "BraakII"),
    "BraakIII_IV": ("BraakIII", "BraakIV"),
    "BraakV_VI": ("BraakV", "BraakVI"),
}
GOAL_REGIONS = ("metatemporal", *BRAAK_COMPOSITES)
#: Goals of the validity issue for the composites, and for the median cortical DK region.
GOAL_ICC = 0.99
GOAL_MAPE_PCT = 2.0
GOAL_DK_MEDIAN_PCT = 2.5
#: A scan is off when a composite errs by more than this; the QC should flag exactly those.
QC_MISS_PCT = 4.0
#: anatomy:regional-mask pairs; the other anatomy is the simulator's default.
WORLDS = ("template:template", "template:subject-gm", "other:template", "other:subject-gm")
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
        "--worlds", nargs="+", default=list(WORLDS), help="anatomy:regional-mask pairs to run"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the dataset, outputs and run_cost.json already in --out (re-analyse only)",
    )
    parser.add_argument(
        "--atrophy",
        choices=list(REPORTS),
        default="stage",
        help="the simulator's atrophy model; 'braak' (other anatomy only) reports in a section "
        "and results files of its own",
    )
    args = parser.parse_args(argv)
    if args.atrophy == "braak" and any(not w.startswith("other:") for w in args.worlds):
        parser.error("--atrophy braak needs the other anatomy: pass --worlds other:...")
    return args


def venv_bin(name: str) -> str:
    """The console script next to this interpreter, so the benchmark uses the same install."""
    return str(Path(sys.executable).parent / name)


def simulate(
    bids_dir: Path, n_subjects: int, seed: int, jobs: int, anatomy: str, atrophy: str = "stage"
) -> float:
    """Write the cohort with the simulator CLI; returns its wall time (not part of the app cost)."""
    command = [venv_bin("taupet-bids-simulate"), str(bids_dir), "--n-subjects", str(n_subjects)]
    command += ["--seed", str(seed), "--jobs", str(jobs), "--anatomy", anatomy]
    command += ["--atrophy", atrophy]
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


def run_app(
    bids_dir: Path, out_dir: Path, work_dir: Path, nprocs: int, options: list[str]
) -> RunCost:
    """Run the participant level as a user would, sampling the process tree's memory meanwhile.

    Nipype's resource monitor is requested through a private ``NIPYPE_CONFIG_DIR`` (the app is not
    changed); it needs psutil, and per-node memory is reported only if it took effect.
    """
    config_dir = out_dir.parent / "nipype_config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "nipype.cfg").write_text("[monitoring]\nenabled = true\n")
    env = {**os.environ, "NIPYPE_NO_ET": "1", "NIPYPE_CONFIG_DIR": str(config_dir)}
    command = [venv_bin("taupet-bids"), str(bids_dir), str(out_dir), "participant"]
    command += ["-w", str(work_dir), "--nprocs", str(nprocs), "--skip-bids-validation", *options]
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


def _subject_session(name: str) -> tuple[str | None, str | None]:
    """The ``sub`` and ``ses`` labels in a node folder's name (``sub_001_ses_M000_...``)."""
    parts = name.split("_")
    label = {key: parts[i + 1] for i, key in enumerate(parts[:-1]) if key in ("sub", "ses")}
    return label.get("sub"), label.get("ses")


def load_node_costs(work_dir: Path) -> pd.DataFrame:
    """Duration (and peak memory, if monitored) of every node, from Nipype's result files.

    A session's T1w workflow (``anat_*``) is shared by its scans: its nodes are reported under
    the stage ``anat_wf`` of each scan of that subject and session, their time split evenly."""
    from nipype.pipeline.engine.utils import load_resultfile

    rows = []
    root = work_dir / "taupet_participant_wf"
    scans = [p.name.removeprefix("scan_") for p in sorted(root.glob("scan_*")) if p.is_dir()]
    # Sub-workflows nest (quantification_wf/coregistration_wf/...): search every depth and
    # attribute each node to the scan and the top-level stage it belongs to.
    for path in sorted(root.glob("scan_*/**/result_*.pklz")) + sorted(
        root.glob("anat_*/**/result_*.pklz")
    ):
        node_dir = path.parent
        top, *inner = node_dir.relative_to(root).parts
        if top.startswith("scan_"):
            owners, stage = [top.removeprefix("scan_")], inner.pop(0)
        else:
            owners = [s for s in scans if _subject_session(s) == _subject_session(top)]
            stage = "anat_wf"
        runtime = load_resultfile(str(path)).runtime
        runtimes = runtime if isinstance(runtime, list) else [runtime]
        memory = [getattr(r, "mem_peak_gb", None) for r in runtimes]
        duration = sum(getattr(r, "duration", 0.0) or 0.0 for r in runtimes)
        for owner in owners:
            rows.append(
                {
                    "scan": owner,
                    "subworkflow": stage,
                    "node": "/".join(inner),
                    "duration_s": duration / len(owners),
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


def world_name(world: str) -> str:
    """``other:subject-gm`` -> ``other anatomy, subject-gm masks`` (a table heading)."""
    anatomy, mask = world.split(":")
    return f"{anatomy} anatomy, {mask} masks"


def _by_world(summary: pd.DataFrame, worlds: list[str], columns: dict[str, str]) -> pd.DataFrame:
    """Blurred-truth statistics, one column per (world, statistic), rows (atlas, region)."""
    blurred = summary[summary.truth == "blurred"]
    parts = []
    for world in worlds:
        part = blurred[blurred.world == world].set_index(["atlas", "region"])[list(columns)]
        part.columns = [f"{columns[c]} ({world_name(world)})" for c in columns]
        parts.append(part)
    return pd.concat(parts, axis=1).reset_index()


def accuracy_section(summary: pd.DataFrame, goals: dict, worlds: list[str]) -> list[str]:
    """Markdown for the goals, the Braak and meta-temporal regions and the DK regions by world."""
    goal_rows = []
    for region in GOAL_REGIONS:
        row = {"region": region}
        for world in worlds:
            g = goals[world][region]
            verdict = "met" if g["met"] else "NOT MET"
            row[world_name(world)] = f"{g['icc']:.3f} / {g['mape_pct']:.2f} % ({verdict})"
        goal_rows.append(row)
    order = ["metatemporal", *BRAAK_COMPOSITES, *(f"Braak{s}" for s in "I II III IV V VI".split())]
    stats = {"mape_pct": "MAPE %", "bias_pct": "bias %", "max_abs_pct": "max abs %"}
    key = _by_world(summary, worlds, {"icc": "ICC", **stats})
    key = key[key.region.isin(order)].set_index("region").loc[order].reset_index()
    dk = _by_world(summary, worlds, {"mape_pct": "MAPE %", "bias_pct": "bias %"})
    dk = dk[dk.atlas == "DK"]
    dk = dk.sort_values(dk.columns[2 * (len(worlds) - 1) + 2], ascending=False)
    cortical = {lab.region for lab in atlases.dk_labels() if lab.tissue == "cortex"}
    blurred = summary[(summary.truth == "blurred") & (summary.atlas == "DK")]
    cortex = blurred[blurred.region.isin(cortical)]
    medians = [
        f"- {world_name(w)}: median MAPE of the {len(cortical)} cortical DK regions "
        f"**{cortex[cortex.world == w].mape_pct.median():.2f} %**"
        for w in worlds
    ]
    return [
        f"### Goals (vs blurred truth): ICC(2,1) >= {GOAL_ICC}, MAPE <= {GOAL_MAPE_PCT:g} %",
        "",
        "Each cell: ICC(2,1) / MAPE.",
        "",
        markdown_table(pd.DataFrame(goal_rows)),
        "",
        "### Meta-temporal and Braak regions (vs blurred truth)",
        "",
        markdown_table(key.drop(columns="atlas")),
        "",
        "### Desikan-Killiany regions (bilateral, vs blurred truth)",
        "",
        *medians,
        f"- goal: median cortical DK MAPE <= {GOAL_DK_MEDIAN_PCT:g} %",
        "",
        f"Sorted by MAPE in the last world ({world_name(worlds[-1])}).",
        "",
        markdown_table(dk.drop(columns="atlas")),
        "",
    ]


def subject_section(long: pd.DataFrame, worlds: list[str]) -> list[str]:
    """Meta-temporal and composite errors per subject and world, so one can see where they sit."""
    rows = long[long.region.isin(GOAL_REGIONS)].copy()
    rows["error"] = 100 * (rows.measured / rows.truth_blurred - 1)
    table = rows.pivot_table(index=["subject", "braak_stage"], columns=["world", "region"],
                             values="error")  # fmt: skip
    table.columns = [f"{r} % ({world_name(w)})" for w, r in table.columns]
    ordered = [f"{r} % ({world_name(w)})" for w in worlds for r in GOAL_REGIONS]
    table = table[ordered].reset_index().rename(columns={"braak_stage": "Braak"})
    return [
        "### Composite errors per subject (% vs blurred truth)",
        "",
        markdown_table(table, ".2f"),
        "",
    ]


def qc_section(qc: pd.DataFrame, worlds: list[str]) -> list[str]:
    """How the scan QC flags line up with the scans that are off by more than 4 %."""
    rows = []
    for world in worlds:
        part = qc[qc.world == world]
        missed = part.max_composite_error_pct > QC_MISS_PCT
        rows.append(
            {
                "world": world_name(world),
                "scans": len(part),
                "flagged": int(part.flagged.sum()),
                f"off > {QC_MISS_PCT:g} % in a composite": int(missed.sum()),
                "of those flagged": int((missed & part.flagged).sum()),
                "flagged but within": int((~missed & part.flagged).sum()),
            }
        )
    return [
        "### Registration QC against the error it should catch",
        "",
        "A scan is *off* when any of meta-temporal, Braak I/II, III/IV, V/VI is more than "
        f"{QC_MISS_PCT:g} % from its blurred truth; *flagged* when its `_qc.json` has any flag. "
        "Calibration of the flag: the registration QC section below.",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
    ]


def cost_section(costs: dict, runs: dict, worlds: list[str], nprocs: int) -> list[str]:
    """Markdown for the cost of each world's run and its split by stage."""
    rows = []
    for world in worlds:
        cost, run = costs[world], runs[world]
        total = cost["node_seconds_per_subject"]
        rows.append(
            {
                "world": world_name(world),
                "cohort wall s": run.wall_s,
                "node s per subject (mean)": total["mean"],
                "node s per subject (max)": total["max"],
                "peak memory GB (process tree)": run.peak_tree_rss_gb,
                "load (1 min)": run.mean_load_1min,
            }
        )
    stages = (
        pd.DataFrame(
            {
                world_name(w): {
                    s: v["mean"] for s, v in costs[w]["stage_seconds_per_subject"].items()
                }
                for w in worlds
            }
        )
        .rename_axis("stage (mean s per subject)")
        .reset_index()
    )
    last = costs[worlds[-1]]
    top = pd.DataFrame(
        [{"node": node, "mean s per subject": s} for node, s in last["top_nodes_mean_s"].items()]
    )
    verdicts = ", ".join(
        f"{world_name(w)}: time {'MET' if costs[w]['goal_time_met'] else 'NOT MET'}, "
        f"memory {'MET' if costs[w]['goal_memory_met'] else 'NOT MET'}"
        for w in worlds
    )
    return [
        f"### Cost (`--nprocs {nprocs}`, 2 cores)",
        "",
        "Cohort wall / subjects is throughput with the processes shared by all subjects; the sum "
        "of node durations per subject is what one subject costs in process-seconds. Memory is "
        "the app's whole process tree sampled from `/proc` (shared pages counted per process, "
        "so an upper bound). A load average well above the core count means other work "
        "competed for the CPUs.",
        "",
        markdown_table(pd.DataFrame(rows), ".2f"),
        "",
        markdown_table(stages, ".1f"),
        "",
        f"Slowest nodes ({world_name(worlds[-1])}):",
        "",
        markdown_table(top, ".1f"),
        "",
        f"Goal: under {GOAL_SECONDS_PER_SUBJECT / 60:g} min and {GOAL_GB_PER_SUBJECT:g} GB per "
        f"subject on 2 cores (slowest subject's node-time sum; peak of the whole run): {verdicts}.",
        "",
    ]


def render_report(args, env, runs, summary, long, goals, costs, qc) -> str:
    """The whole benchmark section, between its markers."""
    worlds = args.worlds
    packages = ", ".join(f"{name} {version}" for name, version in env["packages"].items())
    stages = sorted(long[long.world == worlds[0]].drop_duplicates("subject").braak_stage.tolist())
    (start, end), stem, heading = REPORTS[args.atrophy]
    atrophy_option = "" if args.atrophy == "stage" else f" --atrophy {args.atrophy}"
    lines = [
        start,
        f"## {heading}",
        "",
        "Produced by `benchmarks/participant_accuracy.py`; do not edit by hand. Rerun with",
        "",
        "```",
        f"NIPYPE_NO_ET=1 .venv/bin/python benchmarks/participant_accuracy.py "
        f"--n-subjects {args.n_subjects} --seed {args.seed} --out {args.out} "
        f"--nprocs {args.nprocs} --worlds {' '.join(worlds)}{atrophy_option} "
        f"--report {_shown(args.report)}",
        "```",
        "",
        f"Measured {env['date']} on {env['cpu']}, {env['cores']} cores, {env['ram_gb']} GB RAM; "
        f"Python {env['python']}, {packages}; commit `{env['git_commit']}`. Raw results: "
        f"`benchmarks/results/{stem}_regions.csv` and `{stem}_summary.json`. App runs: "
        + "; ".join(
            f"{world_name(w)} at commit `{PROVENANCE[w]['commit']}` ({PROVENANCE[w]['date']})"
            for w in worlds
            if w in PROVENANCE
        )
        + ".",
        "",
        f"Cohorts: {args.n_subjects} simulated subjects per anatomy (seed {args.seed}, a seed not "
        f"used in development), Braak stages {stages}. Two phantom anatomies "
        "([simulator.md](simulator.md)): *template anatomy* warps MNI152NLin6Asym, the very "
        "template and atlas the pipeline analyses with (the flattering case); *other anatomy* "
        "(the simulator's default) has a MNI152NLin2009aSym brain labelled by its own grey matter, "
        "a realistic head, off-target binding and atrophy, and its truth is over the subject's "
        "own regions. Each cohort is analysed with default options except `--regional-mask` "
        "(*template* masks or the subject's grey matter, *subject-gm*). Measured value: the app's "
        "`suvr_mean` (InfCerebGrey reference, no partial-volume correction). Truth: *blurred* = "
        "the noise-free PSF-blurred image over the subject's own regions, divided by its own "
        "InfCerebGrey mean (what a perfect pipeline without PVC measures). ICC is ICC(2,1) "
        "(Shrout & Fleiss 1979) over subjects; errors are 100 (measured - truth) / truth; MAPE is "
        "their mean absolute value. Raw CSV also has the errors against the sharp truth.",
        "",
        *accuracy_section(summary, goals, worlds),
        *subject_section(long, worlds),
        *qc_section(qc, worlds),
        *cost_section(costs, runs, worlds, args.nprocs),
        end,
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


def save_results(summary: pd.DataFrame, payload: dict, stem: str = "participant_accuracy") -> None:
    """Raw results next to the script, so the docs' numbers can be checked and diffed."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    summary.to_csv(RESULTS_DIR / f"{stem}_regions.csv", index=False)
    text = json.dumps(payload, indent=2, default=float)
    (RESULTS_DIR / f"{stem}_summary.json").write_text(text + "\n")


def world_dirs(out: Path, world: str) -> tuple[Path, Path, Path]:
    """(BIDS dataset, derivatives, work) of one world; the dataset is shared by its masks."""
    anatomy, mask = world.split(":")
    return (
        out / anatomy / "bids",
        out / anatomy / mask / "derivatives",
        out / anatomy / mask / "work",
    )


#: Per world, the commit and date its app run was made at (a --reuse may mix runs).
PROVENANCE: dict[str, dict[str, str]] = {}


def produce_outputs(args: argparse.Namespace, world: str) -> RunCost:
    """Simulate (once per anatomy) and run the app, or with --reuse read back an earlier run."""
    anatomy, mask = world.split(":")
    bids_dir, out_dir, work_dir = world_dirs(args.out, world)
    cost_file = out_dir.parent / "run_cost.json"
    if args.reuse and cost_file.exists():
        saved = json.loads(cost_file.read_text())
        PROVENANCE[world] = saved.get("measured", {"commit": "an earlier commit", "date": "?"})
        return RunCost(**saved["run"])
    if out_dir.parent.exists() and any(out_dir.parent.iterdir()):
        raise SystemExit(f"{out_dir.parent} is not empty; remove it or pass --reuse")
    if not bids_dir.exists():
        simulate_s = simulate(
            bids_dir, args.n_subjects, args.seed, args.nprocs, anatomy, args.atrophy
        )
        print(f"simulated {args.n_subjects} subjects ({anatomy}) in {simulate_s:.0f} s", flush=True)
    run = run_app(bids_dir, out_dir, work_dir, args.nprocs, ["--regional-mask", mask])
    arguments = {"n_subjects": args.n_subjects, "seed": args.seed, "nprocs": args.nprocs}
    env = environment()
    measured = {"commit": env["git_commit"], "date": env["date"]}
    PROVENANCE[world] = measured
    cost_file.write_text(
        json.dumps({"arguments": arguments, "run": asdict(run), "measured": measured}, indent=2)
    )
    if run.returncode != 0:
        raise SystemExit(f"taupet-bids exited with {run.returncode}; see {out_dir}/logs")
    print(f"{world_name(world)}: taupet-bids ran in {run.wall_s:.0f} s", flush=True)
    return run


def qc_table(bids_dir: Path, out_dir: Path, long: pd.DataFrame) -> pd.DataFrame:
    """Per scan: its QC flags and its largest composite error against the blurred truth."""
    composites = long[long.region.isin(GOAL_REGIONS)]
    error = 100 * (composites.measured / composites.truth_blurred - 1)
    worst = error.abs().groupby(composites.subject).max()
    rows = []
    for subject, value in worst.items():
        (path,) = (out_dir / f"sub-{subject}" / "pet").glob("*_qc.json")
        flags = json.loads(path.read_text()).get("flags", [])
        rows.append({"subject": subject, "flagged": bool(flags), "flags": "; ".join(flags),
                     "max_composite_error_pct": value})  # fmt: skip
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out = args.out.resolve()
    args.report = args.report.resolve()
    runs, longs, costs, qcs, goals, summaries = {}, [], {}, [], {}, []
    for world in args.worlds:
        runs[world] = produce_outputs(args, world)
    for world in args.worlds:
        bids_dir, out_dir, work_dir = world_dirs(args.out, world)
        long = collect_measurements(bids_dir, out_dir).assign(world=world)
        longs.append(long)
        qcs.append(qc_table(bids_dir, out_dir, long).assign(world=world))
        summary = summarise_accuracy(long)
        summaries.append(summary.assign(world=world))
        goals[world] = accuracy_goals(summary)
        nodes = load_node_costs(work_dir)
        costs[world] = summarise_cost(nodes, runs[world], long.subject.nunique())
    long = pd.concat(longs, ignore_index=True)
    summary = pd.concat(summaries, ignore_index=True)
    qc = pd.concat(qcs, ignore_index=True)
    env = environment()
    (start, end), stem, _ = REPORTS[args.atrophy]
    section = render_report(args, env, runs, summary, long, goals, costs, qc)
    update_report(args.report, section, start, end)
    long.to_csv(RESULTS_DIR / f"{stem}_long.csv", index=False)
    qc.to_csv(RESULTS_DIR / f"{stem}_qc.csv", index=False)
    save_results(
        summary,
        {
            "environment": env,
            "arguments": {k: str(v) for k, v in vars(args).items()},
            "runs": {w: asdict(r) for w, r in runs.items()},
            "accuracy_goals": goals,
            "cost": costs,
        },
        stem,
    )
    for world in args.worlds:
        for region, goal in goals[world].items():
            verdict = "MET" if goal["met"] else "NOT MET"
            print(f"{world_name(world)} {region}: ICC {goal['icc']:.3f}, "
                  f"MAPE {goal['mape_pct']:.2f} % -> {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
