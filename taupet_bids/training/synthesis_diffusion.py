"""Train the clinically conditioned latent diffusion model (T1w + MMSE, amyloid, age -> tau).

Two stages of the shared loop (:mod:`taupet_bids.training.engine`), on the pairs and split of
the 3-D U-Net (:mod:`taupet_bids.training.synthesis`), with each scan's clinical values read
from the BIDS dataset's ``participants.tsv`` / ``sessions.tsv``:

1. ``autoencoder``: AutoencoderKL reconstructs training T1w and SUVR volumes (masked MSE or L1
   plus a small KL term; no adversarial or perceptual term, which Rombach et al. add at full
   size), from the posterior's mean or a sample of it (``autoencoder_posterior``);
2. ``denoiser``: the autoencoder is frozen, the latent standardisations are fitted once (the
   SD of the tau latents, about their mean with ``centre_tau_latent``), and the U-Net learns to
   predict the noise added to the tau latent at a random timestep (MSE), given the T1w latent
   and the clinical tokens. With probability ``condition_dropout`` the whole clinical context
   is replaced by the null one (classifier-free guidance), and each present value is dropped
   with ``variable_dropout`` so partly missing conditions are seen in training.

All randomness of a step (volumes, augmentation, dropped values, timesteps, noise) is drawn in
the batch from a generator keyed by (seed, stage, step): a seed gives bit-identical weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from taupet_bids.errors import InputError
from taupet_bids.synthesis import clinical, diffusion, preprocessing
from taupet_bids.training import engine
from taupet_bids.training.synthesis import (
    NOISE_SD_MAX,
    SCALE_RANGE,
    Examples,
    data_fields,
    prepare_sets,
    save_run,
    score,
    truth_images,
)
from taupet_bids.training.synthesis_data import Pair
from taupet_bids.training.synthesis_tasks import TRAINING


@dataclass
class DiffusionConfig:
    """Everything that defines a training run."""

    out_dir: Path
    derivatives: list[Path]
    #: BIDS datasets whose participants.tsv / sessions.tsv hold the clinical values.
    bids_dirs: list[Path] = field(default_factory=list)
    task: str = "tau-from-t1w"
    #: Only target SUVR images with this ``rec-`` label (None: all).
    reconstruction: str | None = None
    #: None (what the shared CLI passes without --seed): the task's training seed.
    seed: int | None = None
    steps: int = 2000
    autoencoder_steps: int = 500
    batch_size: int = 4
    learning_rate: float = 1e-3
    checkpoint_every: int = 50
    threads: int = 1
    autoencoder_channels: list[int] = field(
        default_factory=lambda: list(diffusion.AUTOENCODER_CHANNELS)
    )
    latent_channels: int = diffusion.LATENT_CHANNELS
    unet_channels: list[int] = field(default_factory=lambda: list(diffusion.UNET_CHANNELS))
    norm_groups: int = diffusion.NORM_GROUPS
    head_channels: int = diffusion.HEAD_CHANNELS
    kl_weight: float = 1e-6
    #: The autoencoder's reconstruction loss inside the mask: "mse" or "l1". MSE by default: a
    #: small autoencoder short of training keeps the brain's common level and loses the tau
    #: above it, and L1 tolerates that more (on constructed data, 300 steps: a Braak region at
    #: SUVR 2.5 came back as 1.18 with MSE, 1.09 with L1).
    autoencoder_loss: str = "mse"
    #: What the decoder reconstructs from in training: a "sample" of the posterior (MONAI's
    #: forward) or its "mean" (a deterministic, KL-regularised autoencoder, as MONAI's
    #: ``reconstruct``). The mean keeps a little more of each person through the autoencoder
    #: (ceiling slope 0.74 against 0.70) but its decoder, never trained on a perturbed code,
    #: turned the denoiser's samples into one image for everyone (docs/synthesis.md).
    autoencoder_posterior: str = "sample"
    #: Centre the tau latent on the training scans' mean before scaling (the first 0.2.0 build
    #: always did; its samples followed a person less: docs/synthesis.md).
    centre_tau_latent: bool = False
    condition_dropout: float = 0.15
    variable_dropout: float = 0.1
    #: DDIM steps and guidance of the held-out evaluation (and the bundle's defaults).
    ddim_steps: int = diffusion.DDIM_STEPS
    guidance: float = diffusion.GUIDANCE
    #: What the training images were, for the model card (empty: the card says to state it).
    data_statement: str = ""

    def __post_init__(self) -> None:
        if self.seed is None:
            self.seed = TRAINING[self.task].seed

    def to_json(self) -> dict:
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        out["derivatives"] = [str(p) for p in self.derivatives]
        out["bids_dirs"] = [str(p) for p in self.bids_dirs]
        return out

    def architecture(self) -> dict:
        keys = ("autoencoder_channels", "latent_channels", "unet_channels", "norm_groups",
                "head_channels")  # fmt: skip
        return {key: getattr(self, key) for key in keys}

    def network(self) -> diffusion.LatentDiffusion:
        return diffusion.LatentDiffusion(**self.architecture())

    def latent_shape(self) -> tuple[int, ...]:
        return diffusion.latent_shape(self.autoencoder_channels, self.latent_channels)


#: The autoencoder's reconstruction losses: the power of the masked absolute error.
AUTOENCODER_LOSSES = {"mse": 2, "l1": 1}
#: What the autoencoder's decoder reconstructs from in training.
POSTERIORS = ("sample", "mean")
#: The tau latents the diffusion can learn (``--tau-latent``): scaled, or centred and scaled.
TAU_LATENTS = ("scaled", "centred")

# The training volumes and contexts live in module globals so that forked workers share them.
_POOL: Examples | None = None
_CONTEXTS: np.ndarray | None = None


def find_tables(config: DiffusionConfig) -> list[Path]:
    """The folders to read clinical tables from: ``bids_dirs``, or else the first folder at or
    above each derivatives folder (up to three levels) that holds a participants.tsv."""
    if config.bids_dirs:
        return list(config.bids_dirs)
    found = []
    for folder in config.derivatives:
        for candidate in [folder, *list(Path(folder).absolute().parents)[:3]]:
            if (candidate / "participants.tsv").is_file():
                found.append(candidate)
                break
    return found


def scan_clinical(pair: Pair, tables: list[Path]) -> clinical.Clinical:
    """One scan's clinical values: the first table that knows the participant."""
    for root in tables:
        values = clinical.from_tables(root, pair.participant, pair.session)
        if clinical.missing(values) != list(clinical.VARIABLES):
            return values
    return clinical.parse(None)


