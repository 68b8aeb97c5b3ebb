"""Metadata and model card of a trained AD-vs-CN classifier, written from its own training run.

The card is rendered from the bundle's metadata alone (:func:`render_card`), so a bundle's card
can be checked against its metadata.
"""

from __future__ import annotations

from pathlib import Path

from taupet_bids.classification import preprocessing
from taupet_bids.classification.bundle import CONFIGS
from taupet_bids.classification.inference import MASK_VOXELS, OCCLUDER_SUVR, VOXEL_MM
from taupet_bids.classification.networks import CHANNELS, CLASSES, DROPOUT, HIDDEN
from taupet_bids.training import engine
from taupet_bids.training.classifier import TrainConfig

MODEL_VERSION = "0.2.1"
CHANGELOG = {
    "0.1.0": "first release: Conv5_FC3-style CNN on 4 mm template-space SUVR",
    "0.2.0": "input masked to the template brain (0.1.0 read extra-cerebral uptake and called "
    "every brain-masked scan AD); retrained on the same data with the same seed, steps and "
    "learning rate, at the training command's default width (channels 8-128; 0.1.0 had 4-64)",
    "0.2.1": "weights unchanged; configs/inference.json also writes an integrated-gradients "
    "attribution map (the occlusion maps of 0.2.0 were at chance level)",
}

CARD = """# AD vs CN tau PET classifier, version {version}

**What it does.** Gives the probability that a template-space tau SUVR image
(`*_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz`, averaged to 4 mm and clipped to SUVR
0-{suvr_max:g}) comes from a person with Alzheimer's disease dementia (AD) rather than a
cognitively normal one (CN), labels it AD at P(AD) >= {threshold:g}, and explains it with an
occlusion-sensitivity map (the drop in P(AD) when a {mask_mm} mm cube is set to SUVR
{occluder:g}, reference-level uptake) and an attribution map (integrated gradients of the AD
log-odds from the brain at SUVR {occluder:g}), each summarised per Desikan-Killiany region and
Braak stage.
Network: {network}.

**Training data.** {data}

**Validation.** P(AD) >= {threshold:g} on held-out participants (never the training
participants' scans), beside the baseline: meta-temporal SUVR with the cut-point
(SUVR {cutpoint}) that best separates the training scans.

| set | method | accuracy | sensitivity | specificity | ROC AUC | AD scans | CN scans |
|---|---|---|---|---|---|---|---|
{rows}

Point estimates on this run's own held-out participants. Intervals, cohorts the run never
saw and the maps' check: `benchmarks/classification.py` (taupet-bids docs/benchmarks.md).

**Intended use.** Research on tau PET: which scans look like AD to a CNN, and which regions made
it say so. Not for clinical use, not for MCI (left out of training: {left_out}).

**Training run.** `{command}` ({steps} steps, batch {batch}, {machine}; losses in
`training_log.tsv`, the split in `split.tsv` of the run folder). Weights: `models/model.pt`
(sha256 in `configs/metadata.json`, checked on load).

**Running it without taupet-bids' pipeline** (MONAI's bundle runner, which needs `fire`):

```
python -m monai.bundle run --config_file BUNDLE/configs/inference.json \\
    --meta_file BUNDLE/configs/metadata.json --bundle_root BUNDLE \\
    --input_file SUVR.nii.gz --output_dir OUT [--num_threads 1]
```

writes `<scan>_desc-ADvsCN_classification.json` (P(AD), label, threshold, top regions),
`<scan>_space-MNI152NLin6Asym_res-2_desc-occlusion_map.nii.gz`,
`<scan>_space-MNI152NLin6Asym_res-2_desc-attribution_map.nii.gz` and their regional tables
(`..._desc-occlusion_regions.tsv`, `..._desc-attribution_regions.tsv`).
"""


def _data_description(config: dict, counts: dict) -> str:
    scans = counts["scans"]
    return (
        f"Template-space SUVR images of {', '.join(config['derivatives'])} with diagnoses from "
        f"{config['bids_dir']} (participants.tsv, or sessions.tsv per visit): "
        f"{scans['train']} training, {scans['validation']} validation and {scans['test']} test "
        "scans, split 80/10/10 by participant within each diagnosis. "
        + engine.data_statement(config.get("data_statement"))
    )


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _rows(metrics: dict) -> str:
    rows = []
    for name in ("validation", "test"):
        for method, key in (("CNN", name), ("meta-temporal SUVR", f"{name}_baseline")):
            m = metrics[key]
            values = [_number(m[k]) for k in ("accuracy", "sensitivity", "specificity", "auc")]
            rows.append(f"| {name} | {method} | {' | '.join(values)} | {m['n_AD']} | {m['n_CN']} |")
    return "\n".join(rows)


