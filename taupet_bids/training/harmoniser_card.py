"""Metadata and model card of a trained PET-MR harmoniser, written from its own training run.

The card is rendered from the bundle's metadata alone (:func:`render_card`), so a bundle's card
can be checked against its metadata.
"""

from __future__ import annotations

from pathlib import Path

from taupet_bids.harmonisation import preprocessing
from taupet_bids.harmonisation.bundle import CONFIGS
from taupet_bids.harmonisation.networks import BOUND, CHANNELS
from taupet_bids.training import engine
from taupet_bids.training.harmoniser import TrainConfig
from taupet_bids.training.harmoniser_data import TARGET_SIGMA_MM

MODEL_VERSION = "0.3.0"
CHANGELOG = {
    "0.1.0": "first release: coarse bounded log-ratio field with a pseudo-CT head",
    "0.2.0": "trained with PET-CT inputs at a zero target too (--identity-fraction) and on "
    "regional means besides voxels (--region-weight); the pseudo-CT head works voxel by voxel "
    "on projected deep features, which made training steps several times faster; an optional "
    "MR-AC gate (--gate-weight, off by default)",
    "0.3.0": "told from each scan's sidecar whether its AC was CT-based (zero correction) or "
    "MR-based (--conditioning ct; 'method': a correction per MR method; 'none': 0.2.0's "
    "design); no PET-CT examples by default; the gate, which stayed at chance, removed",
}

CONDITIONING = {
    "ct": "told whether the scan's attenuation correction was CT-based, as its sidecar says: "
    "one field for every MR-based method, a zero field for CT- or transmission-based AC.",
    "method": "told the scan's attenuation correction method, as its sidecar names it: one "
    "field output per MR-based method (Dixon, atlas, UTE, and `mr` for any other, trained on "
    "all three), and a zero field for CT- or transmission-based AC.",
    "none": "not told the attenuation correction method: one field for every scan.",
}

CARD = """# PET-MR to PET-CT harmoniser, version {version}

**What it does.** Predicts, from a PET/MR scan's template-space SUVR image and the subject's
T1w in template space (both averaged to 4 mm), a smooth log-ratio field `f` such that
`SUVR x exp(f)` approximates the SUVR the same scan would have had with CT-based attenuation
correction. The field is predicted on a 16 mm grid, interpolated trilinearly, and bounded to
|f| <= {bound:g} (a factor of at most {factor:.3f}); its last layer starts at zero, so an untrained
network changes nothing. An auxiliary head predicts a pseudo-CT, trained against the CT;
it is not used at inference, and no CT is needed to run the model.
Network: channels {channels}; {conditioning}

**Training data.** {data}

**Validation.** Mean absolute residual between the PET-CT and the PET-MR SUVR inside the
template brain (voxelwise, after smoothing both with a {sigma:g} mm Gaussian), before and after
harmonisation, on held-out participants; the same over the regions' means (Desikan-Killiany
grey-matter regions, Braak I-VI, meta-temporal), each scan told its own AC method and all told
`mr` (an MR-based method the sidecar does not name); and how much the network moves the PET-CT
image of the same visit (mean absolute change inside the brain), told CT-based AC / told `mr`
(a sidecar that wrongly says MR-based). Training showed it PET-CT images with a zero
target in {identity:.0%} of the examples. The regional benchmark with its baselines (one
global scale factor, a per-region linear calibration) is `benchmarks/harmonisation.py`.

| set | pairs | voxels: before / after (%) | regions: before / after / told mr (%) | PET-CT moved |
|---|---|---|---|---|
{rows}

**Intended use.** Research: pooling tau PET from PET/MR and PET-CT sites. Not for clinical use.
Trained on simulated attenuation bias only (see data); a real PET/MR's bias may differ.

**Training run.** `{command}` ({steps} steps, batch {batch}, {machine}; losses in
`training_log.tsv`, the split in `split.tsv` of the run folder). Weights: `models/model.pt`
(sha256 in `configs/metadata.json`, checked on load).

**Running it without taupet-bids' pipeline** (MONAI's bundle runner, which needs `fire`):

```
python -m monai.bundle run --config_file BUNDLE/configs/inference.json \\
    --meta_file BUNDLE/configs/metadata.json --bundle_root BUNDLE \\
    --input_file SUVR.nii.gz [--t1w_file T1W_IN_TEMPLATE.nii.gz] \
    [--ac_method dixon|atlas|ute|mr|ct] --output_dir OUT
```

Both images on the MNI152NLin6Asym 2 mm grid; without `--t1w_file` the template's T1w is used;
without `--ac_method`, `mr` (an MR-based method not named).
Writes `<scan>_space-MNI152NLin6Asym_res-2_desc-harmonized_pet.nii.gz` (harmonised SUVR),
`<scan>_space-MNI152NLin6Asym_res-2_desc-harmonization_map.nii.gz` (the log-ratio field) and
`<scan>_desc-harmonization_record.json`.
"""


