"""Clinically conditioned latent diffusion (T1w + MMSE, amyloid, age -> tau) on held-out
simulated subjects: accuracy beside the U-Net and two references, and the counterfactual check.

Usage (the full run simulates two cohorts, runs the app on both and trains; hours on a CPU)::

    python benchmarks/diffusion.py --out /tmp/diffusion-bench [--n-train 40 --n-test 10]
        [--unet-bundle U-NET_BUNDLE]

or on folders made before (``--train-derivatives D --train-bids B --test-derivatives D
--test-bids B``, e.g. those of ``benchmarks/synthesis.py``) and a bundle trained before
(``--bundle``). Seeds (docs/models.md §10): training cohort and network 33 (the diffusion
model's training seed, ``TRAINING["tau-from-t1w"]``), held-out cohort 20267 (as the U-Net
benchmark); sampling seed ``SAMPLING_SEED + i`` for the i-th held-out scan, the same for every
condition of that scan (common random numbers: a counterfactual difference is the condition's,
not the noise's).

What is computed, per held-out scan, on the template's 2 mm grid:

- **accuracy**: the mean of ``--n-samples`` samples at the scan's own clinical values
  (participants.tsv / sessions.tsv), scored as the U-Net is (``benchmarks/synthesis.py``):
  MSE, PSNR, SSIM inside the brain mask, regional r and MAPE per composite, beside the
  cohort-mean image, the oracle (blurred truth), the autoencoder's ceiling (the measured image
  through the autoencoder alone) and, with ``--unet-bundle``, the T1w U-Net;
- **MMSE counterfactual**: composite SUVR of the mean of the samples at each ``--mmse`` value
  (amyloid and age as the scan's own); the model's slope d(SUVR)/d(MMSE) per scan (least
  squares), its mean and the fraction of scans with a negative slope, against the simulator's
  slope: the blurred truth composite of the training scans regressed on their MMSE;
- **amyloid counterfactual**: SUVR with amyloid positive minus negative (MMSE and age as the
  scan's own), against the truth's difference of group means, at matched Braak stage, and
  adjusted for MMSE (the amyloid coefficient of truth ~ 1 + MMSE + amyloid: what the model's
  counterfactual, which holds MMSE fixed, estimates); signs are compared with the adjusted one;
- **diversity against error**: mean between-sample voxel SD inside the brain mask against the
  voxel MAE of the mean image, per scan, and their Pearson r;
- **CPU time** per sample (one thread).

Without the simulator's truth tables (a cohort not made by the simulator) every truth figure
is n/a; the slope of the measured training SUVR on MMSE is given beside it either way.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import update_report  # noqa: E402
from synthesis import (  # noqa: E402
    LINEAR,
    _composites,
    _number,
    blurred_truth_composites,
    ensure_cohorts,
    held_pairs,
    input_image,
    oracle_image,
    regional_rows,
    simulated_with,
)

from taupet_bids import templates  # noqa: E402
from taupet_bids.synthesis import clinical, diffusion_inference, inference  # noqa: E402
from taupet_bids.synthesis import diffusion as ldm  # noqa: E402
from taupet_bids.synthesis.bundle import load_synthesiser  # noqa: E402
from taupet_bids.synthesis.preprocessing import brain_mask, read_suvr  # noqa: E402
from taupet_bids.training.synthesis import score, truth_images  # noqa: E402
from taupet_bids.training.synthesis_diffusion import (  # noqa: E402
    AUTOENCODER_LOSSES,
    POSTERIORS,
    TAU_LATENTS,
    DiffusionConfig,
    find_tables,
    reconstruct,
    scan_clinical,
    train,
)
from taupet_bids.training.synthesis_diffusion_card import export_trained_bundle  # noqa: E402
from taupet_bids.training.synthesis_tasks import TRAINING  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "docs" / "benchmarks.md"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TRAIN_SEED = TRAINING["tau-from-t1w"].seed
SAMPLING_SEED = 0
MMSE_SWEEP = (30.0, 25.0, 20.0, 15.0, 10.0)
AMYLOID = ("negative", "positive")
#: The measured image through the autoencoder alone: no sample, decoded by it, can beat this.
CEILING = "autoencoder of the measured image (ceiling)"
#: Effects smaller than this (SUVR, or SUVR per MMSE point) count as none: float32 sampling
#: and a least-squares fit leave differences of 1e-8 where the model or truth has no effect.
ZERO = 1e-6


# --- statistics (pure; tests/test_diffusion_benchmark.py) -------------------------------------


def slope(x, y) -> float | None:
    """Least-squares slope of y on x; None when x has fewer than two distinct values."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(np.unique(x)) < 2:
        return None
    return float(np.polyfit(x, y, 1)[0])


