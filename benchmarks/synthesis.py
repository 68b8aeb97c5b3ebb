"""Synthetic PET (tau from T1w or FDG, TSPO from T1w) on held-out simulated subjects, against
two references.

Usage (the full run simulates two cohorts and runs the app on both; hours on a CPU)::

    python benchmarks/synthesis.py --out /tmp/synth-bench [--n-train 40 --n-test 10]

or on derivatives made before (``--train-derivatives D --test-derivatives D --test-bids B``;
``--steps``, ``--channels`` for a smoke test). ``--task`` picks the path (default
``tau-from-t1w``; ``tau-from-fdg`` and ``tspo-from-t1w`` train their own networks, each with its
task's seed, and write their own section and results file). Seeds (docs/models.md §10): training
cohort and tau-from-T1w networks 33, held-out cohort 20267, never looked at while choosing the
architecture or steps.

What is compared, per held-out scan, on the template's 2 mm grid:

- **target**: the app's measured template-space SUVR of the simulated PET (what the network
  was trained to predict), inside the template brain mask, clipped to SUVR [0, 4];
- **U-Net** (the task's network: Dense-U-Net for FDG, separable U-Net for TSPO): the synthesis
  bundle trained here on the training cohort;
- **cohort mean** (reference): the voxelwise mean of the training targets: a model that does not
  beat it has learned nothing about the person;
- **regional linear** (baseline, regional rows only): per composite, a straight line fitted on
  the training cohort from the input's mean in the composite (T1w / brain median, or FDG SUVR)
  to the target's composite SUVR: what one number per region of the input already predicts;
- **oracle** (ceiling): the simulator's noise-free truth degraded only by the PSF (its
  ``desc-blurred`` map, on our grid when the cohort was made with ``--anatomy template``); with
  the default ``other`` anatomy the truth map lies in another template's space, so the oracle's
  voxel row is n/a and only its regional row (the blurred truth table) is given.

Voxel metrics: MSE, PSNR and SSIM (3-D, 7-voxel window) inside the template brain mask on SUVR
as it is (no per-volume scaling), data range 4 SUVR. Regional: per composite (meta-temporal,
Braak I-II, III-IV, V-VI) Pearson r, MAPE, slope and spread ratio across held-out scans (a
slope near 0 is one value for everyone, however high r is), against the measured
composite and against the blurred truth. CPU time: loading the bundle and synthesising one
subject on one thread. The seeds' own figures are shown beside ours, marked as theirs: they come
from real data, 2-D slices or other scalings, and are not comparable number for number.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import update_report  # noqa: E402

from taupet_bids import naming, templates  # noqa: E402
from taupet_bids.core import synthesis_metrics  # noqa: E402
from taupet_bids.core.images import load_3d  # noqa: E402
from taupet_bids.simulate.truth import find_truth, read_truth_table, truth_value  # noqa: E402
from taupet_bids.synthesis import inference, preprocessing  # noqa: E402
from taupet_bids.synthesis.bundle import load_synthesiser  # noqa: E402
from taupet_bids.synthesis.networks import TASKS  # noqa: E402
from taupet_bids.training.synthesis import TrainConfig, score, train, truth_images  # noqa: E402
from taupet_bids.training.synthesis_card import export_trained_bundle  # noqa: E402
from taupet_bids.training.synthesis_data import find_pairs  # noqa: E402
from taupet_bids.training.synthesis_tasks import TRAINING  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "docs" / "benchmarks.md"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TRAIN_SEED, TEST_SEED = 33, 20267
#: The seeds' published figures, on their own data and definitions (docs/synthesis.md).
PUBLISHED = [
    ("seed 002, MCR-VQGAN, T1w -> tau (first version)", "0.0056", "24.39", "0.900", "n/a",
     "2-D slices, their scaling"),
    ("seed 002, MCR-VQGAN, T1w -> tau (revision)", "0.0056", "30.65", "0.926", "n/a",
     "same MSE, another intensity range"),
    ("seed 000, Dense-U-Net, FDG -> tau", "n/a", "n/a", "n/a", "r > 0.8, MAPE ~8 %",
     "regional SUVR"),
    ("seed 004, 3-D U-Net, T1w -> TSPO", "0.0033", "n/a", "n/a", "n/a",
     "per-volume min-max scaling"),
]  # fmt: skip


#: Each task's section name in docs/benchmarks.md (tau from T1w keeps the first one's) and title.
SECTIONS = {
    "tau-from-t1w": ("synthesis", "Synthetic tau PET from T1w (3-D U-Net, MCR-VQGAN)"),
    "tau-from-fdg": ("synthesis-tau-from-fdg", "Synthetic tau PET from FDG (3-D Dense-U-Net)"),
    "tspo-from-t1w": ("synthesis-tspo-from-t1w",
                      "Synthetic TSPO PET from T1w (separable 3-D U-Net with attention)"),
}  # fmt: skip
#: The task's network, as the method's row name.
NETWORK_NAMES = {
    "tau-from-t1w": "U-Net", "tau-from-fdg": "Dense-U-Net", "tspo-from-t1w": "separable U-Net"
}  # fmt: skip


#: The regional-linear baseline's row name (:func:`regional_linear`).
LINEAR = "regional linear (baseline)"


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of a section."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def results_path(name: str) -> Path:
    """A section's results file (tau from T1w's first section keeps ``synthesis.json``)."""
    return RESULTS_DIR / f"{name.replace('-', '_')}.json"


def _run(command: list) -> None:
    subprocess.run([str(part) for part in command], check=True)


def make_cohort(out: Path, name: str, n: int, seed: int, anatomy: str) -> tuple[Path, Path]:
    """Simulate a cohort and run the app's participant level with --synthesize off."""
    bin_dir = Path(sys.executable).parent
    bids, derivatives = out / name / "bids", out / name / "derivatives"
    if not bids.exists():
        _run([bin_dir / "taupet-bids-simulate", bids, "--n-subjects", n, "--seed", seed,
              "--single-frame", "--anatomy", anatomy])  # fmt: skip
    if not derivatives.exists():
        _run([bin_dir / "taupet-bids", bids, derivatives, "participant", "-w", out / name / "work",
              "--skip-bids-validation", "--regional-mask", "template"])  # fmt: skip
    return bids, derivatives


