"""What the simulator's FDG, TSPO, atrophy and clinical models carry about tau, and their cost.

The clinical part includes the labels of ``--diagnosis clinical`` by Braak stage.

Draws a cohort with the label-level models the images are made from (no images, so thousands of
participants take seconds), measures the couplings docs/simulator.md promises, then times one
small cohort with and without the new modalities. The section between the markers in
docs/simulator.md is rewritten.

Usage: ``python benchmarks/simulator_coupling.py [--n-subjects 1000] [--seed 4]
[--speed-subjects 2] [--jobs 1]`` (``--speed-subjects 0`` skips the timing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import update_report  # noqa: E402

from taupet_bids import atlases
from taupet_bids.simulate import CohortConfig, fdg, gm_atrophy, simulate_cohort, tspo, uptake
from taupet_bids.simulate.clinical import stream
from taupet_bids.simulate.cohort import FDG_STREAM, TSPO_STREAM
from taupet_bids.simulate.diagnosis import apply_diagnosis_model
from taupet_bids.simulate.other_anatomy import source_anatomy
from taupet_bids.simulate.population import draw_cohort
from taupet_bids.simulate.uptake import TauState

START, END = "<!-- simulator-coupling:start -->", "<!-- simulator-coupling:end -->"
ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "simulator.md"
RESULTS = ROOT / "benchmarks" / "results" / "simulator_coupling.json"
GROUPS = {
    "temporal": ["inferiortemporal", "middletemporal"],
    "parietal": ["inferiorparietal", "supramarginal", "superiorparietal", "precuneus"],
    "mesial": ["entorhinal", "hippocampus"],
    "pcc": ["posteriorcingulate"],
    "motor": ["precentral", "postcentral"],
    "occipital": ["pericalcarine", "cuneus", "lateraloccipital"],
}


def _mean(values: dict[int, float], group: str) -> float:
    return float(np.mean([values[i] for i in atlases.dk_indices(GROUPS[group])]))


def draw(n_subjects: int, seed: int) -> dict[str, np.ndarray]:
    """Per participant: stage, amyloid, MMSE, genotype and regional tau, FDG, TSPO, atrophy."""
    rows: dict[str, list] = {}
    for subject in draw_cohort(n_subjects, seed):
        profile = uptake.random_profile(np.random.default_rng(subject.seed), realistic=True)
        state = subject.baseline.tau
        tau = uptake.label_suvr(profile, state)
        fdg_profile = fdg.random_profile(stream(subject.seed, FDG_STREAM), subject.clinical)
        fdg_values = fdg.label_values(fdg_profile, profile, state)
        change = fdg.relative_change(fdg_profile, profile, state)
        rng = stream(subject.seed, TSPO_STREAM)
        tspo_profile = tspo.random_profile(rng, subject.clinical)
        scans = [tspo.label_values(tspo_profile, profile, state, tspo.scan_variation(rng))
                 for _ in range(2)]  # fmt: skip
        healthy = tspo.label_values(tspo_profile, profile, TauState(0, 0.0))
        plain = tspo.label_values(tspo_profile, profile, state)
        traits = gm_atrophy.random_traits(stream(subject.seed, gm_atrophy.ATROPHY_STREAM))
        loss = gm_atrophy.regional_loss(traits, profile, state, subject.baseline.age)
        row = {
            "stage": state.stage,
            "amyloid": subject.clinical.amyloid_positive,
            "mmse": subject.clinical.mmse[0],
            "genotype": subject.clinical.tspo_genotype,
            "mismatch": fdg_profile.mismatch,
        }
        for group in GROUPS:
            row[f"tau_{group}"] = _mean(tau, group)
            row[f"fdg_{group}"] = _mean(fdg_values, group)
            row[f"change_{group}"] = _mean(change, group)
            row[f"tspo_gain_{group}"] = _mean(plain, group) / _mean(healthy, group) - 1
            row[f"loss_{group}"] = _mean(loss, group)
        row["tspo_a"] = _mean(scans[0], "temporal")
        row["tspo_b"] = _mean(scans[1], "temporal")
        for key, value in row.items():
            rows.setdefault(key, []).append(value)
    return {key: np.array(value) for key, value in rows.items()}


def _r(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def measure(c: dict[str, np.ndarray]) -> dict:
    """The numbers docs/simulator.md reports."""
    pos, stage = c["amyloid"], c["stage"]
    ad = pos & (stage == 6)
    hab = c["genotype"] == "HAB"
    out = {"n": int(stage.size), "n_ad": int(ad.sum())}
    for group in ("temporal", "parietal", "mesial"):
        tau, fdg_ = c[f"tau_{group}"], c[f"fdg_{group}"]
        out[f"r_fdg_tau_{group}"] = {
            "all": _r(tau, fdg_),
            "amyloid_positive": _r(tau[pos], fdg_[pos]),
            "amyloid_negative": _r(tau[~pos], fdg_[~pos]),
            "braak_5_6": _r(tau[stage >= 5], fdg_[stage >= 5]),
        }
        out[f"r_atrophy_tau_{group}"] = _r(tau, c[f"loss_{group}"])
    out["fdg_change_ad_median"] = {g: float(np.median(c[f"change_{g}"][ad])) for g in GROUPS}
    out["fdg_change_pcc_median"] = {
        "amyloid_negative": float(np.median(c["change_pcc"][~pos])),
        "amyloid_positive_braak_0_3": float(np.median(c["change_pcc"][pos & (stage <= 3)])),
        "amyloid_positive_braak_5_6": float(np.median(c["change_pcc"][pos & (stage >= 5)])),
    }
    negative_tau = ~pos & (stage >= 1)
    out["fdg_hypermetabolic_share_amyloid_negative_with_tau"] = float(
        np.mean(c["change_temporal"][negative_tau] > 0.01)
    )
    out["fdg_mismatch_share"] = float(np.mean(c["mismatch"] != "none"))
    level = {g: float(c["tspo_a"][c["genotype"] == g].mean()) for g in ("HAB", "MAB", "LAB")}
    out["tspo_genotype_share"] = {g: float(np.mean(c["genotype"] == g)) for g in level}
    out["tspo_level_vs_hab"] = {g: level[g] / level["HAB"] for g in level}
    a, b = c["tspo_a"], c["tspo_b"]
    out["tspo_test_retest_variability"] = float(np.mean(np.abs(a - b) / ((a + b) / 2)))
    out["tspo_gain_ad_hab_median"] = {
        g: float(np.median(c[f"tspo_gain_{g}"][ad & hab])) for g in GROUPS
    }
    out["mmse_mean_by_stage"] = [float(c["mmse"][stage == k].mean()) for k in range(7)]
    out["amyloid_positive_by_stage"] = [float(pos[stage == k].mean()) for k in range(7)]
    return out


def diagnosis_by_stage(n_subjects: int, seed: int) -> dict:
    """Under ``--diagnosis clinical``: each label's share per Braak stage (first visit), and the
    share of AD labels given at Braak 0-II."""
    cohort = apply_diagnosis_model(draw_cohort(n_subjects, seed), "clinical")
    stage = np.array([s.baseline.tau.stage for s in cohort])
    label = np.array([s.baseline.diagnosis for s in cohort])
    shares = {
        name: [float(np.mean(label[stage == k] == name)) for k in range(7)]
        for name in ("CN", "MCI", "AD")
    }
    return {"share_by_stage": shares, "ad_at_braak_0_2": float(np.mean(stage[label == "AD"] <= 2))}


def time_cohorts(n_subjects: int, jobs: int) -> dict[str, float]:
    """Seconds per subject for the default cohort and for every modality with braak atrophy."""
    settings = {
        "default (T1w + tau PET)": {},
        "T1w + tau + FDG + TSPO, --atrophy braak": {
            "modalities": ("tau", "fdg", "tspo"), "atrophy": "braak",
        },
    }  # fmt: skip
    source_anatomy("other")  # loaded once per process: keep it out of the first timing
    out = {}
    for name, options in settings.items():
        folder = Path(tempfile.mkdtemp(prefix="taupet-simcoupling-"))
        try:
            begin = time.perf_counter()
            config = CohortConfig(n_subjects=n_subjects, seed=1, jobs=jobs, **options)
            simulate_cohort(folder / "bids", config, log=lambda line: None)
            out[name] = (time.perf_counter() - begin) / n_subjects
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return out


def _fmt(value: float) -> str:
    return f"{value:+.2f}"


def section(args: argparse.Namespace, m: dict, speed: dict[str, float], load: float) -> str:
    lines = [
        START,
        "### Measured couplings",
        "",
        "Produced by `benchmarks/simulator_coupling.py`; rerun with `.venv/bin/python "
        f"benchmarks/simulator_coupling.py --n-subjects {args.n_subjects} --seed {args.seed} "
        f"--speed-subjects {args.speed_subjects} --jobs {args.jobs}`. Label-level values (the "
        f"noise-free regional levels the images are made from) of {m['n']} simulated "
        f"participants ({m['n_ad']} amyloid-positive at Braak VI), measured "
        f"{time.strftime('%Y-%m-%d')}. Raw numbers: `benchmarks/results/simulator_coupling.json`.",
        "",
        "| Pearson r across participants | all | amyloid + | amyloid - | Braak V-VI |",
        "|---|---|---|---|---|",
    ]
    for group in ("temporal", "parietal", "mesial"):
        r = m[f"r_fdg_tau_{group}"]
        lines.append(
            f"| FDG vs tau, {group} | {_fmt(r['all'])} | {_fmt(r['amyloid_positive'])} | "
            f"{_fmt(r['amyloid_negative'])} | {_fmt(r['braak_5_6'])} |"
        )
    lines.append("")
    lines.append("| median relative change, amyloid + Braak VI | " + " | ".join(GROUPS) + " |")
    lines.append("|---" * (len(GROUPS) + 1) + "|")
    lines.append("| FDG | " + " | ".join(
        f"{100 * m['fdg_change_ad_median'][g]:+.1f} %" for g in GROUPS) + " |")  # fmt: skip
    lines.append("| TSPO (HAB) | " + " | ".join(
        f"{100 * m['tspo_gain_ad_hab_median'][g]:+.1f} %" for g in GROUPS) + " |")  # fmt: skip
    pcc = m["fdg_change_pcc_median"]
    level = m["tspo_level_vs_hab"]
    lines += [
        "",
        f"- Posterior cingulate FDG, median change: amyloid - {100 * pcc['amyloid_negative']:+.1f} "
        f"%, amyloid + at Braak 0-III {100 * pcc['amyloid_positive_braak_0_3']:+.1f} %, amyloid + "
        f"at Braak V-VI {100 * pcc['amyloid_positive_braak_5_6']:+.1f} %.",
        "- Amyloid-negative participants with tau whose temporal FDG rises by more than 1 %: "
        f"{100 * m['fdg_hypermetabolic_share_amyloid_negative_with_tau']:.0f} %; FDG mismatch "
        f"subgroup: {100 * m['fdg_mismatch_share']:.0f} % of participants.",
        f"- TSPO temporal level relative to HAB: MAB {level['MAB']:.2f}, LAB {level['LAB']:.2f}; "
        f"test-retest variability (mean |a - b| / mean, two scans) "
        f"{100 * m['tspo_test_retest_variability']:.1f} %.",
        "- Grey-matter loss (`--atrophy braak`) vs tau, r across participants: temporal "
        f"{m['r_atrophy_tau_temporal']:.2f}, parietal {m['r_atrophy_tau_parietal']:.2f}, mesial "
        f"temporal {m['r_atrophy_tau_mesial']:.2f}.",
        "- MMSE mean by Braak stage 0-VI: "
        + ", ".join(f"{v:.1f}" for v in m["mmse_mean_by_stage"])
        + "; amyloid positive by stage: "
        + ", ".join(f"{100 * v:.0f} %" for v in m["amyloid_positive_by_stage"])
        + ".",
        "",
        "Labels under `--diagnosis clinical`, share of each Braak stage's participants (first "
        f"visit); {100 * m['diagnosis']['ad_at_braak_0_2']:.0f} % of the AD labels fall at "
        "Braak 0-II:",
        "",
        "| label | " + " | ".join(f"Braak {k}" for k in range(7)) + " |",
        "|---" * 8 + "|",
        *(
            f"| {name} | " + " | ".join(f"{100 * v:.0f} %" for v in shares) + " |"
            for name, shares in m["diagnosis"]["share_by_stage"].items()
        ),
    ]
    if speed:
        lines += [
            "",
            f"Simulation time per subject ({args.speed_subjects} subject(s), {args.jobs} job(s), "
            f"{os.cpu_count()} cores shared with other work; 1-minute load average at the end: "
            f"{load:.1f}):",
            "",
            "| cohort | seconds per subject |",
            "|---|---|",
        ]
        lines += [f"| {name} | {value:.1f} |" for name, value in speed.items()]
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-subjects", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--speed-subjects", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--no-report", action="store_true", help="print, do not edit the docs")
    args = parser.parse_args()
    measured = measure(draw(args.n_subjects, args.seed))
    measured["diagnosis"] = diagnosis_by_stage(args.n_subjects, args.seed)
    speed = time_cohorts(args.speed_subjects, args.jobs) if args.speed_subjects else {}
    text = section(args, measured, speed, os.getloadavg()[0])
    print(text)
    if not args.no_report:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({**measured, "seconds_per_subject": speed}, indent=2) + "\n")
        update_report(REPORT, text, START, END)


if __name__ == "__main__":
    main()
