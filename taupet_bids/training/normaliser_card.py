"""Metadata and model card of a trained MR-less normaliser, written from its own training run.

The card is rendered from the bundle's metadata alone (:func:`render_card`), so the shipped
card can be checked against the shipped metadata.
"""

from __future__ import annotations

from pathlib import Path

from taupet_bids.normalisation import geometry
from taupet_bids.normalisation.bundle import SHIPPED_BUNDLE
from taupet_bids.training import engine
from taupet_bids.training.normaliser import TrainConfig

MODEL_VERSION = "0.4.1"
CHANGELOG = {
    "0.4.1": "the 0.3.0 weights again (same sha256): through the default network+ants, 0.4.0 read "
    "every composite 0.5-1.5 points worse on phantoms of an anatomy neither was trained on (the "
    "analysis template's), and no better on the training anatomy (docs/mrless.md)",
    "0.4.0": "retrained on 320 realistic heads whose PET mixes grey matter, white matter and CSF "
    "in each voxel as the T1w does (the simulator's tissue mixing), seed 10, 4000 affine + 1000 "
    "deformable steps; withdrawn in 0.4.1",
    "0.3.0": "retrained on 320 realistic heads of the simulator's other anatomy (face, skull "
    "base, neck; three tau tracers' off-target styles; scrambled uptake patterns; 15-26 cm axial "
    "fields of view), seed 8, 3000 affine + 800 deformable steps",
    "0.2.0": "configs/inference.json is a complete MONAI bundle config (python -m monai.bundle "
    "run); weights and outputs unchanged",
    "0.1.0": "first release: affine + LocalNet stages, simulated training",
}

CARD = """# MR-less tau PET normaliser, version {version}

**What it does.** Maps an averaged tau PET image in its native space to MNI152NLin6Asym without
an MRI: an affine stage regresses the pose and size of the head from a 4 mm view of the PET, a
deformable stage (MONAI LocalNet) adds a smooth displacement for individual anatomy. It is the
first stage of `taupet-bids ... --mr-less always|auto` (default `--mr-less-method network+ants`,
which refines its map with a short affine registration; `network` runs it alone).

**Training data.** {data}
No image of a real person was used. Real scans differ from the simulator in ways the network has
not seen ({unseen}). Validate it on your own data against
the MR-based path before relying on it, or retrain it on your cohort:
`taupet-bids-train normaliser --derivatives <your MR-based taupet-bids derivatives> --out <dir>`.

**Validation (held-out simulated heads of the same kind, randomly rotated up to 35 degrees,
shifted up to 50 mm, some with a cut field of view).** Mean distance in the brain between where
the network samples the PET and where it should (mm, PET space), over {n_val} heads:

| stage | mean | 95th percentile | worst head |
|---|---|---|---|
| affine only | {affine_mean:.2f} | {affine_p95:.2f} | {affine_max:.2f} |
| affine + deformable | {full_mean:.2f} | {full_p95:.2f} | {full_max:.2f} |

Regional SUVR accuracy against the simulator's truth, side by side with the ANTs baseline and the
MR-based pipeline, is in taupet-bids' docs/benchmarks.md.

**Intended use.** Research quantification of flortaucipir-like tau PET (late frames, SUVR) when
no usable T1w exists. Not for clinical use. Scans whose normalised image correlates poorly with
the tau PET template, or whose field of view misses the reference region, are flagged by the
pipeline's QC score.

**Training run.** `{command}` ({steps}, {machine}; the losses are in `training_log.tsv` of the
run folder). Weights: `models/model.pt` (sha256 in `configs/metadata.json`, checked on load).

**Running it without taupet-bids' pipeline** (MONAI's bundle runner, which needs `fire`):

```
python -m monai.bundle run --config_file BUNDLE/configs/inference.json \\
    --meta_file BUNDLE/configs/metadata.json --bundle_root BUNDLE \\
    --input_file PET.nii.gz --output_dir OUT [--reference_image GRID.nii.gz] [--num_threads 1]
```

writes `OUT/<PET name>_from-pet_to-MNI152NLin6Asym_mode-image_xfm.nii.gz`, the ITK displacement
field (template to PET) that the pipeline computes, on the grid of `--reference_image` (default:
the MNI152NLin6Asym 2 mm T1w), for `antsApplyTransforms` with the template as reference.
The input is an averaged native PET (3-D, or 4-D with one frame) in any units, voxel size and
orientation. `monai.bundle.ConfigWorkflow` with the same arguments (`workflow_type=None`) runs it
from Python.
"""