@functools.cache
def _composite_atlases() -> tuple[dict, dict]:
    """The composites' atlas images and region groups, read once per run."""
    import nibabel as nib

    from taupet_bids.atlases.regions import region_groups

    names = {atlas for atlas, _ in synthesis_metrics.COMPOSITES}
    atlases = {a: np.asarray(nib.load(templates.atlas_path(a)).dataobj) for a in names}
    return atlases, {a: region_groups(a) for a in names}


def _composites(image: np.ndarray) -> dict[str, float]:
    return synthesis_metrics.composite_means(image, *_composite_atlases())


def _rec(pair) -> str | None:
    """The target's ``rec-`` label (a dataset of PET/MR and PET/CT pairs has one truth each)."""
    return naming.entities(pair.suvr.name).get("rec")


def blurred_truth_composites(bids: Path, pair) -> dict[str, float] | None:
    """The blurred truth of the composites (volume-weighted over Braak stages), or None."""
    try:
        table = read_truth_table(
            find_truth(bids, pair.participant, pair.session, "blurred", pair.tracer, rec=_rec(pair))
        )
    except FileNotFoundError:
        return None
    out = {"MetaTemporal:metatemporal": truth_value(table, "MetaTemporal", "metatemporal")}
    braak = table[table["atlas"] == "Braak"].set_index("region")
    for name, stages in (("BraakI_II", "I II"), ("BraakIII_IV", "III IV"), ("BraakV_VI", "V VI")):
        rows = braak.loc[[f"Braak{s}" for s in stages.split()]]
        out[f"Braak:{name}"] = float(np.average(rows["suvr"], weights=rows["n_voxels"]))
    return out


def oracle_image(bids: Path, pair) -> np.ndarray | None:
    """The blurred truth map when it lies on our template grid (``--anatomy template``)."""
    try:
        path = find_truth(
            bids, pair.participant, pair.session, "blurred", pair.tracer, ".nii.gz", _rec(pair)
        )
    except FileNotFoundError:
        return None
    if f"space-{templates.TEMPLATE}_" not in path.name:
        return None
    return preprocessing.clean_suvr(load_3d(path, np.float32))


