"""PET-MR to PET-CT harmonisation on held-out simulated pairs, against two simple baselines.

Simulates a training cohort (seed 32, ``--pet-mr mixed --write-ct``) and a held-out test cohort
(seed 20266, never looked at while developing), runs ``taupet-bids participant`` on both (MR-based
path, no harmonisation), trains the harmoniser on the training pairs
(``taupet-bids-train harmoniser``), and compares, per region of the test pairs (bilateral DK
grey-matter regions, Braak composites I-VI, meta-temporal), the PET-MR SUVR against the PET-CT
SUVR of the same visit:

- *measured*: the PET-MR as the app writes it;
- *global scale*: one factor (mean PET-CT / PET-MR over every region of every training pair);
- *regional linear*: per region, PET-CT = a + b x PET-MR fitted on the training pairs
  (least squares; the factor of the global scale where fewer than 3 training pairs exist);
- *regional linear by AC method*: the same, fitted separately on the training pairs of each MR
  AC method (the sidecar's ``AttenuationCorrection``), as a site with one PET/MR would;
- *network*: the trained bundle with the subject's T1w warped to the template, told the scan's
  AC method as its sidecar names it (as the app tells it);
- *network told mr*: the same, told only that the AC was MR-based (a sidecar that names no
  method).

Per region: bias (mean signed % difference), MAPE (mean absolute %), Spearman rank correlation
with the PET-CT across subjects. Also: how much the network moves a PET-CT input (goal < 0.5 %;
told CT-based AC, as the app tells it, and told ``mr``, as a wrong sidecar would), and CPU
seconds per scan of the harmoniser (loading excluded). Goals (issue 16): mean absolute
residual bias <= 2 % in every Braak composite and the meta-temporal ROI; the network beats the
regional linear baseline on every composite; rank correlation >= 0.98; a PET-CT moves < 0.5 %.

Usage::

    python benchmarks/harmonisation.py --out /tmp/harm-bench [--n-train 40 --n-test 20]
        [--steps 2000] [--nprocs 2] [--reuse] [--report docs/benchmarks.md]

``--reuse`` keeps what ``OUT`` already holds (cohorts, runs, training) and redoes the analysis.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import update_report  # noqa: E402

from taupet_bids import templates
from taupet_bids.atlases.regions import dk_grey_matter_regions, region_groups
from taupet_bids.core.images import load_3d
from taupet_bids.core.regions import measured_voxels, regional_statistics
from taupet_bids.harmonisation import inference, preprocessing
from taupet_bids.harmonisation.bundle import load_harmoniser
from taupet_bids.harmonisation.networks import CONDITIONINGS
from taupet_bids.training.harmoniser_data import Pair, find_pairs, to_template

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
START, END = "<!-- harmonisation-benchmark:start -->", "<!-- harmonisation-benchmark:end -->"
TRAIN_SEED, TEST_SEED = 32, 20266
COMPOSITES = [f"Braak{r}" for r in ("I", "II", "III", "IV", "V", "VI")] + ["metatemporal"]
METHODS = (
    "measured",
    "global scale",
    "regional linear",
    "regional linear by AC method",
    "network",
    "network told mr",
)
GOALS = {"bias_pct": 2.0, "spearman": 0.98, "petct_move_pct": 0.5}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--n-test", type=int, default=20)
    parser.add_argument("--pet-mr", default="mixed", help="simulator MR method (or mixed)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--channels", type=int, nargs=3, default=None)
    parser.add_argument(
        "--identity-fraction",
        type=float,
        default=None,
        help="passed to taupet-bids-train harmoniser (default: its own)",
    )
    parser.add_argument(
        "--region-weight",
        type=float,
        default=None,
        help="passed to taupet-bids-train harmoniser (default: its own); with any of these "
        "options the training goes to OUT/training-<option>-<value>..., so variants share the "
        "cohorts",
    )
    parser.add_argument(
        "--conditioning",
        choices=CONDITIONINGS,
        default=None,
        help="passed to taupet-bids-train harmoniser (default: its own)",
    )
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--reuse", action="store_true")
    return parser.parse_args(argv)


def tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def run(command: list, log: Path) -> float:
    """Run a console command, its output into ``log``; returns its wall time."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        subprocess.run([str(c) for c in command], check=True, stdout=handle, stderr=handle)
    return time.perf_counter() - start