def _data_description(config: dict) -> str:
    if config["derivatives"]:
        return (
            "Trained on scans processed by taupet-bids' MR-based pipeline in "
            f"{', '.join(config['derivatives'])}."
        )
    if config.get("heads_from", "template") == "other":
        return (
            f"Simulated data only: {config['n_heads']} realistic digital heads made by "
            f"taupet-bids' simulator (seed {config['seed']}): its other anatomy (an "
            "MNI152NLin2009aSym brain in a head with face, skull base, neck and shoulders, grey "
            "matter, white matter and CSF mixed in each voxel by the anatomy's tissue "
            "probabilities) warped by a random affine and a smooth deformation, flortaucipir-, "
            "MK-6240- or "
            "PI-2620-like off-target signal, scrambled or swapped uptake patterns, 15-26 cm axial "
            "fields of view, three scanner models with 6-8 mm PSF, one 20-minute frame; targets "
            "carried from MNI152NLin6Asym to that anatomy by the simulator's SyN point map. "
            "Augmented on the fly by random rigid moves, field-of-view cuts, extra noise and "
            "uptake scale."
        )
    return (
        f"Simulated data only: {config['n_heads']} digital phantoms made by taupet-bids' "
        f"simulator (seed {config['seed']}: "
        "MNI152NLin6Asym warped by a random affine and a smooth deformation, Braak stage 0-VI "
        "uptake, three scanner models with 6-8 mm PSF, Poisson-like noise, one 20-minute frame), "
        "augmented on the fly by random rigid moves, field-of-view cuts, extra noise and uptake "
        "scale."
    )


def _unseen(config: dict) -> str:
    """What the training heads lacked that real scans have (said on the card)."""
    if config.get("heads_from", "template") == "other" and not config["derivatives"]:
        return (
            "real faces, skulls and head shapes beyond one source anatomy, atrophy beyond the "
            "simulated range, patient motion, reconstruction artefacts, tracers other than the "
            "three tau styles and the scrambled patterns"
        )
    return (
        "neck and shoulders in the field of view, atrophy beyond the simulated range, off-target "
        "binding patterns, reconstruction artefacts, other tracers"
    )


def _command(config: dict) -> str:
    parts = ["taupet-bids-train normaliser", f"--seed {config['seed']}"]
    if config["derivatives"]:
        parts.append("--derivatives " + " ".join(config["derivatives"]))
    else:
        parts.append(f"--heads {config['n_heads']}")
        if config.get("heads_from", "template") != "template":
            parts.append(f"--heads-from {config['heads_from']}")
    parts += [
        f"--affine-steps {config['affine_steps']}",
        f"--deform-steps {config['deform_steps']}",
        f"--batch-size {config['batch_size']}",
    ]
    return " ".join(parts)


def metadata(config: TrainConfig, metrics: dict) -> dict:
    """The bundle metadata of a training run (write_bundle adds checksum, versions, machine)."""
    return {
        "version": MODEL_VERSION,
        "changelog": CHANGELOG,
        "name": "taupet-bids MR-less tau PET normaliser",
        "task": "Spatial normalisation of native tau PET to MNI152NLin6Asym without MRI",
        "description": "Affine regression network plus LocalNet displacement on a 4 mm canvas.",
        "authors": "taupet-bids developers",
        "copyright": "taupet-bids developers, Apache-2.0",
        "data_source": _data_description(config.to_json()),
        "data_type": "nibabel",
        "intended_use": "Research SUVR quantification of tau PET without T1w; not clinical use.",
        "limitations": "Trained on simulated data only; validate on your own cohort.",
        "eval_metrics": metrics,
        "references": [
            "Hu et al. 2018, Weakly-supervised CNN for multimodal image registration (LocalNet)",
            "Liu et al. 2018, An intriguing failing of CNNs and the CoordConv solution",
        ],
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": "PT",
                    "num_channels": 1,
                    "spatial_shape": list(geometry.CANVAS_SHAPE),
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {"0": "PET / 99.5th percentile, 4 mm canvas"},
                }
            },
            "outputs": {
                "affine": {"type": "tensor", "format": "affine 3x4 (canvas mm -> template mm)"},
                "displacement": {
                    "type": "image",
                    "format": "displacement (mm, template world)",
                    "num_channels": 3,
                    "spatial_shape": list(geometry.TEMPLATE_SHAPE),
                    "dtype": "float32",
                },
            },
        },
        "taupet_bids": {"training_config": config.to_json()},
    }


def render_card(metadata: dict) -> str:
    """The model card (the bundle's docs/README.md) from the bundle's metadata."""
    config = metadata["taupet_bids"]["training_config"]
    metrics = metadata["eval_metrics"]
    return CARD.format(
        version=metadata["version"],
        data=metadata["data_source"],
        unseen=_unseen(config),
        n_val=metrics["n_validation"],
        affine_mean=metrics["affine_mm"]["mean"],
        affine_p95=metrics["affine_mm"]["p95"],
        affine_max=metrics["affine_mm"]["max"],
        full_mean=metrics["full_mm"]["mean"],
        full_p95=metrics["full_mm"]["p95"],
        full_max=metrics["full_mm"]["max"],
        command=_command(config),
        steps=f"{config['affine_steps']} affine + {config['deform_steps']} deformable steps",
        machine=metadata["taupet_bids"]["machine"],
    )


def export_trained_bundle(config: TrainConfig, metrics: dict, out_dir: Path) -> Path:
    """Write the bundle of the run in ``config.out_dir`` (weights, metadata, model card)."""
    return engine.write_bundle(
        out_dir,
        config.out_dir / "model.pt",
        metadata(config, metrics),
        render_card,
        SHIPPED_BUNDLE / "configs",
    )
