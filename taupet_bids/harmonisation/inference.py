"""Harmonise one template-space SUVR image: the functions the bundle's config and the pipeline
both run (``prepare_files`` is the bundle's ``preprocessing``, :func:`infer` runs its
``network``, :func:`save_outputs` is its ``postprocessing``), so the two write the same files.

The harmonised image is ``SUVR x exp(field)`` on the 2 mm template grid; it is still SUVR
against the same reference (the network is trained on log(SUVR_CT-AC / SUVR_MR-AC), the ratio of
two SUVR images), so it is not renormalised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.inferers import Inferer

from taupet_bids import naming
from taupet_bids.core.images import load_3d
from taupet_bids.harmonisation import preprocessing
from taupet_bids.harmonisation.networks import method_index

#: How the anatomy channel was filled, for sidecars and the methods text.
ANATOMY = {
    "subject": "the subject's T1w, N4-corrected and warped to the template by its own registration",
    "template": "the template's T1w (no subject T1w in template space was given)",
}
#: Decimals of the field statistics in the record.
DECIMALS = 5


def prepare_files(suvr_file: str | Path, t1w_file: str | Path | None = None) -> torch.Tensor:
    """The bundle's preprocessing: (1, 2, 46, 55, 46) tensor from the SUVR and T1w files."""
    return torch.from_numpy(preprocessing.read_inputs(suvr_file, t1w_file))[None]


def infer(
    network: torch.nn.Module, inferer: Inferer, image: torch.Tensor, ac_method: str = "mr"
) -> np.ndarray:
    """The 4 mm log-ratio field (46, 55, 46) of a prepared scan whose attenuation correction
    is ``ac_method`` (:data:`~taupet_bids.harmonisation.detection.AC_METHODS`; ``mr``: an
    MR-based method not named; ignored by an unconditioned network)."""
    methods = torch.full((image.shape[0],), method_index(ac_method), dtype=torch.long)
    network = network.eval()
    with torch.no_grad():
        return inferer(image, lambda batch: network.correction(batch, methods))[0, 0].numpy()


def harmonise(suvr: np.ndarray, field_2mm: np.ndarray) -> np.ndarray:
    """``suvr x exp(field)``; a zero field returns the SUVR's values exactly."""
    return (suvr * np.exp(field_2mm.astype(np.float64))).astype(np.float32)


@dataclass(frozen=True)
class Outputs:
    """Where one scan's harmonisation outputs go."""

    suvr: Path
    field: Path
    record: Path


def output_paths(input_file: str | Path, output_dir: str | Path) -> Outputs:
    """Output names from the input's BIDS entities (the file name itself when it has none)."""
    name = Path(input_file).name
    stem = naming.scan_stem(name) or name.removesuffix(".gz").removesuffix(".nii")
    folder = Path(output_dir)
    return Outputs(
        suvr=folder / f"{stem}_{naming.SPACE}_desc-harmonized_pet.nii.gz",
        field=folder / f"{stem}_{naming.SPACE}_desc-harmonization_map.nii.gz",
        record=folder / f"{stem}_desc-harmonization_record.json",
    )


def _save(volume: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(volume.astype(np.float32), preprocessing.template_affine())
    image.header.set_xyzt_units("mm")
    nib.save(image, path)


def field_summary(field_2mm: np.ndarray) -> dict:
    """Mean and extreme correction inside the template brain, as percent change of SUVR."""
    inside = field_2mm[preprocessing.brain_mask()].astype(np.float64)
    change = 100.0 * np.expm1(inside)
    return {
        "CorrectionMeanPercent": round(float(change.mean()), DECIMALS),
        "CorrectionMinPercent": round(float(change.min()), DECIMALS),
        "CorrectionMaxPercent": round(float(change.max()), DECIMALS),
    }


def save_outputs(
    field: np.ndarray,
    input_file: str | Path,
    outputs: Outputs,
    metadata: dict | None = None,
    t1w_file: str | Path | None = None,
    ac_method: str = "mr",
) -> Outputs:
    """Write the harmonised SUVR, the 2 mm log-ratio map and a JSON record of what ran."""
    outputs.suvr.parent.mkdir(parents=True, exist_ok=True)
    field_2mm = preprocessing.field_to_template(field)
    _save(harmonise(load_3d(input_file, np.float32), field_2mm), outputs.suvr)
    _save(field_2mm, outputs.field)
    metadata = metadata or {}
    architecture = metadata.get("taupet_bids", {}).get("architecture", {})
    record = {
        "ModelName": metadata.get("name"),
        "ModelVersion": metadata.get("version"),
        "ModelSHA256": metadata.get("taupet_bids", {}).get("model_sha256"),
        "HarmonizationAnatomy": "subject" if t1w_file else "template",
        "HarmonizationAnatomyDescription": ANATOMY["subject" if t1w_file else "template"],
        "CorrectionBound": architecture.get("bound"),
        "HarmonizationACMethod": ac_method,
        "HarmonizationConditioning": architecture.get("conditioning", "none"),
        **field_summary(field_2mm),
    }
    outputs.record.write_text(json.dumps(record, indent=2) + "\n")
    return outputs
