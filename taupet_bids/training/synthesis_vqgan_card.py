"""Metadata and model card of a trained MCR-VQGAN bundle, written from its own training run.

The metadata is the U-Net's (:func:`taupet_bids.training.synthesis_card.metadata`: data, split,
input and output format) with this network's name, references and family
(``taupet_bids.network = "vqgan"``, which ``--synthesis-architecture`` is checked against); the
card is rendered from the metadata alone (:func:`render_card`).
"""

from __future__ import annotations

from pathlib import Path

from taupet_bids.core.synthesis_metrics import DATA_RANGE
from taupet_bids.synthesis import preprocessing
from taupet_bids.synthesis.bundle import VQGAN_CONFIGS
from taupet_bids.training import engine, synthesis_card
from taupet_bids.training.synthesis_vqgan import VQGANConfig

MODEL_VERSION = "0.1.0"
CHANGELOG = {"0.1.0": "first release: MCR-VQGAN on axial 4 mm slices, T1w -> tau SUVR"}
NETWORK = "vqgan"

CARD = """# Synthetic tau PET from T1w (MCR-VQGAN, 2-D slices), version {version}

**What it does.** Predicts a tau SUVR image ({tracer}, reference {reference}) from a T1w in
template space (MNI152NLin6Asym 2 mm; brain-masked, divided by its brain median, clipped to
0-{t1w_max:g}, averaged to 4 mm), one axial slice at a time; the slices are stacked back into a
volume on the 4 mm grid and brought to 2 mm by trilinear interpolation. `taupet-bids ...
--synthesize tau-from-t1w --synthesis-architecture vqgan --synthesis-model BUNDLE` runs it for
every session with a T1w and writes a **synthetic** image (`desc-syntheticFromT1w`) and its
regional tables, never mixed with measured values.

**Network** (after seed 002, MCR-VQGAN, at a CPU-sized width). Generator: 7x7 stem, channels
{channels} with stride-2 downsampling, multi-scale (3/5/7) convolutions, instance norm, ReLU and
CBAM attention at each level; {res_blocks} residual block(s) of multi-scale convolutions; 1x1
projection to {embedding_dim} channels, MONAI's EMA vector quantiser ({codebook_size} codes,
decay {decay:g}), 1x1 projection back; {res_blocks} residual block(s) of 3x3 convolutions;
transposed-convolution upsampling with CBAM; 7x7 output convolution and tanh, mapped onto SUVR
0-{suvr_max:g} (a fixed range, no per-volume scaling). Discriminator: MONAI's PatchDiscriminator
({discriminator_channels} channels in the first layer, instance norm).

**Losses.** Generator: {l1:g} x masked L1 + {perceptual:g} x perceptual + {adversarial:g} x
adversarial (binary cross-entropy) + {vq:g} x VQ commitment. The **perceptual term is not
VGG16's** (no pretrained network can be downloaded): it is the L1 distance between the
activations of a small convolutional autoencoder of SUVR slices (channels {feature_channels}),
trained first on this run's training targets ({feature_steps} steps) and frozen; its weights are
in this bundle (`features`). Discriminator: binary cross-entropy, real labels smoothed to
0.9-1. Generator and discriminator move in the same step, each by its own loss (Adam with a
cosine schedule). Not done here: the paper's R1 penalty, decaying instance noise and AdamW.

**Scale, honestly.** Seed 002 trained about 75 million parameters on 256 x 256 axial slices
(1 mm) of 178 ADNI-3 training pairs (14 slices each) for 500 epochs on a GPU; this bundle has
{parameters:,} parameters, works on 48 x 56 slices at 4 mm and was trained for {steps} steps
of {batch} slices on {machine}. Its numbers are not theirs and are not comparable.

**Training data.** {data}

**Validation.** Held-out participants beside the cohort-mean image (the voxelwise mean SUVR of
the training targets). Voxel metrics in 3-D inside the template brain mask on SUVR as it is,
data range {data_range:g} SUVR for PSNR and SSIM; regional: Pearson r, MAPE and slope (least
squares of predicted on measured: 1 follows the person, 0 is one value for all) of the
meta-temporal mean SUVR across held-out scans.

| set | method | MSE | PSNR (dB) | SSIM | meta-temporal r | MAPE % | slope | scans |
|---|---|---|---|---|---|---|---|---|
{rows}

**Intended use.** Research: what a T1w alone says about tau, and a clearly labelled stand-in
where no tau PET was acquired. Not for clinical use; not a measurement.

**Training run.** `taupet-bids-train synthesis --architecture vqgan` (config in
`taupet_bids.training_config` of `configs/metadata.json`; losses in `training_log.tsv`, the
split in `split.tsv` of the run folder). Weights: `models/model.pt` (generator, discriminator
and feature autoencoder; sha256 in `configs/metadata.json`, checked on load).

**Running it without taupet-bids' pipeline** (MONAI's bundle runner, which needs `fire`):

```
python -m monai.bundle run --config_file BUNDLE/configs/inference.json \\
    --meta_file BUNDLE/configs/metadata.json --bundle_root BUNDLE \\
    --input_file T1W_IN_TEMPLATE_SPACE.nii.gz --output_dir OUT [--num_threads 1]
```
"""


