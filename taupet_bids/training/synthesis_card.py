"""Metadata and model card of a trained synthesis bundle, written from its own training run.

The card is rendered from the bundle's metadata alone (:func:`render_card`), so a bundle's card
can be checked against its metadata.
"""

from __future__ import annotations

from pathlib import Path

from taupet_bids.core.synthesis_metrics import DATA_RANGE
from taupet_bids.synthesis import preprocessing
from taupet_bids.synthesis.bundle import CONFIGS
from taupet_bids.synthesis.networks import TASKS
from taupet_bids.training import engine
from taupet_bids.training.synthesis import TrainConfig
from taupet_bids.training.synthesis_tasks import TRAINING

MODEL_VERSION = "0.1.0"
CHANGELOG = {
    "tau-from-t1w": {
        "0.1.0": "first release: 3-D residual U-Net (MONAI UNet), T1w -> tau SUVR at 4 mm"
    },
    "tau-from-fdg": {"0.1.0": "first release: 3-D Dense-U-Net, FDG SUVR -> tau SUVR at 4 mm"},
    "tspo-from-t1w": {
        "0.1.0": "first release: separable 3-D U-Net with attention, T1w -> TSPO SUVR at 4 mm"
    },
}

#: What the network reads, by input modality.
INPUT_WORDS = {
    "T1w": "a T1w in template space (MNI152NLin6Asym 2 mm; brain-masked, divided by its brain "
    "median, clipped to 0-{t1w_max:g}, averaged to 4 mm)",
    "FDG": "an FDG SUVR image in template space (MNI152NLin6Asym 2 mm, reference {source_ref}; "
    "brain-masked, clipped to SUVR 0-{suvr_max:g}, not rescaled, averaged to 4 mm)",
}
#: How MONAI's runner is given the input, by input modality.
RUNNER_INPUT = {
    "T1w": "T1W_IN_TEMPLATE_SPACE.nii.gz",
    "FDG": "FDG_SUVR_IN_TEMPLATE_SPACE.nii.gz",
}

CARD = """# {title}, version {version}

**What it does.** Predicts a {target} SUVR image ({tracer}, reference {reference}) from
{input_words}. The prediction is made at 4 mm and brought back to 2 mm by trilinear
interpolation. Outputs are named **synthetic** (`desc-{desc}`) and never mixed with measured
values ({pipeline}).
Network: {network_words}; output offset by SUVR 1.

**Training data.** {data}

**Validation.** Held-out participants (never the training participants' scans), beside the
baseline: the cohort-mean image (the voxelwise mean SUVR of the training targets). Voxel metrics
inside the template brain mask on SUVR as it is (no per-volume scaling), data range
{data_range:g} SUVR for PSNR and SSIM (3-D, 7-voxel window); regional: Pearson r, MAPE and slope
(least squares of predicted on measured: 1 follows the person, 0 is one value for all) of the
meta-temporal mean SUVR across held-out scans.

| set | method | MSE | PSNR (dB) | SSIM | meta-temporal r | MAPE % | slope | scans |
|---|---|---|---|---|---|---|---|---|
{rows}

Point estimates on this run's own held-out participants only; cohorts the run never saw,
beside the cohort mean and an oracle: `benchmarks/synthesis.py` (taupet-bids
docs/benchmarks.md).

**Intended use.** Research: what {source} alone says about {target}, and a clearly labelled
stand-in where no {target} PET was acquired. Not for clinical use; not a measurement.

**Training run.** `{command}` ({steps} steps, batch {batch}, {loss} loss, {machine}; losses in
`training_log.tsv`, the split in `split.tsv` of the run folder). Weights: `models/model.pt`
(sha256 in `configs/metadata.json`, checked on load).

**Running it without taupet-bids' pipeline** (MONAI's bundle runner, which needs `fire`):

```
python -m monai.bundle run --config_file BUNDLE/configs/inference.json \\
    --meta_file BUNDLE/configs/metadata.json --bundle_root BUNDLE \\
    --input_file {runner_input} --output_dir OUT [--num_threads 1]
```

writes `<input entities>_trc-{tracer}_space-MNI152NLin6Asym_res-2_desc-{desc}_pet.nii.gz`
and its JSON sidecar (`"Synthetic": true`, the model, its version and checksum).
"""

#: The pipeline sentence of the card, by task.
PIPELINE = {
    "tau-from-t1w": "`taupet-bids ... --synthesize tau-from-t1w --synthesis-model BUNDLE` runs it "
    "for every session with a T1w and writes the image and its regional tables",
    "tspo-from-t1w": "`taupet-bids ... --synthesize tspo-from-t1w --synthesis-model BUNDLE` runs "
    "it for every session with a T1w and writes the image and its regional tables",
    "tau-from-fdg": "`taupet-bids ... --tracer FDG --synthesize tau-from-fdg --synthesis-model "
    "BUNDLE` runs it on every FDG scan's template-space SUVR and writes the image and its "
    "regional tables",
}


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _rows(metrics: dict, network: str = "network", extra: tuple = ()) -> str:
    """The card's table rows; ``slope`` is absent from the metrics of bundles before 2026-12-06
    and shows as n/a. ``extra``: more (method, key suffix) rows between network and baseline."""
    rows = []
    for name in ("validation", "test"):
        others = [(method, f"{name}{suffix}") for method, suffix in extra]
        for method, key in ((network, name), *others, ("cohort mean", f"{name}_baseline")):
            m = metrics.get(key)
            if not m:
                rows.append(f"| {name} | {method} | n/a | n/a | n/a | n/a | n/a | n/a | 0 |")
                continue
            meta = m["regional"]["MetaTemporal:metatemporal"]
            values = [
                _number(m["mse"], 4),
                _number(m["psnr_db"], 2),
                _number(m["ssim"]),
                _number(meta["r"]),
                _number(meta["mape_percent"], 1),
                _number(meta.get("slope")),
            ]
            rows.append(f"| {name} | {method} | {' | '.join(values)} | {m['n']} |")
    return "\n".join(rows)