def direction(value: float) -> int:
    """-1, 0 or +1, with effects below :data:`ZERO` as 0."""
    return 0 if abs(value) < ZERO else int(np.sign(value))


def summarise(values: list, sign: int) -> dict:
    """Mean of per-scan effects and the fraction with the given sign (-1: negative), so the
    direction is judged per scan and not only on average."""
    kept = [v for v in values if v is not None]
    if not kept:
        return {"mean": None, "fraction": None, "n": 0}
    fraction = float(np.mean([direction(v) == sign for v in kept]))
    return {"mean": float(np.mean(kept)), "fraction": fraction, "n": len(kept)}


def signs_agree(model: float | None, truth: float | None) -> bool | None:
    """Whether two effects point the same way (None when either is unknown or none)."""
    if model is None or truth is None or direction(model) == 0 or direction(truth) == 0:
        return None
    return direction(model) == direction(truth)


def group_difference(values, positive) -> float | None:
    """Mean of the amyloid-positive minus that of the negative; None without both groups."""
    values, positive = np.asarray(values, np.float64), np.asarray(positive, bool)
    if positive.all() or not positive.any():
        return None
    return float(values[positive].mean() - values[~positive].mean())


def matched_difference(values, positive, strata) -> float | None:
    """Positive minus negative within each stratum (Braak stage) that has both, averaged with
    the stratum's size as weight: the amyloid effect with the stage held fixed."""
    values, positive, strata = map(np.asarray, (values, positive, strata))
    differences, weights = [], []
    for stratum in np.unique(strata):
        inside = strata == stratum
        difference = group_difference(values[inside], positive[inside])
        if difference is not None:
            differences.append(difference)
            weights.append(inside.sum())
    return float(np.average(differences, weights=weights)) if differences else None


def adjusted_difference(values, positive, mmse) -> float | None:
    """The amyloid coefficient of values ~ 1 + MMSE + amyloid (least squares): the effect of
    flipping amyloid at a fixed MMSE, which is what the model's counterfactual asks."""
    y, a, m = (np.asarray(v, np.float64) for v in (values, positive, mmse))
    design = np.column_stack([np.ones_like(y), m, a])
    if len(y) <= 3 or np.linalg.matrix_rank(design) < 3:
        return None
    return float(np.linalg.lstsq(design, y, rcond=None)[0][2])


def pearson(x, y) -> float | None:
    """Pearson r; None for fewer than three values or a constant series."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


# --- the simulator's side ---------------------------------------------------------------------


def _tables(bids: Path | None, derivatives: Path) -> list[Path]:
    """Where the clinical values are: ``bids``, or the training's own search above
    ``derivatives`` (so a scan is conditioned as it was in training)."""
    return find_tables(SimpleNamespace(bids_dirs=[bids] if bids else [], derivatives=[derivatives]))


def braak_stage(tables: list[Path], pair) -> float | None:
    """The scan's simulated Braak stage (sessions.tsv, else participants.tsv), or None."""
    for root in tables:
        rows = _tsv(root / "participants.tsv", "participant_id").get(pair.participant, {})
        if pair.session:
            sessions = root / pair.participant / f"{pair.participant}_sessions.tsv"
            rows = {**rows, **_tsv(sessions, "session_id").get(pair.session, {})}
        try:
            return float(rows["braak_stage"])
        except (KeyError, ValueError):
            continue
    return None