def regional_rows(method: str, predicted: list[dict], against: list[dict], what: str) -> list:
    rows = []
    for name in predicted[0] if predicted else []:
        stats = synthesis_metrics.regional_agreement(
            [p[name] for p in predicted], [t[name] for t in against]
        )
        rows.append({"method": method, "against": what, "composite": name, **stats})
    return rows


def input_image(pair, source: str) -> np.ndarray:
    """The task's input on the template's 2 mm grid, scaled as the network reads it."""
    image = load_3d(pair.source, np.float32)
    if source == "T1w":
        return preprocessing.normalise_t1w(image)
    return preprocessing.clean_suvr(image)


def regional_linear(train_pairs, train_truth, test_pairs, source: str) -> list[dict]:
    """The regional-linear baseline: per composite, a straight line (least squares) from the
    input's mean in the composite to the training targets' composite SUVR, applied to each
    held-out input. A network that does not beat it uses no more of the input than one number
    per region does."""
    train_x = [_composites(input_image(pair, source)) for pair in train_pairs]
    train_y = [_composites(image) for image in train_truth]
    test_x = [_composites(input_image(pair, source)) for pair in test_pairs]
    predicted: list[dict] = [{} for _ in test_pairs]
    for name in train_y[0]:
        slope, intercept = np.polyfit([x[name] for x in train_x], [y[name] for y in train_y], 1)
        for row, x in zip(predicted, test_x, strict=True):
            row[name] = float(intercept + slope * x[name])
    return predicted


def synthesise_all(bundle: Path, test_pairs, source: str = "T1w") -> tuple[list[np.ndarray], float]:
    """One bundle's synthetic SUVR of every held-out scan, and its CPU seconds per subject
    (loading included, one thread); ``source`` is the input modality (``T1w`` or ``FDG``)."""
    torch.set_num_threads(1)
    start = time.process_time()
    synthesiser = load_synthesiser(bundle)
    predictions = [
        inference.infer(
            synthesiser.network, synthesiser.inferer, inference.prepare_file(pair.source, source)
        )
        for pair in test_pairs
    ]
    return predictions, (time.process_time() - start) / max(1, len(test_pairs))


def diagnoses(bids: Path | None) -> dict[str, str]:
    """participant -> diagnosis from the cohort's participants.tsv (empty without one)."""
    table = None if bids is None else bids / "participants.tsv"
    if table is None or not table.is_file():
        return {}
    frame = pd.read_csv(table, sep="\t", dtype=str)
    if "diagnosis" not in frame:
        return {}
    return dict(zip(frame["participant_id"], frame["diagnosis"], strict=True))


def classifier_check(bundle: Path, images: dict, test_pairs, test_bids: Path | None) -> dict:
    """Seed 002's check that synthetic tau keeps the diagnosis: one AD-vs-CN classifier on the
    measured and on each synthetic image of the same held-out scans. Per image set: accuracy on
    the AD and CN scans (MCI and others left out, as in the classification benchmark) and how
    often its label agrees with the measured image's (all scans)."""
    from taupet_bids.classification import inference as classify
    from taupet_bids.classification import preprocessing as grid
    from taupet_bids.classification.bundle import load_classifier

    classifier = load_classifier(bundle)
    labels = diagnoses(test_bids)
    known = [labels.get(pair.participant) for pair in test_pairs]

    def label(image: np.ndarray) -> str:
        prepared = torch.from_numpy(grid.network_input(image))[None, None]
        probability = classify.infer(classifier.network, classifier.inferer, prepared)
        return "AD" if probability >= classifier.threshold else "CN"

    called = {name: [label(image) for image in found] for name, found in images.items()}
    reference = called["measured"]
    out = {}
    for name, calls in called.items():
        scored = [(c, k) for c, k in zip(calls, known, strict=True) if k in ("AD", "CN")]
        out[name] = {
            "n_ad_cn": len(scored),
            "n_ad": sum(k == "AD" for _, k in scored),
            "accuracy": (sum(c == k for c, k in scored) / len(scored)) if scored else None,
            "agrees_with_measured": sum(a == b for a, b in zip(calls, reference, strict=True))
            / len(calls),
        }
    return out