#: Command-line option of each architecture field, as ``taupet-bids-train synthesis`` has it.
OPTIONS = {
    "channels": "--channels", "strides": "--strides", "num_res_units": "--num-res-units",
    "features": "--features", "growth": "--growth", "layers": "--dense-layers",
    "heads_channels": "--heads-channels",
}  # fmt: skip


def _command(config: dict, architecture: dict) -> str:
    parts = [
        "taupet-bids-train synthesis",
        " ".join(config["derivatives"]),
        f"--task {config['task']} --seed {config['seed']} --steps {config['steps']}",
        f"--batch-size {config['batch_size']} --learning-rate {config['learning_rate']:g}",
        f"--loss {config['loss']}",
    ]
    for key, value in architecture.items():
        words = " ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{OPTIONS[key]} {words}")
    return " ".join(parts)


def _input_format(task: str) -> dict:
    t1w = TASKS[task].source == "T1w"
    return {
        "type": "image",
        "format": "magnitude",
        "modality": "MR" if t1w else "PT",
        "num_channels": 1,
        "spatial_shape": list(preprocessing.INPUT_SHAPE),
        "dtype": "float32",
        "value_range": [0, preprocessing.T1W_MAX if t1w else preprocessing.SUVR_MAX],
        "is_patch_data": False,
        "channel_def": {
            "0": "T1w / brain median, MNI152NLin6Asym at 4 mm"
            if t1w
            else "FDG SUVR, MNI152NLin6Asym at 4 mm"
        },
    }


def metadata(config: TrainConfig, metrics: dict) -> dict:
    """The bundle metadata of a training run (write_bundle adds checksum, versions, machine)."""
    task = TASKS[config.task]
    training = TRAINING[config.task]
    return {
        "version": MODEL_VERSION,
        "changelog": CHANGELOG[task.name],
        "name": f"taupet-bids {training.title[0].lower()}{training.title[1:]}",
        "task": f"Synthesis of template-space {task.target} SUVR from a template-space "
        f"{task.source}",
        "description": f"{training.title}: {task.source} at 4 mm in, {task.target} SUVR out.",
        "authors": "taupet-bids developers",
        "copyright": "taupet-bids developers, Apache-2.0",
        "data_source": (
            f"({task.source}, {task.target} SUVR) pairs of "
            f"{', '.join(map(str, config.derivatives))}: "
            f"{metrics['scans']['train']} training, {metrics['scans']['validation']} validation "
            f"and {metrics['scans']['test']} test scans, split 80/10/10 by participant. "
            + engine.data_statement(config.data_statement)
        ),
        "data_type": "nibabel",
        "intended_use": "Research; a labelled synthetic stand-in, not a measurement.",
        "limitations": "Trained on the dataset named in data_source only; one tracer.",
        "eval_metrics": metrics,
        "references": list(training.references),
        "network_data_format": {
            "inputs": {"image": _input_format(task.name)},
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "magnitude",
                    "num_channels": 1,
                    "spatial_shape": list(preprocessing.INPUT_SHAPE),
                    "dtype": "float32",
                    "value_range": [0, preprocessing.SUVR_MAX],
                    "is_patch_data": False,
                    "channel_def": {"0": f"synthetic {task.target} SUVR"},
                }
            },
        },
        "taupet_bids": {
            "training_config": config.to_json(),
            "architecture": config.architecture(),
            "task": task.name,
            "source": task.source,
            "desc": task.desc,
            "target": metrics["target"],
            "source_image": metrics["source"],
        },
    }


def render_card(metadata: dict) -> str:
    """The model card (the bundle's docs/README.md) from the bundle's metadata."""
    ours = metadata["taupet_bids"]
    config, metrics, architecture = (
        ours["training_config"],
        metadata["eval_metrics"],
        ours["architecture"],
    )
    task, training = TASKS[ours["task"]], TRAINING[ours["task"]]
    words = {key: _words(value) for key, value in architecture.items()}
    source_refs = ours.get("source_image", {}).get("reference_regions") or ["n/a"]
    return CARD.format(
        title=training.title,
        version=metadata["version"],
        target=task.target,
        source=f"a {task.source}" if task.source == "T1w" else "an FDG PET",
        tracer=ours["target"]["tracer"],
        reference=ours["target"].get("reference_region") or "n/a",
        input_words=INPUT_WORDS[task.source].format(
            t1w_max=preprocessing.T1W_MAX, suvr_max=preprocessing.SUVR_MAX,
            source_ref=", ".join(source_refs),
        ),
        desc=task.desc,
        pipeline=PIPELINE[task.name],
        network_words=training.network_words.format(**words),
        data=metadata["data_source"],
        data_range=DATA_RANGE,
        rows=_rows(metrics),
        command=_command(config, architecture),
        steps=config["steps"],
        batch=config["batch_size"],
        loss=config["loss"].upper(),
        machine=ours["machine"],
        runner_input=RUNNER_INPUT[task.source],
    )  # fmt: skip


def _words(value) -> str:
    return " -> ".join(map(str, value)) if isinstance(value, list) else str(value)


def export_trained_bundle(config: TrainConfig, metrics: dict, out_dir: Path) -> Path:
    """Write the bundle of the run in ``config.out_dir`` (weights, metadata, model card)."""
    return engine.write_bundle(
        out_dir, config.out_dir / "model.pt", metadata(config, metrics), render_card,
        CONFIGS[config.task],
    )  # fmt: skip