def _tsv(path: Path, key: str) -> dict:
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        return {row[key]: row for row in csv.DictReader(handle, delimiter="\t") if key in row}


def cohort_effects(composites: list[dict] | None, values: list[dict], stages: list) -> dict:
    """Per composite: the MMSE slope and the amyloid differences of one set of training SUVRs
    (the truth's or the measured); n/a where the scans lack the values they need."""
    if not composites:
        return {}
    mmse = np.array([v["mmse"] if v["mmse"] is not None else np.nan for v in values])
    known = np.array([v["amyloid_status"] is not None for v in values])
    positive = np.array([v["amyloid_status"] == "positive" for v in values])
    stage = np.array([s if s is not None else np.nan for s in stages], np.float64)
    both, staged = known & np.isfinite(mmse), known & np.isfinite(stage)
    out = {}
    for name in composites[0]:
        y = np.array([c[name] for c in composites])
        out[name] = {
            "mmse_slope": slope(mmse, y),
            "amyloid_groups": group_difference(y[known], positive[known]),
            "amyloid_matched_stage": matched_difference(y[staged], positive[staged], stage[staged]),
            "amyloid_adjusted_mmse": adjusted_difference(y[both], positive[both], mmse[both]),
        }  # fmt: skip
    return out


def training_effects(train_pairs, train_bids: Path | None, train_derivatives: Path) -> dict:
    """The simulator's truth effects and the measured ones, across the training scans."""
    tables = _tables(train_bids, train_derivatives)
    values = [scan_clinical(pair, tables) for pair in train_pairs]
    stages = [braak_stage(tables, pair) for pair in train_pairs]
    measured = [_composites(t) for t in truth_images(train_pairs)]
    truth = None
    if train_bids is not None:
        truth = [blurred_truth_composites(train_bids, pair) for pair in train_pairs]
        truth = None if any(t is None for t in truth) else truth
    return {
        "truth": cohort_effects(truth, values, stages),
        "measured": cohort_effects(measured, values, stages),
        "n_with_mmse": sum(v["mmse"] is not None for v in values),
        "mmse_range": _range([v["mmse"] for v in values]),
        "n_with_amyloid": sum(v["amyloid_status"] is not None for v in values),
    }


def _range(values: list) -> list | None:
    """[min, max] of the known values (the sweep beyond it extrapolates)."""
    kept = [v for v in values if v is not None]
    return [min(kept), max(kept)] if kept else None


# --- baselines --------------------------------------------------------------------------------

#: One line per composite from the T1w's composite mean and the clinical values: what a
#: regression does with the same inputs as the model.
CLINICAL_LINEAR = "regional linear, T1w + clinical values (baseline)"


def clinical_features(values: dict) -> list[float]:
    """MMSE, amyloid (+1 positive, -1 negative) and age; NaN where missing."""
    amyloid = clinical.AMYLOID.get(values.get("amyloid_status"), np.nan)
    return [
        np.nan if values.get("mmse") is None else float(values["mmse"]),
        float(amyloid),
        np.nan if values.get("age") is None else float(values["age"]),
    ]


def regional_linear_clinical(
    train_t1w: list[dict], train_values: list[dict] | None, train_y: list[dict],
    test_t1w: list[dict], test_values: list[dict] | None,
) -> list[dict]:  # fmt: skip
    """Per composite, least squares of SUVR on 1, the T1w's composite mean, MMSE, amyloid and
    age (a missing value takes the training mean of its column); without values (None), on 1
    and the T1w's composite mean alone (``benchmarks/synthesis.py``'s regional-linear line)."""
    train_c, test_c = np.zeros((len(train_t1w), 0)), np.zeros((len(test_t1w), 0))
    if train_values is not None and test_values is not None:
        train_c = np.array([clinical_features(v) for v in train_values], np.float64)
        test_c = np.array([clinical_features(v) for v in test_values], np.float64)
        fill = np.nan_to_num(np.nanmean(np.where(np.isfinite(train_c), train_c, np.nan), axis=0))
        train_c = np.where(np.isfinite(train_c), train_c, fill)
        test_c = np.where(np.isfinite(test_c), test_c, fill)
    predicted: list[dict] = [{} for _ in test_t1w]
    for name in train_y[0]:
        design = np.column_stack([np.ones(len(train_c)), [x[name] for x in train_t1w], train_c])
        coef = np.linalg.lstsq(design, [y[name] for y in train_y], rcond=None)[0]
        test = np.column_stack([np.ones(len(test_c)), [x[name] for x in test_t1w], test_c])
        for row, value in zip(predicted, test @ coef, strict=True):
            row[name] = float(value)
    return predicted


