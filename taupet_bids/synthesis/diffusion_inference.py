"""Sample tau SUVR from one template-space T1w and clinical values with a diffusion bundle.

The bundle's ``configs/inference.json`` runs :func:`run` (preprocessing as the U-Net's,
:func:`sample`, :func:`save_outputs`), so MONAI's runner writes: the mean of ``n_samples``
samples (``desc-syntheticFromT1w``), their voxel-wise SD (``desc-syntheticFromT1wSD``, the
model's uncertainty, 0 for one sample) and a sidecar for each that records the model, seed,
DDIM steps, guidance and the clinical values actually used, and says when they were missing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from taupet_bids.models.bundle import parsed, read_bundle
from taupet_bids.synthesis import clinical, inference, preprocessing
from taupet_bids.synthesis.diffusion import DDIM_STEPS, GUIDANCE, LatentDiffusion

SEED = 0
SD_SUFFIX = "SD"


@dataclass(frozen=True)
class Samples:
    """The mean and SD on the 2 mm grid, and how they were made."""

    mean: np.ndarray
    sd: np.ndarray
    conditioning: dict


def conditioning_record(
    values: clinical.Clinical, n_samples: int, seed: int, steps: int, guidance: float
) -> dict:
    """The sidecar fields that say how the samples were drawn and from which condition."""
    missing = clinical.missing(values)
    if len(missing) == len(clinical.VARIABLES):
        how = "unconditional: no clinical value was available, sampled from the T1w only"
    elif missing:
        how = f"conditioned on the values given; missing (not conditioned on): {missing}"
    else:
        how = "conditioned on MMSE, amyloid status and age"
    return {
        "ClinicalConditioning": {k: v for k, v in values.items() if v is not None},
        "ClinicalMissing": missing,
        "Conditioning": how,
        "SamplingSeed": seed,
        "SamplingSteps": steps,
        "SamplingScheduler": "DDIM (eta 0)",
        "GuidanceScale": guidance if len(missing) < len(clinical.VARIABLES) else None,
        "NumberOfSamples": n_samples,
    }


def sample(
    network: LatentDiffusion, image: torch.Tensor, values=None, n_samples: int = 1,
    seed: int = SEED, steps: int = DDIM_STEPS, guidance: float = GUIDANCE,
) -> Samples:  # fmt: skip
    """``n_samples`` samples from one seeded generator: their mean and SD on the 2 mm grid."""
    if n_samples < 1 or not 1 <= steps <= 1000:
        raise ValueError(f"n_samples must be >= 1 and steps 1-1000 (got {n_samples}, {steps})")
    parsed = clinical.parse(values)
    context = torch.from_numpy(clinical.encode(parsed))[None]
    generator = torch.Generator().manual_seed(int(seed))
    made = []
    for _ in range(n_samples):
        volume = network.eval().sample(image, context, steps, guidance, generator)
        made.append(preprocessing.to_template_grid(volume[0, 0].numpy()))
    stack = np.stack(made)
    record = conditioning_record(parsed, n_samples, int(seed), steps, guidance)
    return Samples(stack.mean(0), stack.std(0), record)


def sd_path(image: Path) -> Path:
    """``..._desc-<desc>SD_pet.nii.gz`` beside the mean image."""
    desc = inference.naming.entities(image.name)["desc"]
    return image.with_name(image.name.replace(f"_desc-{desc}_", f"_desc-{desc}{SD_SUFFIX}_"))


def save_outputs(
    samples: Samples, outputs: inference.Outputs, metadata: dict, input_file: str | os.PathLike
) -> list[Path]:
    """Write the mean image, the SD map and their sidecars; returns the four paths."""
    outputs.image.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for path, volume, what in (
        (outputs.image, samples.mean, "mean of the samples"),
        (sd_path(outputs.image), samples.sd, "voxel-wise SD between the samples"),
    ):
        image = nib.Nifti1Image(volume.astype(np.float32), preprocessing.template_affine())
        image.header.set_xyzt_units("mm")
        nib.save(image, path)
        meta = {**inference.sidecar(metadata, input_file), **samples.conditioning}
        meta["Description"] = (
            f"synthetic SUVR ({what}) sampled by a clinically conditioned latent diffusion model "
            "from a T1w; not a measurement (docs/synthesis.md)"
        )
        sidecar = path.with_name(path.name.replace(".nii.gz", ".json"))
        sidecar.write_text(json.dumps(meta, indent=2) + "\n")
        written += [path, sidecar]
    return written


def run(
    network: LatentDiffusion, metadata: dict, input_file: str | os.PathLike,
    output_dir: str | os.PathLike, clinical_values=None, n_samples: int = 1, seed: int = SEED,
    steps: int = DDIM_STEPS, guidance: float = GUIDANCE,
) -> list[Path]:  # fmt: skip
    """What the bundle's config runs: read the T1w, sample, write mean, SD and sidecars."""
    ours = metadata["taupet_bids"]
    image = inference.prepare_file(input_file, "T1w")
    samples = sample(network, image, clinical_values, n_samples, seed, steps, guidance)
    outputs = inference.output_paths(input_file, output_dir, ours["target"]["tracer"], ours["desc"])
    return save_outputs(samples, outputs, metadata, input_file)


def load(bundle: str | os.PathLike) -> tuple[LatentDiffusion, dict]:
    """The bundle's network (weights checked against their sha256) and its metadata."""
    parser = read_bundle(bundle)
    return parsed(parser, "network"), parser["_meta_"]


def sampling_defaults(metadata: dict) -> dict:
    """The DDIM steps and guidance the bundle was evaluated with."""
    sampling = metadata["taupet_bids"]["sampling"]
    return {"steps": int(sampling["steps"]), "guidance": float(sampling["guidance"])}