def produce(args: argparse.Namespace) -> dict:
    """Cohorts, participant runs and the trained bundle under ``args.out`` (skipped if there)."""
    out, seconds = args.out, {}
    for name, seed, n, ct in (
        ("train", TRAIN_SEED, args.n_train, True),
        ("test", TEST_SEED, args.n_test, False),
    ):
        bids, derivatives = out / name / "bids", out / name / "derivatives"
        if not (args.reuse and bids.exists()):
            command = [
                tool("taupet-bids-simulate"),
                bids,
                "--n-subjects",
                n,
                "--seed",
                seed,
                "--single-frame",
                "--pet-mr",
                args.pet_mr,
                "--jobs",
                args.nprocs,
            ]
            seconds[f"simulate_{name}"] = run(
                command + (["--write-ct"] if ct else []), out / f"simulate_{name}.log"
            )
        if not (args.reuse and derivatives.exists()):
            seconds[f"participant_{name}"] = run(
                [
                    tool("taupet-bids"),
                    bids,
                    derivatives,
                    "participant",
                    "-w",
                    out / name / "work",
                    "--skip-bids-validation",
                    "--nprocs",
                    args.nprocs,
                    "--regional-mask",
                    "template",
                ],
                out / f"participant_{name}.log",
            )
    options = {"identity-fraction": args.identity_fraction, "region-weight": args.region_weight}
    chosen = {name: value for name, value in options.items() if value is not None}
    parts = [f"{k}-{v:g}" for k, v in chosen.items()]
    parts += [f"conditioning-{args.conditioning}"] if args.conditioning else []
    training = out / "-".join(["training", *parts])
    bundle = training / "bundle"
    if not (args.reuse and bundle.exists()):
        command = [
            tool("taupet-bids-train"),
            "harmoniser",
            out / "train" / "derivatives",
            "--bids-dir",
            out / "train" / "bids",
            "--out",
            training,
            "--steps",
            args.steps,
            "--threads",
            args.nprocs,
        ]
        if args.channels:
            command += ["--channels", *args.channels]
        for name, value in chosen.items():
            command += [f"--{name}", value]
        command += ["--conditioning", args.conditioning] if args.conditioning else []
        seconds["training"] = run(command, out / f"{training.name}.log")
    return {"bundle": bundle, "seconds": seconds, "training": training}


def region_values(suvr: np.ndarray) -> dict[str, float]:
    """Mean SUVR per bilateral DK grey-matter region, Braak composite and meta-temporal ROI."""
    values = {}
    measured = measured_voxels(suvr)
    voxel_ml = float(templates.WORKING_RESOLUTION**3) / 1000.0
    for atlas in ("DK", "Braak", "MetaTemporal"):
        labels = np.asarray(nib.load(templates.atlas_path(atlas)).dataobj)
        groups = region_groups(atlas)
        if atlas == "DK":
            grey = dk_grey_matter_regions()
            groups = {name: ids for name, ids in groups.items() if name in grey}
        table = regional_statistics(suvr, labels, voxel_ml, {}, groups, measured)
        values.update(zip(table["region"], table["suvr_mean"], strict=True))
    return values


def harmonise(
    harmoniser, suvr_file: Path, t1w: np.ndarray, ac_method: str
) -> tuple[np.ndarray, float]:
    """The network's harmonised SUVR, told ``ac_method``, and the CPU seconds it took (inputs
    to 2 mm output)."""
    start = time.process_time()
    suvr = load_3d(suvr_file, np.float32)
    image = torch.from_numpy(preprocessing.network_input(suvr, t1w)[None])
    field = inference.infer(harmoniser.network, harmoniser.inferer, image, ac_method)
    result = inference.harmonise(suvr, preprocessing.field_to_template(field))
    return result, time.process_time() - start


def pair_table(pairs: list[Pair], harmoniser=None) -> tuple[pd.DataFrame, list[float]]:
    """One row per (pair, region): PET-CT, PET-MR and (with a harmoniser) network values, told
    the scan's AC method and told ``mr``, and the network's output for the PET-CT input, told
    ``ct`` and told ``mr``."""
    rows, cpu = [], []
    for pair in pairs:
        ctac, mrac = load_3d(pair.ctac, np.float32), load_3d(pair.mrac, np.float32)
        values = {"ctac": region_values(ctac), "mrac": region_values(mrac)}
        if harmoniser is not None:
            t1w = to_template(pair.t1w, list(pair.t1w2std))
            for name, image, told in (
                ("network", pair.mrac, pair.ac_method),
                ("network told mr", pair.mrac, "mr"),
                ("ctac_through_network", pair.ctac, "ct"),
                ("ctac_through_network_as_mr", pair.ctac, "mr"),
            ):
                result, seconds = harmonise(harmoniser, image, t1w, told)
                values[name] = region_values(result)
                if name == "network":
                    cpu.append(seconds)
        for region in values["ctac"]:
            rows.append(
                {
                    "participant": pair.participant,
                    "session": pair.session or "n/a",
                    "ac_method": pair.ac_method,
                    "region": region,
                    **{k: v[region] for k, v in values.items()},
                }
            )
    return pd.DataFrame(rows), cpu