def baselines(train_pairs, train_truth, train_tables, test_pairs, test_values) -> dict:
    """The regional baselines' composites per held-out scan: T1w alone (as the U-Net's
    benchmark) and T1w with the clinical values (``test_values``: each held-out scan's)."""
    train_t1w = [_composites(input_image(p, "T1w")) for p in train_pairs]
    test_t1w = [_composites(input_image(p, "T1w")) for p in test_pairs]
    train_values = [scan_clinical(p, train_tables) for p in train_pairs]
    train_y = [_composites(t) for t in train_truth]
    return {
        LINEAR: regional_linear_clinical(train_t1w, None, train_y, test_t1w, None),
        CLINICAL_LINEAR: regional_linear_clinical(
            train_t1w, train_values, train_y, test_t1w, test_values
        ),
    }


# --- the model's side -------------------------------------------------------------------------


def model_recipe(metadata: dict) -> dict:
    """The bundle's version and the training choices the section names."""
    config = metadata["taupet_bids"]["training_config"]
    return {
        "version": metadata["version"],
        "autoencoder_posterior": config.get("autoencoder_posterior", "sample"),
        "tau_latent": "centred" if config.get("centre_tau_latent") else "scaled",
    }


class Sampler:
    """One bundle's samples, with the CPU time they took (one thread)."""

    def __init__(self, bundle: Path, n_samples: int) -> None:
        torch.set_num_threads(1)
        self.network, metadata = diffusion_inference.load(bundle)
        self.defaults = diffusion_inference.sampling_defaults(metadata)
        self.model = model_recipe(metadata)
        self.n_samples, self.cpu_s, self.drawn = n_samples, 0.0, 0

    def draw(self, image: torch.Tensor, values: dict, seed: int) -> diffusion_inference.Samples:
        start = time.process_time()
        samples = diffusion_inference.sample(
            self.network, image, values, self.n_samples, seed, **self.defaults
        )
        self.cpu_s += time.process_time() - start
        self.drawn += self.n_samples
        return samples


def counterfactuals(sampler: Sampler, image, values: dict, mmse: list, seed: int) -> dict:
    """Composite SUVR of the mean of the samples along the MMSE sweep and for each amyloid
    status; the per-scan MMSE slope and amyloid difference per composite."""

    def suvr(**changed) -> dict:
        return _composites(sampler.draw(image, {**values, **changed}, seed).mean)

    sweep = [suvr(mmse=m) for m in mmse]
    flips = {status: suvr(amyloid_status=status) for status in AMYLOID}
    return {
        name: {
            "suvr_by_mmse": [row[name] for row in sweep],
            "mmse_slope": slope(mmse, [row[name] for row in sweep]),
            "amyloid_difference": flips["positive"][name] - flips["negative"][name],
        }
        for name in sweep[0]
    }


def diversity_and_error(samples, truth: np.ndarray, mask: np.ndarray) -> dict:
    """Mean between-sample voxel SD and voxel MAE of the mean image, inside the brain."""
    return {
        "sample_sd": float(samples.sd[mask].mean()),
        "mae": float(np.abs(samples.mean[mask] - truth[mask]).mean()),
    }


