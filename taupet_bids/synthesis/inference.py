"""Synthesise one template-space PET image from a template-space input image.

The bundle's ``configs/inference.json`` names these functions: :func:`prepare_file` is its
``preprocessing``, :func:`infer` runs its ``network``, :func:`save_outputs` is its
``postprocessing``. The pipeline calls the same functions (:func:`synthesise_file`), so MONAI's
runner and the pipeline write the same files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.inferers import Inferer

from taupet_bids import __version__, naming, templates
from taupet_bids.synthesis import preprocessing
from taupet_bids.synthesis.bundle import Synthesiser

#: The ``Resolution`` sidecar field of the template-space files (BIDS requires it with ``res-``).
RESOLUTION_NOTE = (
    f"{naming.RESOLUTION} mm isotropic, {templates.TEMPLATE} (TemplateFlow "
    f"res-{templates.WORKING_RESOLUTION:02d}); synthetic images predicted at "
    f"{preprocessing.POOL * templates.WORKING_RESOLUTION} mm"
)


def prepare_file(path: str | os.PathLike, source: str = "T1w") -> torch.Tensor:
    """The bundle's preprocessing: a template-space input as a (1, 1, 48, 56, 48) tensor.

    ``source`` is the bundle's input modality: a T1w is normalised by its brain median; a PET
    input (``FDG``) is read as SUVR (clipped, not rescaled).
    """
    if source == "T1w":
        return torch.from_numpy(preprocessing.read_t1w(path))[None, None]
    return torch.from_numpy(preprocessing.read_suvr(path))[None, None]


def infer(network: torch.nn.Module, inferer: Inferer, image: torch.Tensor) -> np.ndarray:
    """The synthetic SUVR on the 2 mm template grid (brain-masked, clipped to [0, 4])."""
    with torch.no_grad():
        predicted = inferer(image, network.eval())
    return preprocessing.to_template_grid(predicted[0, 0].numpy())


@dataclass(frozen=True)
class Outputs:
    """Where one synthetic image and its sidecar go."""

    image: Path
    sidecar: Path


def output_paths(
    input_file: str | os.PathLike, output_dir: str | os.PathLike, tracer: str, desc: str
) -> Outputs:
    """``<source entities>_trc-<tracer>_space-..._res-2_desc-<desc>_pet.nii.gz`` and its JSON.

    The source entities are the input's (``sub-01_ses-01`` of a T1w); ``trc-`` is the tracer the
    network was trained to imitate and ``desc-`` says synthetic and from what
    (``syntheticFromT1w``), so a synthetic image never shares a name with a measured one.
    """
    name = Path(input_file).name
    parts = naming.entities(naming.scan_stem(name))
    if "sub" not in parts:
        raise ValueError(f"{name}: the input's name has no sub- entity to name the output by")
    parts["trc"] = tracer
    stem = "_".join(f"{key}-{parts[key]}" for key in naming.SOURCE_ENTITIES if key in parts)
    image = Path(output_dir) / f"{stem}_{naming.SPACE}_desc-{desc}_pet.nii.gz"
    return Outputs(image, image.with_name(image.name.replace(".nii.gz", ".json")))


def sidecar(metadata: dict, input_file: str | os.PathLike) -> dict:
    """The synthetic image's sidecar: it says it is synthetic, from what, and by which model."""
    ours = metadata.get("taupet_bids", {})
    target = ours.get("target", {})
    return {
        "Synthetic": True,
        "SynthesisTask": ours.get("task"),
        "SynthesisSource": ours.get("source"),
        "Sources": [Path(input_file).name],
        "TracerName": target.get("tracer_name"),
        "Units": "unitless",
        "Description": "synthetic SUVR predicted by a network from another modality; not a "
        "measurement (docs/synthesis.md)",
        "ReferenceRegion": target.get("reference_region"),
        "SkullStripped": True,
        "ModelName": metadata.get("name"),
        "ModelVersion": metadata.get("version"),
        "ModelSHA256": ours.get("model_sha256"),
        "Resolution": RESOLUTION_NOTE,
        "SoftwareVersions": f"taupet-bids {__version__}",
    }


def save_outputs(
    synthetic: np.ndarray, outputs: Outputs, metadata: dict, input_file: str | os.PathLike
) -> Outputs:
    """Write the synthetic SUVR on the 2 mm template grid and its sidecar."""
    outputs.image.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(synthetic.astype(np.float32), preprocessing.template_affine())
    image.header.set_xyzt_units("mm")
    nib.save(image, outputs.image)
    outputs.sidecar.write_text(json.dumps(sidecar(metadata, input_file), indent=2) + "\n")
    return outputs


def synthesise(
    synthesiser: Synthesiser, input_file: str | os.PathLike, output_dir: str | os.PathLike
) -> Outputs:
    """What the pipeline runs: the bundle's preprocessing, network and postprocessing."""
    card = synthesiser.card
    image = prepare_file(input_file, card.source)
    prediction = infer(synthesiser.network, synthesiser.inferer, image)
    outputs = output_paths(input_file, output_dir, card.tracer, card.desc)
    return save_outputs(prediction, outputs, synthesiser.metadata, input_file)


def table_path(image: str | os.PathLike, atlas: str, reference: str) -> Path:
    """The regional table of a synthetic image: a measured scan's table name
    (``<stem>_space-<template>_seg-<atlas>_label-<ref>``) plus the image's ``desc-``, last as
    BIDS orders it, which says synthetic and from what."""
    image = Path(image)
    desc = naming.entities(image.name)["desc"]
    stem = naming.scan_stem(image.name)
    space = f"space-{templates.TEMPLATE}"
    return image.with_name(f"{stem}_{space}_seg-{atlas}_label-{reference}_desc-{desc}_suvr.tsv")


def anat_path(image: str | os.PathLike) -> Path:
    """The template-space T1w that a synthetic image was made from (its source entities)."""
    image = Path(image)
    stem = "_".join(p for p in naming.scan_stem(image.name).split("_") if not p.startswith("trc-"))
    return image.with_name(f"{stem}_{naming.SPACE}_desc-preproc_T1w.nii.gz")