def fit_linear(train: pd.DataFrame, scale: float) -> dict[str, tuple[float, float]]:
    """Each region's (intercept, slope); the global factor where a fit is not possible."""
    linear = {}
    for region, rows in train.groupby("region"):
        if len(rows) >= 3 and rows["mrac"].std() > 0:
            slope, intercept = np.polyfit(rows["mrac"], rows["ctac"], 1)
            linear[region] = (float(intercept), float(slope))
        else:
            linear[region] = (0.0, scale)
    return linear


def fit_baselines(train: pd.DataFrame) -> tuple[float, dict[str, tuple[float, float]]]:
    """The global factor and each region's (intercept, slope) from the training pairs."""
    scale = float((train["ctac"] / train["mrac"]).mean())
    return scale, fit_linear(train, scale)


def apply_linear(test: pd.DataFrame, linear: dict[str, tuple[float, float]]) -> pd.Series:
    return pd.Series(
        [
            linear[r][0] + linear[r][1] * v
            for r, v in zip(test["region"], test["mrac"], strict=True)
        ],
        index=test.index,
    )


def linear_by_method(train: pd.DataFrame, test: pd.DataFrame, scale: float) -> pd.Series:
    """The regional linear calibration fitted and applied per AC method (pooled where the
    training pairs lack the test scan's method)."""
    out = apply_linear(test, fit_linear(train, scale))
    for method, rows in test.groupby("ac_method"):
        own = train[train["ac_method"] == method]
        if len(own):
            out[rows.index] = apply_linear(rows, fit_linear(own, scale))
    return out


def metrics(test: pd.DataFrame) -> pd.DataFrame:
    """Per region and method: bias %, MAPE %, Spearman against the PET-CT across subjects."""
    rows = []
    for region, part in test.groupby("region", sort=False):
        for method in METHODS:
            values = part[method]
            error = 100 * (values - part["ctac"]) / part["ctac"]
            rho = spearmanr(values, part["ctac"]).statistic if len(part) > 2 else np.nan
            rows.append(
                {
                    "region": region,
                    "method": method,
                    "bias_pct": error.mean(),
                    "mape_pct": error.abs().mean(),
                    "spearman": rho,
                }
            )
    return pd.DataFrame(rows)


BOOTSTRAP_SEED, BOOTSTRAP_SAMPLES = 20266, 2000


def mape_difference(test: pd.DataFrame, method: str, baseline: str) -> dict[str, list[float]]:
    """Per composite: MAPE(method) - MAPE(baseline) in percentage points, and its 95 % interval
    by resampling the test pairs (paired: the same pairs for both)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    out = {}
    for region in COMPOSITES:
        rows = test[test.region == region]
        if rows.empty:
            continue
        gap = (
            100 * (rows[method] - rows["ctac"]).abs() / rows["ctac"]
            - 100 * (rows[baseline] - rows["ctac"]).abs() / rows["ctac"]
        ).to_numpy(float)
        draws = rng.integers(len(gap), size=(BOOTSTRAP_SAMPLES, len(gap)))
        low, high = np.percentile(gap[draws].mean(axis=1), [2.5, 97.5])
        out[region] = [float(gap.mean()), float(low), float(high)]
    return out


def _cell(frame: pd.DataFrame, region: str, method: str) -> str:
    row = frame[(frame.region == region) & (frame.method == method)].iloc[0]
    return f"{row.bias_pct:+.2f} / {row.mape_pct:.2f} / {row.spearman:.3f}"


def section(table: pd.DataFrame, summary: dict) -> str:
    """The benchmarks.md section: composites first, then the DK regions (collapsed)."""
    head = "| region | " + " | ".join(METHODS) + " |\n|---|" + "---|" * len(METHODS)
    composite = [
        f"| {r} | " + " | ".join(_cell(table, r, m) for m in METHODS) + " |"
        for r in COMPOSITES
        if r in set(table.region)
    ]
    dk = [
        f"| {r} | " + " | ".join(_cell(table, r, m) for m in METHODS) + " |"
        for r in dict.fromkeys(table.region)
        if r not in COMPOSITES
    ]
    goals = "\n".join(
        f"- {name}: {'met' if ok else 'MISSED'}" for name, ok in summary["goals"].items()
    )
    return f"""{START}
## PET-MR to PET-CT harmonisation (`benchmarks/harmonisation.py`)