def unet_predictions(bundle: Path, test_pairs) -> tuple[list[np.ndarray], float]:
    """The T1w U-Net's images and CPU seconds per subject (as benchmarks/synthesis.py runs it)."""
    torch.set_num_threads(1)
    start = time.process_time()
    synthesiser = load_synthesiser(bundle)
    made = [
        inference.infer(synthesiser.network, synthesiser.inferer, inference.prepare_file(p.source))
        for p in test_pairs
    ]
    return made, (time.process_time() - start) / max(1, len(test_pairs))


def per_scan(sampler: Sampler, pairs, tables, truth, mmse) -> list[dict]:
    """Own-condition samples, counterfactuals and diversity of every held-out scan."""
    mask, rows = brain_mask(), []
    for index, (pair, target) in enumerate(zip(pairs, truth, strict=True)):
        values = scan_clinical(pair, tables)
        image = inference.prepare_file(pair.source, "T1w")
        own = sampler.draw(image, values, SAMPLING_SEED + index)
        rows.append({
            "participant": pair.participant, "session": pair.session,
            "clinical": values, "mean_image": own.mean,
            **diversity_and_error(own, target, mask),
            "counterfactual": counterfactuals(sampler, image, values, mmse, SAMPLING_SEED + index),
        })  # fmt: skip
    return rows


def accuracy(
    methods: dict, truth: list, test_pairs, test_bids: Path | None, regional_only: dict
) -> dict:
    """Voxel and regional rows of every method, the oracle and the cohort mean (as the U-Net
    benchmark scores them); ``regional_only``: composites of the regional baselines."""
    voxel = {name: score(images, truth) for name, images in methods.items()}
    oracles = [oracle_image(test_bids, p) for p in test_pairs] if test_bids else []
    if oracles and all(o is not None for o in oracles):
        voxel["oracle (blurred truth)"] = score(oracles, truth)
    measured = [_composites(t) for t in truth]
    blurred = [blurred_truth_composites(test_bids, p) for p in test_pairs] if test_bids else []
    have_truth = bool(blurred) and all(b is not None for b in blurred)
    regional = []
    for name, images in methods.items():
        composites = [_composites(image) for image in images]
        regional += regional_rows(name, composites, measured, "measured")
        if have_truth:
            regional += regional_rows(name, composites, blurred, "blurred truth")
    for name, composites in regional_only.items():
        regional += regional_rows(name, composites, measured, "measured")
        if have_truth:
            regional += regional_rows(name, composites, blurred, "blurred truth")
    if have_truth:
        regional += regional_rows("oracle (blurred truth)", blurred, measured, "measured")
    keys = ("mse", "psnr_db", "ssim", "n")
    return {
        "voxel": {k: {m: v[m] for m in keys} for k, v in voxel.items()},
        "regional": regional,
    }


def effects_table(scans: list[dict], training: dict) -> dict:
    """Per composite: the model's MMSE and amyloid effects against the truth's."""
    out = {}
    for name in scans[0]["counterfactual"] if scans else []:
        rows = [s["counterfactual"][name] for s in scans]
        truth = training["truth"].get(name, {})
        measured = training["measured"].get(name, {})
        mmse = summarise([r["mmse_slope"] for r in rows], -1)
        amyloid = summarise([r["amyloid_difference"] for r in rows], 1)
        out[name] = {
            "mmse": {**mmse, "truth": truth.get("mmse_slope"),
                     "measured": measured.get("mmse_slope"),
                     "agree": signs_agree(mmse["mean"], truth.get("mmse_slope"))},
            "amyloid": {**amyloid, **{f"truth_{k}": truth.get(k) for k in
                                      ("amyloid_groups", "amyloid_matched_stage",
                                       "amyloid_adjusted_mmse")},
                        "measured_adjusted_mmse": measured.get("amyloid_adjusted_mmse"),
                        "agree": signs_agree(amyloid["mean"], truth.get("amyloid_adjusted_mmse"))},
        }  # fmt: skip
    return out