def _data_description(config: dict, metrics: dict) -> str:
    counts = ", ".join(
        f"{metrics[name]['pairs']} {name}" for name in ("train", "validation", "test")
    )
    return (
        f"Pairs of rec-mrac (PET/MR) and rec-ctac (PET-CT) template-space SUVR images of the "
        f"same visit in {', '.join(config['derivatives'])} (CT from {config['bids_dir']}): "
        f"{counts} pairs, split 80/10/10 by participant. Made for a taupet-bids-simulate "
        "--pet-mr cohort (digital phantoms, no real person's image); say otherwise when you "
        "train on other data."
    )


def _rows(metrics: dict) -> str:
    def number(value):
        return "n/a" if value is None else f"{value:.2f}"

    return "\n".join(
        f"| {name} | {metrics[name]['pairs']} | {number(metrics[name]['before_percent'])} / "
        f"{number(metrics[name]['after_percent'])} | "
        f"{number(metrics[name].get('regional_before_percent'))} / "
        f"{number(metrics[name].get('regional_after_percent'))} / "
        f"{number(metrics[name].get('regional_after_unnamed_percent'))} | "
        f"{number(metrics[name].get('petct_moved_percent'))} / "
        f"{number(metrics[name].get('petct_as_mr_moved_percent'))} % |"
        for name in ("train", "validation", "test")
    )


def _command(config: dict) -> str:
    parts = [
        "taupet-bids-train harmoniser",
        " ".join(config["derivatives"]),
        f"--bids-dir {config['bids_dir']}",
        f"--seed {config['seed']} --steps {config['steps']}",
        f"--batch-size {config['batch_size']} --learning-rate {config['learning_rate']:g}",
    ]
    if list(config["channels"]) != list(CHANNELS):
        parts.append("--channels " + " ".join(map(str, config["channels"])))
    if config["bound"] != BOUND:
        parts.append(f"--bound {config['bound']:g}")
    if config["ct_weight"] != TrainConfig.ct_weight:
        parts.append(f"--ct-weight {config['ct_weight']:g}")
    if config.get("region_weight", 0.0) != TrainConfig.region_weight:
        parts.append(f"--region-weight {config.get('region_weight', 0.0):g}")
    if config.get("conditioning", "none") != TrainConfig.conditioning:
        parts.append(f"--conditioning {config.get('conditioning', 'none')}")
    if config.get("identity_fraction", 0.0) != TrainConfig.identity_fraction:
        parts.append(f"--identity-fraction {config.get('identity_fraction', 0.0):g}")
    return " ".join(parts)


def metadata(config: TrainConfig, metrics: dict) -> dict:
    """The bundle metadata of a training run (write_bundle adds checksum, versions, machine)."""
    shape = list(preprocessing.INPUT_SHAPE)
    return {
        "version": MODEL_VERSION,
        "changelog": CHANGELOG,
        "name": "taupet-bids PET-MR to PET-CT harmoniser",
        "task": "Correction of MR-based attenuation bias in template-space tau SUVR images",
        "description": "3-D CNN predicting a smooth bounded log-ratio field, pseudo-CT head; "
        "told the scan's AC method (ac_method: ct, dixon, atlas, ute or mr).",
        "authors": "taupet-bids developers",
        "copyright": "taupet-bids developers, Apache-2.0",
        "data_source": _data_description(config.to_json(), metrics),
        "data_type": "nibabel",
        "intended_use": "Research on tau PET; not clinical use.",
        "limitations": "Trained on the data named in data_source only.",
        "eval_metrics": metrics,
        "references": [
            "Seed 001 (npj Digit Med 2026): PET-MR to PET-CT harmonisation with CT-informed "
            "anatomy and a residual correction",
        ],
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": "PT+MR",
                    "num_channels": 2,
                    "spatial_shape": shape,
                    "dtype": "float32",
                    "value_range": [0, preprocessing.SUVR_MAX],
                    "is_patch_data": False,
                    "channel_def": {
                        "0": "SUVR, MNI152NLin6Asym averaged to 4 mm",
                        "1": "T1w in template space / its 99th brain percentile",
                    },
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "magnitude",
                    "num_channels": 1,
                    "spatial_shape": shape,
                    "dtype": "float32",
                    "value_range": [-config.bound, config.bound],
                    "is_patch_data": False,
                    "channel_def": {"0": "log(SUVR_CT-AC / SUVR_MR-AC)"},
                }
            },
        },
        "taupet_bids": {"training_config": config.to_json(), "architecture": config.architecture()},
    }


def render_card(metadata: dict) -> str:
    """The model card (the bundle's docs/README.md) from the bundle's metadata."""
    ours = metadata["taupet_bids"]
    config = ours["training_config"]
    bound = float(ours["architecture"]["bound"])
    return CARD.format(
        version=metadata["version"],
        bound=bound,
        factor=2.718281828459045**bound,
        channels=" -> ".join(map(str, ours["architecture"]["channels"])),
        conditioning=CONDITIONING[ours["architecture"].get("conditioning", "none")],
        data=metadata["data_source"],
        sigma=TARGET_SIGMA_MM,
        identity=float(config.get("identity_fraction", 0.0)),
        rows=_rows(metadata["eval_metrics"]),
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
