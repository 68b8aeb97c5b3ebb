"""AD vs CN classifier on held-out simulated cohorts, beside a meta-temporal baseline.

For each cohort (a BIDS dataset and its taupet-bids participant-level derivatives, made from
seeds the classifier never saw): P(AD) of every AD and CN scan from the trained bundle, and
from the simplest honest baseline, a logistic regression on the app's meta-temporal SUVR fitted
on the classifier's own training participants. Accuracy, sensitivity, specificity and ROC AUC
with participant-bootstrap 95 % intervals (``core.classification_metrics``, the group level's
code). MCI scans are counted, scored and reported apart.

Occlusion and attribution maps (the product's settings) of some AD and MCI scans per cohort are
checked against where the simulator put the tau: the share of the map's top 10 % (positive
values, in the template brain) that falls in the Braak regions up to the participant's stage,
beside the share those regions have of the brain (what a map with no idea of tau would get) and
the share the scan's own uptake above reference gets (what a map that only repeats the image
would get).

Usage::

    python benchmarks/classification.py --bundle BUNDLE --split RUN/split.tsv \
        --train BIDS DERIVATIVES [DERIVATIVES ...] \
        --cohort other DERIVATIVES BIDS [--cohort template ...] \
        [--alternative DenseNet=BUNDLE] [--occlusion-scans 4] [--threads 2]

``--alternative`` scores a second bundle trained on the same split (e.g. ``taupet-bids-train
classifier --architecture densenet`` with the same seed) beside the first, without maps. Where
the cohorts' diagnoses were drawn independently of tau (``taupet-bids-simulate --diagnosis
clinical``), a table by diagnosis and simulated Braak stage shows what each method calls the
scans whose label and tau disagree.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import update_report  # noqa: E402

from taupet_bids import templates
from taupet_bids.classification import attribution, inference, preprocessing
from taupet_bids.classification.bundle import load_classifier
from taupet_bids.core.classification_metrics import METRICS, ad_cn_metrics
from taupet_bids.group import read_participants
from taupet_bids.training.classifier_data import find_scans

REPORT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
RESULTS = Path(__file__).resolve().parent / "results" / "classification.json"
START, END = "<!-- classification:start -->", "<!-- classification:end -->"
#: The table a lab would take the baseline's input from.
METATEMPORAL_TABLE = "*seg-MetaTemporal_label-InfCerebGrey_suvr.tsv"
#: Share of the map (its highest positive voxels) compared with the Braak regions.
TOP_FRACTION = 0.10
#: Diagnoses whose scans get maps (MCI: Braak III-IV, a small share of the brain).
MAP_DIAGNOSES = ("AD", "MCI")


def metatemporal(suvr_image: Path) -> float:
    """The scan's meta-temporal SUVR from the regional table beside its image."""
    tables = sorted(suvr_image.parent.glob(METATEMPORAL_TABLE))
    prefix = suvr_image.name.split("_space-")[0]
    tables = [t for t in tables if t.name.startswith(prefix + "_")]
    if len(tables) != 1:
        raise FileNotFoundError(f"no single meta-temporal table beside {suvr_image}")
    table = pd.read_csv(tables[0], sep="\t")
    return float(table.loc[table.region == "metatemporal", "suvr_mean"].iloc[0])


def scan_table(derivatives: Path | list[Path], bids: Path) -> pd.DataFrame:
    """One row per scan: participant, diagnosis, Braak stage (simulator truth), image, SUVR.

    ``derivatives`` may be several folders of one dataset (a cohort run in batches)."""
    folders = [derivatives] if isinstance(derivatives, Path) else list(derivatives)
    stages = read_participants(bids).set_index("participant_id")["braak_stage"]
    rows = [
        {
            "participant": s.participant,
            "session": s.session,
            "diagnosis": s.diagnosis,
            "stage": int(stages.get(s.participant, -1)),
            "path": s.path,
            "metatemporal": metatemporal(s.path),
        }
        for s in find_scans(folders, bids)
    ]
    return pd.DataFrame(rows)