def evaluate(args: argparse.Namespace, bundle: Path, train_pairs, test_pairs) -> dict:
    """Every number of the section."""
    truth, train_truth = truth_images(test_pairs), truth_images(train_pairs)
    cohort_mean = np.mean(train_truth, axis=0).astype(np.float32)
    sampler = Sampler(bundle, args.n_samples)
    tables = _tables(args.test_bids, args.test_derivatives)
    scans = per_scan(sampler, test_pairs, tables, truth, list(args.mmse))
    label = f"diffusion (mean of {args.n_samples})"
    methods = {label: [s.pop("mean_image") for s in scans]}
    targets = np.stack([read_suvr(p.suvr) for p in test_pairs])
    methods[CEILING] = reconstruct(sampler.network, targets)
    unet_cpu = None
    if args.unet_bundle:
        methods["U-Net (T1w)"], unet_cpu = unet_predictions(args.unet_bundle, test_pairs)
    methods["cohort mean"] = [cohort_mean] * len(truth)
    training = training_effects(train_pairs, args.train_bids, args.train_derivatives)
    return {
        "n_train": len(train_pairs), "n_test": len(test_pairs), "n_samples": args.n_samples,
        "cohorts": {"train": simulated_with(args.train_bids),
                    "test": simulated_with(args.test_bids)},
        "mmse_sweep": list(args.mmse), "sampling": sampler.defaults, "model": sampler.model,
        "test_without_clinical_values": sum(
            clinical.missing(s["clinical"]) == list(clinical.VARIABLES) for s in scans),
        **accuracy(methods, truth, test_pairs, args.test_bids, baselines(
            train_pairs, train_truth, _tables(args.train_bids, args.train_derivatives),
            test_pairs, [s["clinical"] for s in scans],
        )),
        "effects": effects_table(scans, training), "training": training,
        "diversity_error_r": pearson([s["sample_sd"] for s in scans], [s["mae"] for s in scans]),
        "scans": scans,
        "cpu_seconds_per_sample": sampler.cpu_s / max(1, sampler.drawn),
        "unet_cpu_seconds_per_subject": unet_cpu,
    }  # fmt: skip


# --- report ----------------------------------------------------------------------------------


def _effect(value: float | None) -> str:
    """An effect with three significant digits (a small one is not shown as 0.0000; one below
    :data:`ZERO` is 0)."""
    if value is None:
        return "n/a"
    return "0" if direction(value) == 0 else f"{value:.3g}"


def _yes(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "**no**")