def evaluate(
    bundles: dict[str, Path],
    train_pairs,
    test_pairs,
    test_bids: Path,
    classifier=None,
    source: str = "T1w",
) -> dict:
    """Every number of the section; ``bundles`` maps a method's name to its trained bundle;
    ``classifier`` (an AD-vs-CN bundle) adds seed 002's diagnosis check; ``source`` is the
    task's input modality."""
    methods, cpu_s = {}, {}
    for name, bundle in bundles.items():
        methods[name], cpu_s[name] = synthesise_all(bundle, test_pairs, source)
    truth = truth_images(test_pairs)
    train_truth = truth_images(train_pairs)
    cohort_mean = np.mean(train_truth, axis=0).astype(np.float32)
    methods["cohort mean"] = [cohort_mean] * len(truth)
    oracles = [oracle_image(test_bids, pair) for pair in test_pairs]
    voxel = {name: score(images, truth) for name, images in methods.items()}
    if oracles and all(o is not None for o in oracles):
        voxel["oracle (blurred truth)"] = score(oracles, truth)
    measured = [_composites(t) for t in truth]
    blurred = [blurred_truth_composites(test_bids, pair) for pair in test_pairs]
    regional = []
    for name, images in methods.items():
        composites = [_composites(image) for image in images]
        regional += regional_rows(name, composites, measured, "measured")
        if all(b is not None for b in blurred):
            regional += regional_rows(name, composites, blurred, "blurred truth")
    linear = regional_linear(train_pairs, train_truth, test_pairs, source)
    regional += regional_rows(LINEAR, linear, measured, "measured")
    if all(b is not None for b in blurred):
        regional += regional_rows(LINEAR, linear, blurred, "blurred truth")
        regional += regional_rows("oracle (blurred truth)", blurred, measured, "measured")
    check = None
    if classifier is not None:
        synthetic = {k: v for k, v in methods.items() if k != "cohort mean"}
        check = classifier_check(classifier, {"measured": truth, **synthetic}, test_pairs,
                                 test_bids)  # fmt: skip
    return {
        "n_train": len(train_pairs),
        "n_test": len(test_pairs),
        "classifier_check": check,
        "cpu_seconds_per_subject": cpu_s,
        "voxel": {k: {m: v[m] for m in ("mse", "psnr_db", "ssim", "n")} for k, v in voxel.items()},
        "regional": regional,
    }