def fit_baseline(train: pd.DataFrame, split: pd.DataFrame) -> LogisticRegression:
    """Logistic regression of AD on meta-temporal SUVR over the classifier's training set."""
    in_training = set(split.loc[split["set"] == "train", "participant_id"])
    rows = train[train.participant.isin(in_training) & train.diagnosis.isin(["AD", "CN"])]
    model = LogisticRegression(C=1e4)
    model.fit(rows[["metatemporal"]].to_numpy(), (rows.diagnosis == "AD").to_numpy())
    return model


def braak_share(stage_map: np.ndarray, brain: np.ndarray, stage: int) -> float:
    """Share of the brain that lies in Braak regions I..stage."""
    return float(((stage_map >= 1) & (stage_map <= stage) & brain).sum() / brain.sum())


def top_share(
    values_4mm: np.ndarray, stage_map: np.ndarray, brain: np.ndarray, stage: int
) -> float:
    """Share of a 4 mm map's top :data:`TOP_FRACTION` (positive values, template brain) that
    lies in the Braak regions I..stage."""
    full = preprocessing.to_template_grid(values_4mm)
    positive = full[brain & (full > 0)]
    if positive.size == 0:
        return 0.0
    top = brain & (full >= np.quantile(positive, 1 - TOP_FRACTION)) & (full > 0)
    in_stage = (stage_map >= 1) & (stage_map <= stage)
    return float((top & in_stage).sum() / max(top.sum(), 1))


