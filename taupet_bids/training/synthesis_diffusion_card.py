"""Metadata and model card of a trained latent diffusion bundle, from its own training run.

The metadata is the U-Net's (:func:`taupet_bids.training.synthesis_card.metadata`) with this
network's name, family (``taupet_bids.network = "diffusion"``), sampling defaults and the
clinical inputs; the card is rendered from the metadata alone (:func:`render_card`).
"""

from __future__ import annotations

from pathlib import Path

from taupet_bids.synthesis import clinical
from taupet_bids.synthesis.bundle import DIFFUSION_CONFIGS
from taupet_bids.training import engine, synthesis_card
from taupet_bids.training.synthesis_diffusion import DiffusionConfig

MODEL_VERSION = "0.2.0"
CHANGELOG = {
    "0.1.0": "first release: 3-D latent diffusion, T1w + MMSE/amyloid/age -> tau SUVR",
    "0.2.0": "the latent scale stored per kind (bundle layout); options to train the decoder "
    "from the posterior's mean and to centre the tau latent, both measured worse and off by "
    "default (the default recipe is 0.1.0's)",
}
NETWORK = "diffusion"

CARD = """# Synthetic tau PET from T1w and clinical values (latent diffusion), version {version}

**What it does.** Samples tau SUVR images ({tracer}, reference {reference}) from a T1w in
template space (MNI152NLin6Asym 2 mm, brain-masked, divided by its brain median, averaged to
4 mm) and the clinical values MMSE, amyloid status and age, any of which may be missing. With
every value missing the sample is **unconditional** (from the T1w only) and the sidecar says so.
Several samples (`n_samples`) give a mean image and a voxel-wise SD map (the model's spread,
not a confidence interval). After seed 003 (TauPETGen), with structured clinical variables
instead of free text, in 3-D.

**Network.** MONAI AutoencoderKL (channels {ae_channels}, {latent_channels} latent channels,
latent grid {latent_grid}) trained first ({ae_steps} steps, masked {ae_loss} + {kl_weight:g} x KL,
decoded from the posterior's {posterior}; no adversarial or perceptual term). The tau latent the
diffusion learns is {tau_latent}. Then MONAI DiffusionModelUNet (channels {unet_channels}) on the
tau latent concatenated with the T1w latent, clinical tokens through cross-attention
({parameters:,} parameters in all), trained {steps} steps on the noise-prediction loss; the
whole clinical context dropped with probability {condition_dropout:g} and each value with
{variable_dropout:g} (classifier-free guidance). Sampling: DDIM, default {ddim_steps} steps,
guidance {guidance:g}.

**Clinical inputs.** {variables}: read from `participants.tsv` and the participant's
`sessions.tsv` (a visit's MMSE and age override the first visit's) of {tables}; training scans
with no value at all: {unconditioned}.

**Training data.** {data}

**Validation.** One conditioned sample per held-out scan beside the cohort-mean image (regional
columns: meta-temporal SUVR across held-out scans; slope of predicted on measured). The
*autoencoder* row is the measured image passed through the autoencoder alone: no sample can be
better than that ceiling, so a ceiling near the cohort mean means the autoencoder, not the
denoiser, loses the person. No benchmark (counterfactual slopes, between-sample SD, oracle)
has been run for this model yet.

| set | method | MSE | PSNR (dB) | SSIM | meta-temporal r | MAPE % | slope | scans |
|---|---|---|---|---|---|---|---|---|
{rows}

**Intended use.** Research: what tau a T1w and a clinical state suggest, and clearly labelled
synthetic examples. Not for clinical use; not a measurement. Trained on {machine}.

**Running it** (MONAI's bundle runner, which needs `fire`):

```
python -m monai.bundle run --config_file BUNDLE/configs/inference.json \\
    --meta_file BUNDLE/configs/metadata.json --bundle_root BUNDLE \\
    --input_file T1W_IN_TEMPLATE_SPACE.nii.gz --output_dir OUT \\
    --clinical "mmse=20,amyloid_status=positive,age=72" --n_samples 4 --seed 0
```
"""


def metadata(config: DiffusionConfig, metrics: dict) -> dict:
    """The bundle metadata of a training run (write_bundle adds checksum, versions, machine)."""
    meta = synthesis_card.metadata(config, metrics)
    meta["taupet_bids"].update(
        network=NETWORK,
        parameters=sum(p.numel() for p in config.network().parameters()),
        sampling={"steps": config.ddim_steps, "guidance": config.guidance},
        clinical_variables=list(clinical.VARIABLES),
        latent_shape=list(config.latent_shape()),
    )
    return {
        **meta,
        "version": MODEL_VERSION,
        "changelog": CHANGELOG,
        "name": "taupet-bids synthetic tau PET from T1w and clinical values (latent diffusion)",
        "description": "MONAI AutoencoderKL + DiffusionModelUNet in its latent space, conditioned "
        "on the T1w latent (concatenated) and MMSE, amyloid status and age (cross-attention), "
        "DDIM sampling with classifier-free guidance.",
        "references": [
            "Seed 003: TauPETGen, text-conditional tau PET image synthesis based on latent "
            "diffusion models",
            "Rombach et al. 2022, High-resolution image synthesis with latent diffusion models",
            "Song et al. 2021, Denoising diffusion implicit models",
            "Ho and Salimans 2022, Classifier-free diffusion guidance",
        ],
    }


def _rows(metrics: dict) -> str:
    return synthesis_card._rows(
        metrics, network="diffusion", extra=(("autoencoder (ceiling)", "_autoencoder"),)
    )


def render_card(metadata: dict) -> str:
    """The model card (the bundle's docs/README.md) from the bundle's metadata."""
    ours = metadata["taupet_bids"]
    config, architecture = ours["training_config"], ours["architecture"]
    metrics = metadata["eval_metrics"]
    return CARD.format(
        version=metadata["version"],
        tracer=ours["target"]["tracer"],
        reference=ours["target"].get("reference_region") or "n/a",
        ae_channels=" -> ".join(map(str, architecture["autoencoder_channels"])),
        latent_channels=architecture["latent_channels"],
        latent_grid=" x ".join(map(str, ours["latent_shape"][1:])),
        ae_steps=config["autoencoder_steps"],
        kl_weight=config["kl_weight"],
        ae_loss={"l1": "L1", "mse": "MSE"}[config.get("autoencoder_loss", "l1")],
        posterior=config.get("autoencoder_posterior", "sample"),
        tau_latent=(
            "centred on the training scans' mean tau latent and scaled to unit SD"
            if config.get("centre_tau_latent")
            else "scaled to unit SD"
        ),
        unet_channels=" -> ".join(map(str, architecture["unet_channels"])),
        parameters=ours["parameters"],
        steps=config["steps"],
        condition_dropout=config["condition_dropout"],
        variable_dropout=config["variable_dropout"],
        ddim_steps=ours["sampling"]["steps"],
        guidance=ours["sampling"]["guidance"],
        variables=", ".join(ours["clinical_variables"]),
        tables=", ".join(metrics.get("clinical_tables") or []) or "no dataset (none found)",
        unconditioned=metrics.get("train_scans_without_clinical_values", "n/a"),
        data=metadata["data_source"],
        rows=_rows(metrics),
        machine=ours["machine"],
    )


def export_trained_bundle(config: DiffusionConfig, metrics: dict, out_dir: Path) -> Path:
    """Write the bundle of the run in ``config.out_dir`` (weights, metadata, model card)."""
    return engine.write_bundle(
        out_dir, config.out_dir / "model.pt", metadata(config, metrics), render_card,
        DIFFUSION_CONFIGS,
    )  # fmt: skip