def _rows(metrics: dict) -> str:
    return synthesis_card._rows(metrics, network="MCR-VQGAN")


def metadata(config: VQGANConfig, metrics: dict) -> dict:
    """The bundle metadata of a training run (write_bundle adds checksum, versions, machine)."""
    meta = synthesis_card.metadata(config, metrics)
    meta["taupet_bids"].update(
        network=NETWORK, parameters=sum(p.numel() for p in config.network().parameters())
    )
    return {
        **meta,
        "version": MODEL_VERSION,
        "changelog": CHANGELOG,
        "name": "taupet-bids synthetic tau PET from T1w (MCR-VQGAN, 2-D slices)",
        "description": "MCR-VQGAN generator (multi-scale convolutions, residual blocks, CBAM, "
        "EMA vector quantiser) on axial 4 mm template-space T1w slices, predicting SUVR.",
        "references": [
            "Seed 002: MCR-VQGAN, a scalable and cost-effective tau PET synthesis approach",
            "Esser et al. 2021, Taming transformers for high-resolution image synthesis (VQGAN)",
            "Woo et al. 2018, CBAM: convolutional block attention module",
            "van den Oord et al. 2017, Neural discrete representation learning (VQ-VAE, EMA)",
            "Isola et al. 2017, Image-to-image translation with conditional adversarial networks",
        ],
    }


def render_card(metadata: dict) -> str:
    """The model card (the bundle's docs/README.md) from the bundle's metadata."""
    ours = metadata["taupet_bids"]
    config, architecture = ours["training_config"], ours["architecture"]
    return CARD.format(
        version=metadata["version"],
        tracer=ours["target"]["tracer"],
        reference=ours["target"].get("reference_region") or "n/a",
        t1w_max=preprocessing.T1W_MAX,
        suvr_max=preprocessing.SUVR_MAX,
        channels=" -> ".join(map(str, architecture["channels"])),
        res_blocks=architecture["res_blocks"],
        embedding_dim=architecture["embedding_dim"],
        codebook_size=architecture["codebook_size"],
        decay=architecture["decay"],
        discriminator_channels=architecture["discriminator_channels"],
        feature_channels=" -> ".join(map(str, architecture["feature_channels"])),
        feature_steps=config["feature_steps"],
        **config["weights"],
        parameters=ours["parameters"],
        steps=config["steps"],
        batch=config["batch_size"],
        machine=ours["machine"],
        data=metadata["data_source"],
        data_range=DATA_RANGE,
        rows=_rows(metadata["eval_metrics"]),
    )


def export_trained_bundle(config: VQGANConfig, metrics: dict, out_dir: Path) -> Path:
    """Write the bundle of the run in ``config.out_dir`` (weights, metadata, model card)."""
    return engine.write_bundle(
        out_dir, config.out_dir / "model.pt", metadata(config, metrics), render_card,
        VQGAN_CONFIGS,
    )  # fmt: skip