def map_overlap(
    classifier, scans: pd.DataFrame, count: int, stage_map: np.ndarray, brain: np.ndarray
) -> list[dict]:
    """Top-10 % overlap with the Braak regions of the occlusion and attribution maps of up to
    ``count`` AD and ``count`` MCI scans, beside the scan's own uptake above the baseline (what
    a map that only repeats the image would get) and the regions' share of the brain (chance)."""
    rows = []
    chosen = [
        scans[scans.diagnosis == diagnosis].sort_values("path").head(count)
        for diagnosis in MAP_DIAGNOSES
    ]
    for _, scan in pd.concat(chosen).iterrows():
        image = inference.prepare_file(scan.path)
        stage = int(scan.stage)
        begin = time.process_time()
        occluded = inference.occlusion_map(
            classifier.network, image, classifier.mask_voxels, classifier.overlap
        )
        occlusion_s = time.process_time() - begin
        begin = time.process_time()
        attributed = attribution.attribution_map(classifier.network, image)
        attribution_s = time.process_time() - begin
        uptake = (image - attribution.baseline_image())[0, 0].numpy()
        rows.append(
            {
                "participant": scan.participant,
                "diagnosis": scan.diagnosis,
                "stage": stage,
                "overlap": top_share(occluded.values, stage_map, brain, stage),
                "attribution_overlap": top_share(attributed.values, stage_map, brain, stage),
                "uptake_overlap": top_share(uptake, stage_map, brain, stage),
                "chance": braak_share(stage_map, brain, stage),
                "completeness_error": attributed.completeness_error,
                "log_odds_change": attributed.log_odds_change,
                "cpu_s": occlusion_s,
                "attribution_cpu_s": attribution_s,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def score(scans: pd.DataFrame, probability: np.ndarray, threshold: float) -> dict:
    """The four metrics with intervals on the AD/CN scans."""
    keep = scans.diagnosis.isin(["AD", "CN"]).to_numpy()
    found = ad_cn_metrics(
        probability[keep],
        probability[keep] >= threshold,
        (scans.diagnosis[keep] == "AD").to_numpy(),
        scans.participant[keep].to_numpy(),
    )
    return {name: vars(estimate) for name, estimate in found.items()}


def _share(called: np.ndarray) -> float | None:
    """Share of True, None for no scans."""
    return float(called.mean()) if called.size else None


def probabilities(classifier, scans: pd.DataFrame) -> tuple[np.ndarray, list[float]]:
    """P(AD) of every scan and the CPU seconds each took."""
    found, seconds = [], []
    for path in scans.path:
        image = inference.prepare_file(path)
        begin = time.process_time()
        found.append(inference.infer(classifier.network, classifier.inferer, image))
        seconds.append(time.process_time() - begin)
    return np.array(found), seconds


def run_cohort(
    classifier, baseline, scans: pd.DataFrame, occlusion: int, atlases, alternatives=None
) -> dict:
    """Scores of network, baseline and alternatives, MCI calls, timing and the maps' overlap."""
    network_p, seconds = probabilities(classifier, scans)
    called = {
        "network": (network_p, classifier.threshold),
        "baseline": (baseline.predict_proba(scans[["metatemporal"]].to_numpy())[:, 1], 0.5),
    }
    for name, other in (alternatives or {}).items():
        called[name] = (probabilities(other, scans)[0], other.threshold)
    mci = (scans.diagnosis == "MCI").to_numpy()
    overlap = map_overlap(classifier, scans, occlusion, *atlases)
    return {
        "counts": scans.diagnosis.value_counts().to_dict(),
        "methods": list(called),
        **{method: score(scans, p, cut) for method, (p, cut) in called.items()},
        "mci_called_ad": {
            method: float((p[mci] >= cut).mean()) if mci.any() else None
            for method, (p, cut) in called.items()
        },
        "thresholds": {method: cut for method, (_, cut) in called.items()},
        "cpu_s_probability": float(np.median(seconds)),
        "occlusion": overlap,
        "scans": [
            {
                "participant": participant,
                "diagnosis": diagnosis,
                "stage": int(stage),
                **{method: float(p[i]) for method, (p, _) in called.items()},
            }
            for i, (participant, diagnosis, stage) in enumerate(
                zip(scans.participant, scans.diagnosis, scans.stage, strict=True)
            )
        ],
    }


#: Braak stage groups of the simulator's stage labels (its default diagnosis rule's bands).
STAGE_GROUPS = {"Braak 0-II": (0, 1, 2), "Braak III-IV": (3, 4), "Braak V-VI": (5, 6)}


def calls_by_stage(found: dict) -> list[tuple[str, str, int, dict]]:
    """(diagnosis, stage group, scans, {method: share called AD}) of one cohort's scans."""
    rows = []
    for diagnosis in ("CN", "MCI", "AD"):
        for group, stages in STAGE_GROUPS.items():
            scans = [
                r for r in found["scans"] if r["diagnosis"] == diagnosis and r["stage"] in stages
            ]
            if scans:
                shares = {
                    m: float(np.mean([r[m] >= found["thresholds"][m] for r in scans]))
                    for m in found["methods"]
                }
                rows.append((diagnosis, group, len(scans), shares))
    return rows


def _cell(estimate: dict) -> str:
    return f"{estimate['value']:.3f} [{estimate['low']:.3f}, {estimate['high']:.3f}]"


def method_label(method: str, bundle_meta: dict) -> str:
    """How a method is named in the tables (``--name`` overrides the bundle's own)."""
    if method == "baseline":
        return "meta-temporal logistic"
    if method == "network" and bundle_meta.get("benchmark_name"):
        return bundle_meta["benchmark_name"]
    if method == "network":
        name = bundle_meta.get("taupet_bids", {}).get("architecture", {}).get("name")
        return "DenseNet" if name == "densenet" else "Conv5_FC3 CNN"
    return method


def render(
    results: dict, bundle_meta: dict, command: str, how_run: str, labelling: str = ""
) -> str:
    """The docs section: one row per cohort and method, then occlusion and timing."""
    training = bundle_meta.get("taupet_bids", {}).get("training_config", {})
    labelling = labelling or (
        "In the simulator the diagnosis follows the Braak stage (0-II CN, III-IV MCI, V-VI AD), "
        "so AD and CN differ by at least three stages and both methods are near their ceiling; "
        "the table shows whether the network loses anything against a one-number rule, not "
        "what it would add on real cohorts, where diagnosis and tau disagree more."
    )
    lines = [
        START,
        "## AD vs CN classifier (`benchmarks/classification.py`)",
        "",
        f"Bundle: {method_label('network', bundle_meta)} (`ad_classifier` metadata version "
        f"{bundle_meta.get('version')}; maps are this bundle's). Its training data: "
        f"{training.get('data_statement') or 'see its model card'} "
        "Held-out cohorts: simulated with seeds the classifier never saw, run through "
        f"`taupet-bids ... participant {how_run}`. Baseline: logistic regression on "
        "the app's meta-temporal SUVR, fitted on the classifier's training participants. "
        f"Intervals: 95 % participant bootstrap (2000 resamples). {labelling}",
        "",
        "| cohort | scans (AD/CN/MCI) | method | accuracy | sensitivity | specificity | ROC AUC "
        "| MCI called AD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cohort, found in results.items():
        counts = found["counts"]
        n = f"{counts.get('AD', 0)}/{counts.get('CN', 0)}/{counts.get('MCI', 0)}"
        for method in found.get("methods", ("network", "baseline")):
            cells = [_cell(found[method][m]) for m in METRICS]
            mci = found["mci_called_ad"][method]
            mci_cell = "n/a" if mci is None else f"{100 * mci:.0f} %"
            label = method_label(method, bundle_meta)
            lines.append(f"| {cohort} | {n} | {label} | " + " | ".join(cells) + f" | {mci_cell} |")
    methods = next(iter(results.values())).get("methods", ["network", "baseline"])
    lines += [
        "",
        "Share of scans called AD, by diagnosis and simulated Braak stage (where label and tau "
        "disagree, a method that reads only tau cannot be right):",
        "",
        "| cohort | diagnosis | Braak stage | scans | "
        + " | ".join(method_label(m, bundle_meta) for m in methods)
        + " |",
        "|---|---|---|---|" + "---|" * len(methods),
    ]
    for cohort, found in results.items():
        for diagnosis, group, n_scans, shares in calls_by_stage(found):
            cells = " | ".join(f"{100 * shares[m]:.0f} %" for m in methods)
            lines.append(f"| {cohort} | {diagnosis} | {group} | {n_scans} | {cells} |")
    lines += [
        "",
        "Maps of AD and MCI scans: occlusion (12 mm occluder at SUVR 1.0) and attribution "
        "(integrated gradients of the AD log-odds from the brain at SUVR 1.0). Share of each "
        f"map's top {100 * TOP_FRACTION:.0f} % (positive values, template brain) inside the "
        "Braak regions up to the participant's simulated stage; beside it the same share for "
        "the scan's own uptake above SUVR 1.0 (a map that only repeats the image) and the "
        "regions' share of the brain (a map with no idea of tau).",
        "",
        "| cohort | diagnosis | scans | occlusion (mean, range) | attribution (mean, range) "
        "| the scan's uptake | regions' share of brain | CPU s per map (occlusion / "
        "attribution, median) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def spread(values: list[float]) -> str:
        return f"{100 * np.mean(values):.0f} % ({100 * min(values):.0f}-{100 * max(values):.0f})"

    for cohort, found in results.items():
        for diagnosis in MAP_DIAGNOSES:
            rows = [r for r in found["occlusion"] if r.get("diagnosis", "AD") == diagnosis]
            if not rows:
                continue
            column = {key: [r[key] for r in rows] for key in rows[0]}
            lines.append(
                f"| {cohort} | {diagnosis} | {len(rows)} | {spread(column['overlap'])} | "
                f"{spread(column['attribution_overlap'])} | "
                f"{100 * np.mean(column['uptake_overlap']):.0f} % | "
                f"{100 * np.mean(column['chance']):.0f} % | "
                f"{np.median(column['cpu_s']):.0f} / {np.median(column['attribution_cpu_s']):.1f} |"
            )
    seconds = [found["cpu_s_probability"] for found in results.values()]
    lines += [
        "",
        f"CPU time for P(AD): {np.median(seconds):.2f} s per scan (median, "
        f"{torch.get_num_threads()} PyTorch thread(s)); the map dominates the time of "
        "`--classify`.",
        "",
        f"Command: `{command}`. Raw results: `benchmarks/results/classification.json`.",
        END,
    ]
    return "\n".join(lines)


def labelling(cohorts: list) -> str:
    """How the cohorts' diagnoses were drawn, from their participants.json ('' if by stage)."""
    for _, _, bids in cohorts:
        sidecar = Path(bids) / "participants.json"
        described = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        text = described.get("diagnosis", {}).get("Description", "")
        if "MMSE" in text:
            return (
                "The cohorts' diagnoses were drawn from a simulated MMSE "
                "(`taupet-bids-simulate --diagnosis clinical`: >= 28 CN, 24-27 MCI, lower AD, "
                "with a cognitive impairment unrelated to tau in some participants), so label "
                "and tau disagree in some scans, as in real cohorts; no method that reads tau "
                "alone can call those right."
            )
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True, help="the training run's split.tsv")
    parser.add_argument(
        "--train",
        nargs="+",
        type=Path,
        required=True,
        metavar="PATH",
        help="the training run's BIDS dataset, then its derivatives folder(s)",
    )
    parser.add_argument(
        "--cohort", nargs=3, action="append", required=True, metavar=("NAME", "DERIV", "BIDS")
    )
    parser.add_argument(
        "--pipeline-options",
        default="",
        help="the options the cohorts were run with, for the docs (e.g. '--mr-less always')",
    )
    parser.add_argument(
        "--occlusion-scans", type=int, default=4, help="AD and MCI scans per cohort that get maps"
    )
    parser.add_argument(
        "--alternative",
        action="append",
        default=[],
        metavar="NAME=BUNDLE",
        help="a second bundle trained on the same split, scored beside the first (no maps)",
    )
    parser.add_argument("--name", default="", help="how the --bundle is named in the tables")
    parser.add_argument(
        "--from-results",
        action="store_true",
        help="re-render the section from benchmarks/results/classification.json (no scoring)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print, do not edit docs/")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    classifier = load_classifier(args.bundle)
    meta = {**classifier.metadata, "benchmark_name": args.name}
    command = "python benchmarks/classification.py " + shlex.join(
        a if not a.startswith("/") else Path(a).name for a in (argv or sys.argv[1:])
    )
    if args.from_results:
        saved = json.loads(RESULTS.read_text())
        section = render(
            saved["results"], meta, saved["command"], args.pipeline_options, labelling(args.cohort)
        )
        print(section)
        if not args.no_write:
            update_report(REPORT, section, START, END)
        return 0
    alternatives = {
        name: load_classifier(path)
        for name, path in (item.split("=", 1) for item in args.alternative)
    }
    split = pd.read_csv(args.split, sep="\t")
    if len(args.train) < 2:
        parser.error("--train needs the BIDS dataset and at least one derivatives folder")
    bids_dir, *train_derivatives = args.train
    baseline = fit_baseline(scan_table(train_derivatives, bids_dir), split)
    stage_map = np.asarray(nib.load(templates.atlas_path("Braak")).dataobj).astype(int)
    brain = np.asarray(nib.load(templates.brain_mask_path()).dataobj) > 0
    results = {}
    for name, derivatives, bids in args.cohort:
        scans = scan_table(Path(derivatives), Path(bids))
        results[name] = run_cohort(
            classifier, baseline, scans, args.occlusion_scans, (stage_map, brain), alternatives
        )
        print(name, json.dumps({k: results[name][k] for k in results[name]["methods"]}))
    section = render(results, meta, command, args.pipeline_options, labelling(args.cohort))
    print(section)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        saved = {"command": command, "results": results}
        RESULTS.write_text(json.dumps(saved, indent=2, default=str) + "\n")
        update_report(REPORT, section, START, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