def _effect_lines(effects: dict, training: dict) -> list[str]:
    lines = []
    if not training["truth"]:
        lines += ["", "Truth effects are n/a: the training cohort has no simulator truth tables "
                  "(not given with --train-bids, or not made by the simulator)."]  # fmt: skip
    known = training["mmse_range"]
    lines += [
        "", f"Training MMSE: {training['n_with_mmse']} scans with a value"
        + (f", range {known[0]:g}-{known[1]:g}" if known else "")
        + "; swept values outside it are extrapolation.",
    ]  # fmt: skip
    lines += [
        "", "MMSE counterfactual (slope of composite SUVR per MMSE point; negative: more tau at "
        "lower MMSE):", "",
        "| composite | model mean slope | scans with negative slope | truth slope | measured "
        "slope (training) | signs agree |", "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in effects.items():
        m = row["mmse"]
        lines.append(
            f"| {name} | {_effect(m['mean'])} | {_number(m['fraction'], 2)} ({m['n']}) | "
            f"{_effect(m['truth'])} | {_effect(m['measured'])} | {_yes(m['agree'])} |"
        )
    lines += [
        "", "Amyloid counterfactual (SUVR positive minus negative; truth: training cohort's "
        "group means, at matched Braak stage, and adjusted for MMSE, the one the signs are "
        "compared with):", "",
        "| composite | model mean difference | scans with positive difference | truth groups | "
        "truth matched stage | truth adjusted for MMSE | measured adjusted | signs agree |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in effects.items():
        a = row["amyloid"]
        lines.append(
            f"| {name} | {_effect(a['mean'])} | {_number(a['fraction'], 2)} ({a['n']}) | "
            f"{_effect(a['truth_amyloid_groups'])} | "
            f"{_effect(a['truth_amyloid_matched_stage'])} | "
            f"{_effect(a['truth_amyloid_adjusted_mmse'])} | "
            f"{_effect(a['measured_adjusted_mmse'])} | {_yes(a['agree'])} |"
        )
    return lines


def markers(section: str) -> tuple[str, str]:
    return f"<!-- {section}:start -->", f"<!-- {section}:end -->"


def render(results: dict, section: str = "diffusion") -> str:
    """The docs/benchmarks.md section, every number from ``results``."""
    model = results.get("model") or {}
    recipe = (
        f"Model version {model['version']}: decoder trained from the posterior's "
        f"{model['autoencoder_posterior']}, tau latent {model['tau_latent']}. "
        if model
        else ""
    )
    title = "latent diffusion" if section == "diffusion" else f"latent diffusion, {section}"
    lines = [
        markers(section)[0], f"## Synthetic tau PET from T1w and clinical values ({title})", "",
        f"Produced by `benchmarks/diffusion.py` ({' '.join(sys.argv[1:]) or 'defaults'}); "
        f"measured {time.strftime('%Y-%m-%d')}. {recipe}{results['n_train']} training and "
        f"{results['n_test']} held-out scans; network seed {TRAIN_SEED}; sampling seed "
        f"{SAMPLING_SEED} + scan index, the same for every condition of a scan. Training cohort: "
        f"`{results['cohorts']['train']}`; held-out cohort: `{results['cohorts']['test']}`. "
        "Each image is "
        f"the mean of {results['n_samples']} samples (DDIM {results['sampling']['steps']} steps, "
        f"guidance {results['sampling']['guidance']:g}) at the scan's own clinical values "
        f"({results['test_without_clinical_values']} held-out scans had none: unconditional). "
        "Metrics as for the U-Net (section above). The ceiling row is the measured image "
        "through the model's autoencoder alone: every sample is decoded by it, so no sample "
        "can do better.", "",
        "| method | MSE | PSNR (dB) | SSIM | scans |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in results["voxel"].items():
        lines.append(
            f"| {name} | {_number(row['mse'], 4)} | {_number(row['psnr_db'], 2)} | "
            f"{_number(row['ssim'], 3)} | {row['n']} |"
        )
    lines += [
        "", "Regional composites across held-out scans: Pearson r, MAPE, slope of predicted on "
        "measured (1 follows the person, 0 is one value for all) and spread ratio (SD of "
        "predicted / SD of measured). The two regional-linear baselines use one number per "
        "region: the T1w's composite mean, and that with MMSE, amyloid status and age.", "",
        "| method | against | composite | r | MAPE % | slope | spread ratio |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for row in results["regional"]:
        lines.append(
            f"| {row['method']} | {row['against']} | {row['composite']} | "
            f"{_number(row['r'], 3)} | {_number(row['mape_percent'], 1)} | "
            f"{_number(row.get('slope'), 3)} | {_number(row.get('spread_ratio'), 3)} |"
        )
    lines += _effect_lines(results["effects"], results["training"])
    lines += [
        "", "Sample diversity against error (per held-out scan: mean between-sample voxel SD "
        "inside the brain, voxel MAE of the mean image):", "",
        "| scan | sample SD | MAE |", "|---|---|---|",
        *[f"| {s['participant']}{' ' + s['session'] if s['session'] else ''} | "
          f"{s['sample_sd']:.4f} | {s['mae']:.4f} |" for s in results["scans"]],
        "", f"Pearson r (SD, MAE) across scans: {_number(results['diversity_error_r'], 3)}. "
        f"CPU time per sample (one thread): {results['cpu_seconds_per_sample']:.2f} s"
        + (f"; U-Net per subject: {results['unet_cpu_seconds_per_subject']:.2f} s."
           if results["unet_cpu_seconds_per_subject"] is not None else "."),
        markers(section)[1],
    ]  # fmt: skip
    return "\n".join(lines)


# --- run ---------------------------------------------------------------------------------------


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--out", type=Path, default=Path("/tmp/taupet-diffusion-bench"))
    add("--n-train", type=int, default=40)
    add("--n-test", type=int, default=10)
    add("--anatomy", choices=("other", "template"), default="other")
    for name in ("train-derivatives", "train-bids", "test-derivatives", "test-bids"):
        add(f"--{name}", type=Path)
    add("--bundle", type=Path, help="a trained diffusion bundle (no training here)")
    add("--unet-bundle", type=Path, help="a T1w U-Net bundle to score beside it")
    add("--reconstruction", metavar="LABEL", help="only targets with this rec- label")
    add("--n-samples", type=int, default=4)
    add("--mmse", type=float, nargs="+", default=list(MMSE_SWEEP))
    add("--steps", type=int, default=DiffusionConfig.steps)
    add("--autoencoder-steps", type=int, default=DiffusionConfig.autoencoder_steps)
    add("--batch-size", type=int, default=DiffusionConfig.batch_size)
    add("--threads", type=int, default=1, help="torch threads of the training (sampling: one)")
    add(
        "--autoencoder-loss",
        choices=tuple(AUTOENCODER_LOSSES),
        default=DiffusionConfig.autoencoder_loss,
    )
    add(
        "--autoencoder-posterior",
        choices=POSTERIORS,
        default=DiffusionConfig.autoencoder_posterior,
    )
    add("--tau-latent", choices=TAU_LATENTS, default=TAU_LATENTS[0])
    add("--autoencoder-channels", type=int, nargs="+", default=list(ldm.AUTOENCODER_CHANNELS))
    add("--latent-channels", type=int, default=ldm.LATENT_CHANNELS)
    add("--unet-channels", type=int, nargs="+", default=list(ldm.UNET_CHANNELS))
    add("--norm-groups", type=int, default=ldm.NORM_GROUPS)
    add("--head-channels", type=int, default=ldm.HEAD_CHANNELS)
    add("--ddim-steps", type=int, default=ldm.DDIM_STEPS)
    add("--report", type=Path, default=REPORT)
    add("--section", default="diffusion", help="the report section's marker name")
    add("--results", type=Path, help="default: benchmarks/results/<section>.json, - as _")
    add("--no-write", action="store_true", help="no report section (the JSON is still written)")
    args = parser.parse_args()
    args.results = args.results or RESULTS_DIR / f"{args.section.replace('-', '_')}.json"
    return args


def trained_bundle(args: argparse.Namespace) -> Path:
    """Train the diffusion model on the training cohort with its own seed; its bundle."""
    config = DiffusionConfig(
        args.out / "training", [args.train_derivatives],
        bids_dirs=[args.train_bids] if args.train_bids else [], seed=TRAIN_SEED,
        reconstruction=args.reconstruction, steps=args.steps,
        autoencoder_steps=args.autoencoder_steps, autoencoder_loss=args.autoencoder_loss,
        autoencoder_posterior=args.autoencoder_posterior,
        centre_tau_latent=args.tau_latent == "centred", batch_size=args.batch_size,
        checkpoint_every=max(1, min(50, args.steps)), threads=args.threads,
        autoencoder_channels=args.autoencoder_channels, latent_channels=args.latent_channels,
        unet_channels=args.unet_channels, norm_groups=args.norm_groups,
        head_channels=args.head_channels, ddim_steps=args.ddim_steps,
    )  # fmt: skip
    return export_trained_bundle(config, train(config), args.out / "bundle")


def main() -> None:
    args = _arguments()
    torch.set_num_threads(1)
    templates.ensure_templateflow()
    ensure_cohorts(args)
    bundle = args.bundle or trained_bundle(args)
    train_pairs, test_pairs = held_pairs(args)
    results = evaluate(args, bundle, train_pairs, test_pairs)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, default=float) + "\n")
    if not args.no_write:
        update_report(args.report, render(results, args.section), *markers(args.section))
    print(
        render(results, args.section)
        if args.no_write
        else f"wrote the {args.section} section of {args.report}"
    )
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