def _number(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def classifier_lines(check: dict | None) -> list[str]:
    """The seed-002 diagnosis check as a table (nothing when it was not run)."""
    if not check:
        return []
    lines = [
        "", "Does the synthetic tau keep the diagnosis? (seed 002's check) The shipped AD-vs-CN "
        "classifier (`--classifier`) on the measured image and on each synthetic image of the "
        "same held-out scans, all brain-masked the same way; MCI scans count only in the "
        "agreement column. With no AD scan (or no CN scan) the accuracy only says that one "
        "label was kept.", "",
        "| image | AD scans | CN scans | accuracy | label agrees with the measured image's |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in check.items():
        n_ad = row.get("n_ad")
        n_cn = "n/a" if n_ad is None else row["n_ad_cn"] - n_ad
        lines.append(
            f"| {name} | {'n/a' if n_ad is None else n_ad} | {n_cn} | "
            f"{_number(row['accuracy'], 2)} | {row['agrees_with_measured']:.2f} |"
        )
    return lines


def render(args: argparse.Namespace, results: dict) -> str:
    start, end = markers(args.section)
    lines = [
        start, f"## {args.title}", "",
        "Produced by `benchmarks/synthesis.py` "
        f"({shlex.join(sys.argv[1:]) or 'defaults'}); measured {time.strftime('%Y-%m-%d')}. "
        f"{results['n_train']} training and {results['n_test']} held-out scans; networks "
        f"seeded {network_seed(args.task)} (docs/models.md §10). Training cohort: "
        f"`{results['cohorts']['train']}`; held-out cohort: `{results['cohorts']['test']}`. "
        "Voxel metrics inside the template brain mask on SUVR as it is (no per-volume "
        f"scaling), data range {synthesis_metrics.DATA_RANGE:g} SUVR for PSNR and 3-D SSIM "
        "(7-voxel window); the target is the app's measured template-space SUVR.", "",
        "| method | MSE | PSNR (dB) | SSIM | scans |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in results["voxel"].items():
        lines.append(
            f"| {name} | {_number(row['mse'], 4)} | {_number(row['psnr_db'], 2)} | "
            f"{_number(row['ssim'], 3)} | {row['n']} |"
        )
    lines += ["", "Regional composites across held-out scans: Pearson r, MAPE, and how much of "
              "each person's difference from the others is predicted (slope of predicted on "
              "measured SUVR, 1 follows the person and 0 is one value for all; spread ratio, "
              "SD of predicted / SD of measured). A high r with a slope near 0 ranks people "
              "by a sliver of signal; a low MAPE with a slope near 0 is a level, not the "
              "person.", "",
              "| method | against | composite | r | MAPE % | slope | spread ratio |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in results["regional"]:
        lines.append(
            f"| {row['method']} | {row['against']} | {row['composite']} | "
            f"{_number(row['r'], 3)} | {_number(row['mape_percent'], 1)} | "
            f"{_number(row.get('slope'), 3)} | {_number(row.get('spread_ratio'), 3)} |"
        )
    lines += classifier_lines(results.get("classifier_check"))
    seconds = ", ".join(f"{k} {v:.2f} s" for k, v in results["cpu_seconds_per_subject"].items())
    lines += [
        "", f"CPU time per subject (load and synthesise, one thread): {seconds}.", "",
        "The seeds' published figures, **theirs, on real data** and their own definitions "
        "(not comparable number for number):", "",
        "| source | MSE | PSNR (dB) | SSIM | regional | definition |", "|---|---|---|---|---|---|",
        *[f"| {' | '.join(row)} |" for row in PUBLISHED], end,
    ]  # fmt: skip
    return "\n".join(lines)


def ensure_cohorts(args: argparse.Namespace) -> None:
    """Simulate and run the training and held-out cohorts not given on the command line."""
    if args.train_derivatives is None:
        args.train_bids, args.train_derivatives = make_cohort(
            args.out, "train", args.n_train, TRAIN_SEED, args.anatomy
        )
    if args.test_derivatives is None:
        args.test_bids, args.test_derivatives = make_cohort(
            args.out, "test", args.n_test, TEST_SEED, args.anatomy
        )


def held_pairs(args: argparse.Namespace, task: str = "tau-from-t1w") -> tuple[list, list]:
    """The task's (input, SUVR) pairs of the training and held-out cohorts, ``--reconstruction``
    applied."""
    train_pairs, _ = find_pairs(
        [args.train_derivatives], args.out / "t1w_train", task=task,
        reconstruction=args.reconstruction,
    )  # fmt: skip
    test_pairs, _ = find_pairs(
        [args.test_derivatives], args.out / "t1w_test", task=task,
        reconstruction=args.reconstruction,
    )  # fmt: skip
    return train_pairs, test_pairs


def simulated_with(bids: Path | None) -> str:
    """The simulator command that made a cohort (its dataset_description), or n/a."""
    try:
        described = json.loads((bids / "dataset_description.json").read_text())
        return described["GeneratedBy"][0]["Description"]
    except (TypeError, OSError, KeyError, IndexError, ValueError):
        return "n/a"


def network_seed(task: str) -> int:
    """The seed of the task's network (split, weights, batches): its training default."""
    return TRAIN_SEED if task == "tau-from-t1w" else TRAINING[task].seed


def train_unet(args: argparse.Namespace) -> Path:
    """The task's 3-D network trained on the training cohort; its bundle."""
    extra = {}
    if args.channels and args.task == "tau-from-t1w":
        extra = {"channels": args.channels, "strides": args.strides, "num_res_units": 0}
    elif args.channels:
        extra = {"features": args.channels}
    config = TrainConfig(
        args.out / "training", [args.train_derivatives], task=args.task,
        seed=network_seed(args.task), steps=args.steps, reconstruction=args.reconstruction,
        threads=args.threads, checkpoint_every=max(1, min(50, args.steps)), **extra,
    )  # fmt: skip
    return export_trained_bundle(config, train(config), args.out / "bundle")


def train_vqgan(args: argparse.Namespace) -> Path:
    """MCR-VQGAN (2-D slices) trained on the same pairs and split; its bundle."""
    from taupet_bids.training import synthesis_vqgan, synthesis_vqgan_card

    extra = {"channels": args.vqgan_channels} if args.vqgan_channels else {}
    config = synthesis_vqgan.VQGANConfig(
        args.out / "training-vqgan", [args.train_derivatives], seed=TRAIN_SEED,
        steps=args.vqgan_steps, feature_steps=args.feature_steps, threads=args.threads,
        reconstruction=args.reconstruction, checkpoint_every=max(1, min(50, args.vqgan_steps)),
        **extra,
    )  # fmt: skip
    metrics = synthesis_vqgan.train(config)
    return synthesis_vqgan_card.export_trained_bundle(config, metrics, args.out / "bundle-vqgan")


#: Row names and trainers of the architectures the benchmark can train.
ARCHITECTURES = {"unet": ("U-Net", train_unet), "vqgan": ("MCR-VQGAN", train_vqgan)}


def bundles_to_score(args: argparse.Namespace) -> dict[str, Path]:
    """Each asked architecture's bundle: given with ``--bundle ARCH=PATH``, else trained."""
    given = dict(item.split("=", 1) for item in args.bundle)
    if args.task != "tau-from-t1w":
        if set(args.architectures) - {"unet"} or set(given) - {"unet"}:
            raise SystemExit(f"--task {args.task}: only its own network (unet) is trained here")
        name = NETWORK_NAMES[args.task]
        return {name: Path(given["unet"]) if "unet" in given else train_unet(args)}
    return {
        ARCHITECTURES[arch][0]: Path(given[arch]) if arch in given else ARCHITECTURES[arch][1](args)
        for arch in args.architectures
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/taupet-synthesis-bench"))
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--n-test", type=int, default=10)
    parser.add_argument("--anatomy", choices=("other", "template"), default="other")
    parser.add_argument("--task", choices=sorted(TASKS), default="tau-from-t1w")
    parser.add_argument("--train-derivatives", type=Path)
    parser.add_argument("--train-bids", type=Path, help="its dataset (for the report)")
    parser.add_argument("--test-derivatives", type=Path)
    parser.add_argument("--test-bids", type=Path)
    parser.add_argument(
        "--reconstruction", metavar="LABEL",
        help="only targets with this rec- label (ctac: the PET/CT of a cohort of PET/MR pairs)",
    )  # fmt: skip
    parser.add_argument(
        "--architectures",
        nargs="+",
        choices=sorted(ARCHITECTURES),
        default=None,
        help="tau-from-t1w: unet and vqgan (default both); other tasks: their own network only",
    )
    parser.add_argument(
        "--bundle", action="append", default=[], metavar="ARCH=PATH",
        help="score this trained bundle instead of training ARCH (unet or vqgan)",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--channels", type=int, nargs="+")
    parser.add_argument("--strides", type=int, nargs="+")
    parser.add_argument("--vqgan-steps", type=int, default=2000)
    parser.add_argument("--feature-steps", type=int, default=200)
    parser.add_argument("--vqgan-channels", type=int, nargs="+")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads for training")
    parser.add_argument(
        "--classifier", type=Path, help="an AD-vs-CN bundle: adds seed 002's diagnosis check"
    )
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument(
        "--section", help="section name in the report (default: the task's); also names the results"
    )
    parser.add_argument("--title", help="the section's heading (default: the task's)")
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    if args.architectures is None:
        args.architectures = ["unet", "vqgan"] if args.task == "tau-from-t1w" else ["unet"]
    args.section = args.section or SECTIONS[args.task][0]
    args.title = args.title or SECTIONS[args.task][1]
    args.results = args.results or results_path(args.section)
    templates.ensure_templateflow()
    ensure_cohorts(args)
    bundles = bundles_to_score(args)
    train_pairs, test_pairs = held_pairs(args, args.task)
    classifier = args.classifier if TASKS[args.task].target == "tau" else None
    results = evaluate(
        bundles, train_pairs, test_pairs, args.test_bids or args.test_derivatives, classifier,
        TASKS[args.task].source,
    )  # fmt: skip
    results["cohorts"] = {
        "train": simulated_with(args.train_bids), "test": simulated_with(args.test_bids)
    }  # fmt: skip
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, default=float) + "\n")
    update_report(args.report, render(args, results), *markers(args.section))
    print(f"wrote {args.results} and the {args.section} section of {args.report}")


if __name__ == "__main__":
    main()
