"""Metadata and model card of a trained synthesis bundle, written from its own training run.

The card is rendered from the bundle's metadata alone (:func:`render_card`), so a bundle's card
can be checked against its metadata.
"""

from __future__ import annotations

from pathlib import Path

from taupet_bids.core.synthesis_metrics import DATA_RANGE
from taupet_bids.synthesis import preprocessing
from taupet_bids.synthesis.bundle import CONFIGS
from taupet_bids.synthesis.networks import CHANNELS, RESIDUAL_UNITS, STRIDES, TASKS
from taupet_bids.training import engine
from taupet_bids.training.synthesis import TrainConfig

MODEL_VERSION = "0.1.0"
CHANGELOG = {"0.1.0": "first release: 3-D residual U-Net (MONAI UNet), T1w -> tau SUVR at 4 mm"}

CARD = """# Synthetic tau PET from T1w (3-D U-Net), version {version}

**What it does.** Predicts a tau SUVR image ({tracer}, reference {reference}) from a T1w in
template space (MNI152NLin6Asym 2 mm; brain-masked, divided by its brain median, clipped to
0-{t1w_max:g}, averaged to 4 mm). The prediction is made at 4 mm and brought back to 2 mm by
trilinear interpolation. `taupet-bids ... --synthesize tau-from-t1w --synthesis-model BUNDLE`
runs it for every session with a T1w and writes a **synthetic** image
(`desc-syntheticFromT1w`) and its regional tables, never mixed with measured values.
Network: MONAI's residual UNet, channels {channels}, strides {strides}, {res_units} residual
unit(s) per level, instance norm; output offset by SUVR 1.

**Training data.** {data}

**Validation.** Held-out participants (never the training participants' scans), beside the
baseline: the cohort-mean image (the voxelwise mean SUVR of the training targets). Voxel metrics
inside the template brain mask on SUVR as it is (no per-volume scaling), data range
{data_range:g} SUVR for PSNR and SSIM (3-D, 7-voxel window); regional: Pearson r and MAPE of the
composite's mean SUVR across held-out scans.

| set | method | MSE | PSNR (dB) | SSIM | meta-temporal r | meta-temporal MAPE % | scans |
|---|---|---|---|---|---|---|---|
{rows}

Point estimates only; the benchmark (docs/benchmarks.md) has more subjects and the oracle.

**Intended use.** Research: what a T1w alone says about tau, and a clearly labelled stand-in
where no tau PET was acquired. Not for clinical use; not a measurement. Atrophy predicts tau only
partly, so a synthetic image mostly shows the tau a person's anatomy suggests.

**Training run.** `{command}` ({steps} steps, batch {batch}, {loss} loss, {machine}; losses in
`training_log.tsv`, the split in `split.tsv` of the run folder). Weights: `models/model.pt`
(sha256 in `configs/metadata.json`, checked on load).

**Running it without taupet-bids' pipeline** (MONAI's bundle runner, which needs `fire`):

```
python -m monai.bundle run --config_file BUNDLE/configs/inference.json \\
    --meta_file BUNDLE/configs/metadata.json --bundle_root BUNDLE \\
    --input_file T1W_IN_TEMPLATE_SPACE.nii.gz --output_dir OUT [--num_threads 1]
```

writes `<t1w entities>_trc-{tracer}_space-MNI152NLin6Asym_res-2_desc-syntheticFromT1w_pet.nii.gz`
and its JSON sidecar (`"Synthetic": true`, the model, its version and checksum).
"""


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _rows(metrics: dict) -> str:
    rows = []
    for name in ("validation", "test"):
        for method, key in (("U-Net", name), ("cohort mean", f"{name}_baseline")):
            m = metrics.get(key)
            if not m:
                rows.append(f"| {name} | {method} | n/a | n/a | n/a | n/a | n/a | 0 |")
                continue
            meta = m["regional"]["MetaTemporal:metatemporal"]
            values = [
                _number(m["mse"], 4),
                _number(m["psnr_db"], 2),
                _number(m["ssim"]),
                _number(meta["r"]),
                _number(meta["mape_percent"], 1),
            ]
            rows.append(f"| {name} | {method} | {' | '.join(values)} | {m['n']} |")
    return "\n".join(rows)