Held-out simulated pairs: {summary["n_test_pairs"]} test pairs (seed {TEST_SEED}), harmoniser and
baselines fitted on {summary["n_train_pairs"]} training pairs (seed {TRAIN_SEED}), simulator
`--pet-mr {summary["pet_mr"]}`, {summary["steps"]} training steps, PET-CT inputs with a zero
target in {summary["identity_fraction"]:.0%} of the training examples. Each cell: bias / MAPE
(%, PET-MR SUVR against the same visit's PET-CT SUVR) / Spearman rank correlation across
subjects.

{head}
{chr(10).join(composite)}

<details><summary>Desikan-Killiany grey-matter regions</summary>

{head}
{chr(10).join(dk)}

</details>

A PET-CT input through the network moves by {summary["petct_move_pct"]:.2f} % told CT-based AC
(as the app tells it) and by {summary["petct_as_mr_move_pct"]:.2f} % told `mr` (as a sidecar that
wrongly says MR-based would), largest absolute regional change, mean over test pairs. The
network's conditioning is `{summary["conditioning"]}` (`ct`: told whether the AC was CT-based;
`method`: told the MR method; `none`: told nothing). Harmoniser CPU time {
        summary["cpu_s_per_scan"]:.2f} s per scan (model loaded once; {summary["machine"]}).

Goals stated before the run:
{goals}

MAPE of the network minus MAPE of the regional linear calibration, percentage points, with the
95 % interval from resampling the test pairs ({BOOTSTRAP_SAMPLES} draws): {
        ", ".join(
            f"{region} {d[0]:+.2f} [{d[1]:+.2f}, {d[2]:+.2f}]"
            for region, d in summary["network_minus_regional_linear_mape"].items()
        )
    }.

Not a goal of the issue: the network beats the regional linear calibration fitted per AC method
on {sum(summary["network_beats_linear_by_ac_method"].values())} of
{len(summary["network_beats_linear_by_ac_method"])} composites (MAPE). AC methods of the pairs:
{summary["ac_methods"]}.

Command: `{summary["command"]}`
{END}"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    produced = produce(args)
    train_pairs = find_pairs([args.out / "train" / "derivatives"], args.out / "train" / "bids")
    test_pairs = find_pairs([args.out / "test" / "derivatives"], args.out / "test" / "bids")
    harmoniser = load_harmoniser(produced["bundle"])
    train, _ = pair_table(train_pairs)
    test, cpu = pair_table(test_pairs, harmoniser)
    scale, linear = fit_baselines(train)
    test["measured"] = test["mrac"]
    test["global scale"] = test["mrac"] * scale
    test["regional linear"] = apply_linear(test, linear)
    test["regional linear by AC method"] = linear_by_method(train, test, scale)
    table = metrics(test)

    def moved(column: str) -> float:
        change = 100 * (test[column] / test["ctac"] - 1).abs()
        return float(change.groupby([test["participant"], test["session"]]).max().mean())

    composites = table[table.region.isin(COMPOSITES)]
    net = composites[composites.method == "network"].set_index("region")
    lin = composites[composites.method == "regional linear"].set_index("region")
    by_method = composites[composites.method == "regional linear by AC method"].set_index("region")
    config = json.loads((produced["training"] / "config.json").read_text())
    summary = {
        "n_train_pairs": len(train_pairs),
        "n_test_pairs": len(test_pairs),
        "pet_mr": args.pet_mr,
        "steps": args.steps,
        "identity_fraction": config.get("identity_fraction", 0.0),
        "conditioning": config.get("conditioning", "none"),
        "training_metrics": json.loads((produced["training"] / "metrics.json").read_text()),
        "global_scale": scale,
        "ac_methods": {
            name: frame.drop_duplicates(["participant", "session"])["ac_method"]
            .value_counts()
            .to_dict()
            for name, frame in (("train", train), ("test", test))
        },
        "petct_move_pct": moved("ctac_through_network"),
        "petct_as_mr_move_pct": moved("ctac_through_network_as_mr"),
        "cpu_s_per_scan": float(np.mean(cpu)) if cpu else float("nan"),
        "network_minus_regional_linear_mape": mape_difference(test, "network", "regional linear"),
        "machine": f"{platform.machine()} CPU",
        "seconds": produced["seconds"],
        "command": "python benchmarks/harmonisation.py " + " ".join(map(str, argv or sys.argv[1:])),
        "network_beats_linear_by_ac_method": {
            region: bool(net.mape_pct[region] < by_method.mape_pct[region]) for region in net.index
        },
        "goals": {
            "|bias| <= 2 % in every composite": bool(
                (net.bias_pct.abs() <= GOALS["bias_pct"]).all()
            ),
            "network beats regional linear (MAPE) on every composite": bool(
                (net.mape_pct < lin.mape_pct).all()
            ),
            "Spearman >= 0.98 on every composite": bool((net.spearman >= GOALS["spearman"]).all()),
            "PET-CT input moves < 0.5 %": moved("ctac_through_network") < GOALS["petct_move_pct"],
        },
    }
    args.results.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.results / "harmonisation_regions.csv", index=False)
    test.to_csv(args.results / "harmonisation_pairs.csv", index=False)
    (args.results / "harmonisation_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    update_report(args.report, section(table, summary), START, END)
    print(json.dumps(summary["goals"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