def _augment(volume: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    moved = volume * rng.uniform(*SCALE_RANGE)
    moved = moved + rng.normal(0.0, rng.uniform(0.0, NOISE_SD_MAX), moved.shape)
    return np.where(volume > 0, moved, 0.0).astype(np.float32)


def _autoencoder_batch(key: tuple[int, int, int], size: int) -> tuple[np.ndarray, ...]:
    """Half augmented T1w, half SUVR volumes of random training scans."""
    rng = np.random.default_rng(list(key))
    picks = rng.integers(len(_POOL.pairs), size=size)
    volumes = [
        _augment(_POOL.inputs[i], rng) if n % 2 == 0 else _POOL.targets[i]
        for n, i in enumerate(picks)
    ]
    return (np.stack(volumes)[:, None].astype(np.float32),)


def _denoiser_batch(
    key: tuple[int, int, int], size: int, latent: tuple[int, ...], timesteps: int,
    condition_dropout: float, variable_dropout: float,
) -> tuple[np.ndarray, ...]:  # fmt: skip
    """T1w, SUVR, clinical context (values dropped as configured), timestep and noise."""
    rng = np.random.default_rng(list(key))
    picks = rng.integers(len(_POOL.pairs), size=size)
    t1w = np.stack([_augment(_POOL.inputs[i], rng) for i in picks])[:, None]
    contexts = _CONTEXTS[picks].copy()
    null = clinical.null_context()
    for row in range(size):
        dropped = rng.uniform(size=len(clinical.VARIABLES)) < variable_dropout
        contexts[row][dropped] = null[dropped]
        if rng.uniform() < condition_dropout:
            contexts[row] = null
    times = rng.integers(timesteps, size=size)
    noise = rng.standard_normal((size, *latent)).astype(np.float32)
    return t1w, _POOL.targets[picks][:, None], contexts, times, noise


def autoencoder_stage(config: DiffusionConfig, network: diffusion.LatentDiffusion) -> engine.Stage:
    """Stage 1: masked reconstruction (``autoencoder_loss``) plus ``kl_weight`` x KL divergence."""
    mask = torch.from_numpy(preprocessing.network_mask())
    power = AUTOENCODER_LOSSES[config.autoencoder_loss]

    def step(batch) -> torch.Tensor:
        (volumes,) = map(torch.from_numpy, batch)
        if config.autoencoder_posterior == "sample":
            rebuilt, mean, sigma = network.autoencoder(volumes)
        else:
            mean, sigma = network.autoencoder.encode(volumes)
            rebuilt = network.autoencoder.decode(mean)
        reconstruction = (rebuilt - volumes)[:, 0][:, mask].abs().pow(power).mean()
        kl = 0.5 * (mean**2 + sigma**2 - torch.log(sigma**2 + 1e-8) - 1).sum((1, 2, 3, 4))
        return reconstruction + config.kl_weight * kl.mean()

    return engine.Stage(
        "autoencoder", network.autoencoder, config.autoencoder_steps,
        partial(_autoencoder_batch, size=config.batch_size), step, config.learning_rate,
    )  # fmt: skip


def fit_standard(
    network: diffusion.LatentDiffusion, inputs: np.ndarray, targets: np.ndarray,
    centre_tau: bool = False,
) -> None:  # fmt: skip
    """Fit the latent standardisations on the training scans, once (kept on resume).

    The tau latent: scaled to unit SD (centred first with ``centre_tau``). The T1w latent: by
    the tau latent's factor, one scale for the latent space as in version 0.1.0; by its own SD
    when the tau latent is centred, whose factor then measures differences between people.
    """
    tau, anatomy = network.standard["suvr"], network.standard["t1w"]
    if bool(tau.fitted) and bool(anatomy.fitted):
        return
    tau.fit(_raw_latents(network, targets), centred=centre_tau)
    if centre_tau:
        anatomy.fit(_raw_latents(network, inputs), centred=False)
    else:
        anatomy.share_scale(tau)


@torch.no_grad()
def _raw_latents(network: diffusion.LatentDiffusion, volumes: np.ndarray) -> torch.Tensor:
    """The autoencoder's unstandardised latent means of (N, X, Y, Z) volumes."""
    return torch.cat(
        [network.autoencoder.encode(torch.from_numpy(v)[None, None])[0] for v in volumes]
    )


def denoiser_stage(config: DiffusionConfig, network: diffusion.LatentDiffusion) -> engine.Stage:
    """Stage 2: the noise prediction loss of the U-Net, the autoencoder frozen."""
    scheduler = network.scheduler()

    def step(batch) -> torch.Tensor:
        t1w, targets, contexts, times, noise = map(torch.from_numpy, batch)
        fit_standard(network, _POOL.inputs, _POOL.targets, config.centre_tau_latent)
        with torch.no_grad():
            tau, anatomy = network.encode(targets), network.encode(t1w, "t1w")
        noisy = scheduler.add_noise(tau, noise, times)
        return functional.mse_loss(network.denoise(noisy, anatomy, times, contexts), noise)

    batch = partial(
        _denoiser_batch, size=config.batch_size, latent=config.latent_shape(),
        timesteps=network.train_timesteps, condition_dropout=config.condition_dropout,
        variable_dropout=config.variable_dropout,
    )  # fmt: skip
    return engine.Stage("denoiser", network.unet, config.steps, batch, step, config.learning_rate)


def sample_volumes(
    network: diffusion.LatentDiffusion, inputs: np.ndarray, contexts: np.ndarray,
    steps: int, guidance: float, seed: int,
) -> list[np.ndarray]:  # fmt: skip
    """One DDIM sample per scan, on the 2 mm template grid."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for image, context in zip(inputs, contexts, strict=True):
        sample = network.eval().sample(
            torch.from_numpy(image)[None, None], torch.from_numpy(context)[None],
            steps, guidance, generator,
        )  # fmt: skip
        out.append(preprocessing.to_template_grid(sample[0, 0].numpy()))
    return out


@torch.no_grad()
def reconstruct(network: diffusion.LatentDiffusion, targets: np.ndarray) -> list[np.ndarray]:
    """Each SUVR volume through the autoencoder alone, on the 2 mm grid: the ceiling of any
    sample, since every sample is decoded by the same autoencoder."""
    network.eval()
    return [
        preprocessing.to_template_grid(
            network.decode(network.encode(torch.from_numpy(t)[None, None]))[0, 0].numpy()
        )
        for t in targets
    ]


def evaluate(network, sets: dict[str, Examples], contexts: dict, config: DiffusionConfig) -> dict:
    """One conditioned sample per held-out scan, the autoencoder's ceiling and the cohort-mean
    baseline."""
    cohort_mean = np.mean(truth_images(sets["train"].pairs), axis=0).astype(np.float32)
    metrics: dict = {}
    for name in ("validation", "test"):
        if not sets[name].pairs:
            metrics[name] = metrics[f"{name}_autoencoder"] = metrics[f"{name}_baseline"] = None
            continue
        truth = truth_images(sets[name].pairs)
        made = sample_volumes(
            network, sets[name].inputs, contexts[name], config.ddim_steps, config.guidance,
            config.seed,
        )  # fmt: skip
        metrics[name] = score(made, truth)
        metrics[f"{name}_autoencoder"] = score(reconstruct(network, sets[name].targets), truth)
        metrics[f"{name}_baseline"] = score([cohort_mean] * len(truth), truth)
    return metrics


def train(config: DiffusionConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) training; write weights, split and metrics to out_dir; return metrics."""
    global _POOL, _CONTEXTS
    if config.task != "tau-from-t1w":
        raise InputError(None, f"--task {config.task}: the diffusion model makes tau from T1w only")
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
    sets, counts = prepare_sets(config, log)
    tables = find_tables(config)
    values = {
        name: [scan_clinical(pair, tables) for pair in examples.pairs]
        for name, examples in sets.items()
    }
    contexts = {
        name: np.stack([clinical.encode(v) for v in rows]) if rows else np.zeros((0, 3, 5))
        for name, rows in values.items()
    }
    unconditioned = sum(clinical.missing(v) == list(clinical.VARIABLES) for v in values["train"])
    log(f"clinical tables: {[str(t) for t in tables] or 'none found'}; training scans "
        f"without any clinical value: {unconditioned}")  # fmt: skip
    network = engine.seeded(config.network, config.seed, config.threads)
    _POOL, _CONTEXTS = sets["train"], contexts["train"].astype(np.float32)
    run = engine.Run(config.out_dir, config.seed, config.checkpoint_every, "loss", log)
    run.fit(network, [autoencoder_stage(config, network), denoiser_stage(config, network)])
    fit_standard(network, _POOL.inputs, _POOL.targets, config.centre_tau_latent)  # --steps 0 too
    metrics = {
        **evaluate(network, sets, contexts, config), **counts,
        **data_fields(sets["train"].pairs, config.task),
        "clinical_tables": [str(t) for t in tables],
        "train_scans_without_clinical_values": int(unconditioned),
        "latent_scale": {kind: float(network.standard[kind].value) for kind in diffusion.KINDS},
    }  # fmt: skip
    return save_run(network, metrics, config.out_dir, log)