def _command(config: dict) -> str:
    parts = [
        "taupet-bids-train synthesis",
        " ".join(config["derivatives"]),
        f"--task {config['task']} --seed {config['seed']} --steps {config['steps']}",
        f"--batch-size {config['batch_size']} --learning-rate {config['learning_rate']:g}",
        f"--loss {config['loss']}",
    ]
    if list(config["channels"]) != list(CHANNELS):
        parts.append("--channels " + " ".join(map(str, config["channels"])))
    if list(config["strides"]) != list(STRIDES):
        parts.append("--strides " + " ".join(map(str, config["strides"])))
    if config["num_res_units"] != RESIDUAL_UNITS:
        parts.append(f"--num-res-units {config['num_res_units']}")
    return " ".join(parts)


def metadata(config: TrainConfig, metrics: dict) -> dict:
    """The bundle metadata of a training run (write_bundle adds checksum, versions, machine)."""
    task = TASKS[config.task]
    return {
        "version": MODEL_VERSION,
        "changelog": CHANGELOG,
        "name": "taupet-bids synthetic tau PET from T1w (3-D U-Net)",
        "task": "Synthesis of template-space tau SUVR from a template-space T1w",
        "description": "MONAI residual 3-D UNet on 4 mm template-space T1w, predicting SUVR.",
        "authors": "taupet-bids developers",
        "copyright": "taupet-bids developers, Apache-2.0",
        "data_source": (
            f"(T1w, SUVR) pairs of {', '.join(map(str, config.derivatives))}: "
            f"{metrics['scans']['train']} training, {metrics['scans']['validation']} validation "
            f"and {metrics['scans']['test']} test scans, split 80/10/10 by participant. Whether "
            "any real person's image was used depends on that dataset: say so when you publish "
            "a bundle."
        ),
        "data_type": "nibabel",
        "intended_use": "Research; a labelled synthetic stand-in, not a measurement.",
        "limitations": "Trained on the dataset named in data_source only; one tracer.",
        "eval_metrics": metrics,
        "references": [
            "Kerfoot et al. 2019, Left-ventricle quantification using residual U-Net (MONAI UNet)",
            "Ronneberger et al. 2015, U-Net",
        ],
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": "MR",
                    "num_channels": 1,
                    "spatial_shape": list(preprocessing.INPUT_SHAPE),
                    "dtype": "float32",
                    "value_range": [0, preprocessing.T1W_MAX],
                    "is_patch_data": False,
                    "channel_def": {"0": "T1w / brain median, MNI152NLin6Asym at 4 mm"},
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "magnitude",
                    "num_channels": 1,
                    "spatial_shape": list(preprocessing.INPUT_SHAPE),
                    "dtype": "float32",
                    "value_range": [0, preprocessing.SUVR_MAX],
                    "is_patch_data": False,
                    "channel_def": {"0": "synthetic SUVR"},
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
    return CARD.format(
        version=metadata["version"],
        tracer=ours["target"]["tracer"],
        reference=ours["target"].get("reference_region") or "n/a",
        t1w_max=preprocessing.T1W_MAX,
        channels=" -> ".join(map(str, architecture["channels"])),
        strides=", ".join(map(str, architecture["strides"])),
        res_units=architecture["num_res_units"],
        data=metadata["data_source"],
        data_range=DATA_RANGE,
        rows=_rows(metrics),
        command=_command(config),
        steps=config["steps"],
        batch=config["batch_size"],
        loss=config["loss"].upper(),
        machine=ours["machine"],
    )


def export_trained_bundle(config: TrainConfig, metrics: dict, out_dir: Path) -> Path:
    """Write the bundle of the run in ``config.out_dir`` (weights, metadata, model card)."""
    return engine.write_bundle(
        out_dir, config.out_dir / "model.pt", metadata(config, metrics), render_card,
        CONFIGS[config.task],
    )  # fmt: skip
