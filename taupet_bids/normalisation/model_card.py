"""Metadata and model card of a trained MR-less normaliser, written from its own training run."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

import monai
import numpy as np
import torch

from taupet_bids import __version__
from taupet_bids.normalisation import geometry
from taupet_bids.normalisation.bundle import write_bundle
from taupet_bids.training.loop import TrainConfig

MODEL_VERSION = "0.1.0"

CARD = """# MR-less tau PET normaliser, version {version}

**What it does.** Maps an averaged tau PET image in its native space to MNI152NLin6Asym without
an MRI: an affine stage regresses the pose and size of the head from a 4 mm view of the PET, a
deformable stage (MONAI LocalNet) adds a smooth displacement for individual anatomy. It is the
default engine of `taupet-bids ... --mr-less always|auto` (`--mr-less-method network`).

**Training data.** {data}
No image of a real person was used. Real scans differ from the simulator in ways the network has
not seen (neck and shoulders in the field of view, atrophy beyond the simulated range, off-target
binding patterns, reconstruction artefacts, other tracers). Validate it on your own data against
the MR-based path before relying on it, or retrain it on your cohort:
`taupet-bids-train normaliser --derivatives <your MR-based taupet-bids derivatives> --out <dir>`.

**Validation (held-out simulated heads, randomly rotated up to 35 degrees, shifted up to 50 mm,
some with a cut field of view).** Mean distance in the brain between where the network samples
the PET and where it should (mm, PET space), over {n_val} heads:

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
"""


def _data_description(config: TrainConfig) -> str:
    if config.derivatives:
        return (
            "Trained on scans processed by taupet-bids' MR-based pipeline in "
            f"{', '.join(str(p) for p in config.derivatives)}."
        )
    return (
        f"Simulated data only: {config.n_heads} digital phantoms made by taupet-bids' simulator "
        f"(seed {config.seed}: "
        "MNI152NLin6Asym warped by a random affine and a smooth deformation, Braak stage 0-VI "
        "uptake, three scanner models with 6-8 mm PSF, Poisson-like noise, one 20-minute frame), "
        "augmented on the fly by random rigid moves, field-of-view cuts, extra noise and uptake "
        "scale."
    )


def _command(config: TrainConfig) -> str:
    parts = ["taupet-bids-train normaliser", f"--seed {config.seed}"]
    if config.derivatives:
        parts.append("--derivatives " + " ".join(str(p) for p in config.derivatives))
    else:
        parts.append(f"--heads {config.n_heads}")
    parts += [f"--affine-steps {config.affine_steps}", f"--deform-steps {config.deform_steps}"]
    parts.append(f"--batch-size {config.batch_size}")
    return " ".join(parts)


def export_trained_bundle(config: TrainConfig, metrics: dict, out_dir: Path) -> Path:
    """Write the bundle of the run in ``config.out_dir`` (weights, metadata, model card)."""
    data = _data_description(config)
    metadata = {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/"
        "0.8.1/meta_schema_20220324.json",
        "version": MODEL_VERSION,
        "changelog": {MODEL_VERSION: "first release: affine + LocalNet stages, simulated training"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "required_packages_version": {"taupet-bids": __version__},
        "name": "taupet-bids MR-less tau PET normaliser",
        "task": "Spatial normalisation of native tau PET to MNI152NLin6Asym without MRI",
        "description": "Affine regression network plus LocalNet displacement on a 4 mm canvas.",
        "authors": "taupet-bids developers",
        "copyright": "taupet-bids developers, Apache-2.0",
        "data_source": data,
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
        "taupet_bids": {
            "training_config": config.to_json(),
            "trained": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()} CPU, {config.threads} torch threads",
        },
    }
    card = CARD.format(
        version=MODEL_VERSION,
        data=data,
        n_val=metrics["n_validation"],
        affine_mean=metrics["affine_mm"]["mean"],
        affine_p95=metrics["affine_mm"]["p95"],
        affine_max=metrics["affine_mm"]["max"],
        full_mean=metrics["full_mm"]["mean"],
        full_p95=metrics["full_mm"]["p95"],
        full_max=metrics["full_mm"]["max"],
        command=_command(config),
        steps=f"{config.affine_steps} affine + {config.deform_steps} deformable steps",
        machine=metadata["taupet_bids"]["machine"],
    )
    return write_bundle(config.out_dir / "model.pt", out_dir, metadata, card)