def _command(config: dict) -> str:
    parts = [
        "taupet-bids-train classifier",
        " ".join(config["derivatives"]),
        f"--bids-dir {config['bids_dir']}",
        f"--seed {config['seed']} --steps {config['steps']}",
        f"--batch-size {config['batch_size']} --learning-rate {config['learning_rate']:g}",
    ]
    if config.get("architecture_name", "conv5fc3") != "conv5fc3":
        parts.append(f"--architecture {config['architecture_name']}")
    if list(config["channels"]) != list(CHANNELS):
        parts.append("--channels " + " ".join(map(str, config["channels"])))
    if list(config["hidden"]) != list(HIDDEN):
        parts.append("--hidden " + " ".join(map(str, config["hidden"])))
    if config["dropout"] != DROPOUT:
        parts.append(f"--dropout {config['dropout']:g}")
    if config.get("label_smoothing"):
        parts.append(f"--label-smoothing {config['label_smoothing']:g}")
    if config.get("data_statement"):
        parts.append(f"--data-statement '{config['data_statement']}'")
    return " ".join(parts)


def _network_name(architecture: dict) -> str:
    return (
        "MONAI DenseNet (3-D)"
        if architecture.get("name") == "densenet"
        else "Conv5_FC3-style 3-D CNN"
    )


def _network(architecture: dict) -> str:
    """The network's name and size, for the card."""
    if architecture.get("name") == "densenet":
        return (
            f"{_network_name(architecture)}, {architecture['init_features']} initial features, "
            f"growth rate {architecture['growth_rate']}, dense blocks of "
            f"{'-'.join(map(str, architecture['block_config']))} layers, dropout "
            f"{architecture['dropout_prob']:g}"
        )
    return (
        f"{_network_name(architecture)}, channels "
        f"{' -> '.join(map(str, architecture['channels']))}, "
        f"fully connected {' -> '.join(map(str, [*architecture['hidden'], len(CLASSES)]))}, "
        f"dropout {architecture['dropout']:g}"
    )


def metadata(config: TrainConfig, metrics: dict) -> dict:
    """The bundle metadata of a training run (write_bundle adds checksum, versions, machine)."""
    counts = {"scans": metrics["scans"], "left_out": metrics["left_out"]}
    return {
        "version": MODEL_VERSION,
        "changelog": CHANGELOG,
        "name": "taupet-bids AD vs CN tau PET classifier",
        "task": "Classification of template-space tau SUVR images as AD or CN",
        "description": f"{_network_name(config.architecture())} on 4 mm SUVR, with "
        "occlusion sensitivity and integrated-gradients attribution.",
        "authors": "taupet-bids developers",
        "copyright": "taupet-bids developers, Apache-2.0",
        "data_source": _data_description(config.to_json(), counts),
        "data_type": "nibabel",
        "intended_use": "Research on tau PET; not clinical use.",
        "limitations": "Trained on the dataset named in data_source only; not for MCI.",
        "eval_metrics": metrics,
        "references": [
            "Wen et al. 2020, Convolutional neural networks for classification of Alzheimer's "
            "disease: overview and reproducible evaluation (ClinicaDL, Conv5_FC3)",
            "Zeiler and Fergus 2014, Visualizing and understanding convolutional networks "
            "(occlusion sensitivity)",
        ],
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": "PT",
                    "num_channels": 1,
                    "spatial_shape": list(preprocessing.INPUT_SHAPE),
                    "dtype": "float32",
                    "value_range": [0, preprocessing.SUVR_MAX],
                    "is_patch_data": False,
                    "channel_def": {"0": "SUVR, MNI152NLin6Asym averaged to 4 mm"},
                }
            },
            "outputs": {
                "pred": {
                    "type": "probabilities",
                    "format": "classes",
                    "num_channels": len(CLASSES),
                    "spatial_shape": [],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {str(i): name for i, name in enumerate(CLASSES)},
                }
            },
        },
        "taupet_bids": {
            "training_config": config.to_json(),
            "architecture": config.architecture(),
            "threshold": config.threshold,
        },
    }


def render_card(metadata: dict) -> str:
    """The model card (the bundle's docs/README.md) from the bundle's metadata."""
    ours = metadata["taupet_bids"]
    config, metrics = ours["training_config"], metadata["eval_metrics"]
    architecture = ours["architecture"]
    left_out = ", ".join(f"{n} {d}" for d, n in metrics["left_out"].items()) or "none"
    return CARD.format(
        version=metadata["version"],
        suvr_max=preprocessing.SUVR_MAX,
        threshold=ours["threshold"],
        mask_mm=MASK_VOXELS * VOXEL_MM,
        occluder=OCCLUDER_SUVR,
        network=_network(architecture),
        data=metadata["data_source"],
        cutpoint=metrics["metatemporal_cutpoint"],
        rows=_rows(metrics),
        left_out=left_out,
        command=_command(config),
        steps=config["steps"],
        batch=config["batch_size"],
        machine=ours["machine"],
    )


def export_trained_bundle(config: TrainConfig, metrics: dict, out_dir: Path) -> Path:
    """Write the bundle of the run in ``config.out_dir`` (weights, metadata, model card)."""
    return engine.write_bundle(
        out_dir, config.out_dir / "model.pt", metadata(config, metrics), render_card, CONFIGS
    )
