"""Nipype interfaces of the MR-less path: network normalisation and its QC score."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)
from scipy import ndimage

from taupet_bids import templates

#: Below this Pearson correlation with the tau PET template a normalisation is flagged. The
#: correlation is taken after a 4 mm (SD) Gaussian smoothing, over the template brain dilated by
#: 10 mm, so that the brain's outline, which any correct normalisation shares with the template,
#: outweighs the subject's own tau pattern and noise. Calibrated by benchmarks/qc_calibration.py
#: (docs/benchmarks.md): correct normalisations 0.90-0.97, moved by 10 mm or yawed 20 degrees
#: mostly below 0.80; a 5 mm error is not caught.
MIN_TEMPLATE_CORRELATION = 0.80
QC_SMOOTHING_VOXELS = 2.0
QC_SHELL_VOXELS = 5
#: Minimum fraction of the reference region and of the brain inside the PET field of view.
MIN_REFERENCE_COVERAGE = 0.95
MIN_BRAIN_COVERAGE = 0.90


class _NetworkInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="averaged native PET (3-D)")
    bundle = traits.Str(desc="MONAI bundle folder (default: the shipped one)")
    reference_image = File(exists=True, mandatory=True, desc="template image defining the grid")
    num_threads = traits.Int(1, usedefault=True, nohash=True, desc="PyTorch threads")


class _NetworkOutputSpec(TraitedSpec):
    transforms = traits.List(File(exists=True), desc="ANTs transform list (one displacement field)")
    parameters = File(exists=True, desc="JSON: affine, canvas centre, model version, seconds")
    seconds = traits.Float(desc="wall time of loading, inference and field export")
    model_version = traits.Str(desc="version of the bundle that ran")


class NetworkPETNormalisation(SimpleInterface):
    """Normalise a native PET to MNI152NLin6Asym with the trained network (no MRI)."""

    input_spec = _NetworkInputSpec
    output_spec = _NetworkOutputSpec

    def _run_interface(self, runtime):
        import torch

        from taupet_bids.normalisation.bundle import load_normaliser
        from taupet_bids.normalisation.inference import normalise, write_itk_displacement

        start = time.perf_counter()
        torch.set_num_threads(max(1, self.inputs.num_threads))
        normaliser = load_normaliser(self.inputs.bundle or None)
        image = nib.load(self.inputs.in_file)
        volume = np.asarray(image.dataobj, dtype=np.float32)
        if volume.ndim == 4 and volume.shape[3] == 1:
            volume = volume[..., 0]
        if volume.ndim != 3:
            raise ValueError(f"{self.inputs.in_file}: expected a 3-D averaged PET")
        result = normalise(volume, image.affine, normaliser)
        field = str(Path(runtime.cwd) / "pet_to_template_field.nii.gz")
        write_itk_displacement(result, nib.load(self.inputs.reference_image), field)
        seconds = time.perf_counter() - start
        parameters = str(Path(runtime.cwd) / "normalisation.json")
        Path(parameters).write_text(
            json.dumps(
                {
                    "Method": "network",
                    "ModelVersion": normaliser.version,
                    "AffineCanvasToTemplate": np.round(result.affine, 6).tolist(),
                    "CanvasCentre": np.round(result.centre, 4).tolist(),
                    "Seconds": round(seconds, 3),
                },
                indent=2,
            )
        )
        self._results.update(
            transforms=[field],
            parameters=parameters,
            seconds=seconds,
            model_version=normaliser.version,
        )
        return runtime


class _QCInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="PET resampled to template space (2 mm)")
    reference_region = traits.Str(mandatory=True, desc="reference region label")
    method = traits.Str(mandatory=True, desc="how the PET was normalised")
    model_version = traits.Str(desc="version of the network bundle, when the network ran")


class _QCOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="JSON with the QC values and flags")
    score = traits.Float(desc="Pearson correlation with the tau PET template inside the brain")
    flags = traits.List(traits.Str, desc="human-readable QC warnings (empty when all pass)")


def normalisation_qc(pet_std: np.ndarray, reference_region: str) -> dict:
    """Similarity to the tau PET template and field-of-view coverage of a normalised PET."""
    from taupet_bids.normalisation.pet_template import pet_template_path

    resolution = templates.WORKING_RESOLUTION
    template = np.asarray(nib.load(pet_template_path()).dataobj, dtype=np.float32)
    brain = np.asarray(nib.load(templates.brain_mask_path(resolution)).dataobj) > 0
    reference = (
        np.asarray(nib.load(templates.reference_mask_path(reference_region, resolution)).dataobj)
        > 0
    )
    covered = np.isfinite(pet_std) & (pet_std != 0)
    region = ndimage.binary_dilation(brain, iterations=QC_SHELL_VOXELS)
    smooth = ndimage.gaussian_filter(np.nan_to_num(pet_std), QC_SMOOTHING_VOXELS)
    score = float(np.corrcoef(smooth[region], template[region])[0, 1]) if covered.any() else 0.0
    values = {
        "TemplateCorrelation": round(score, 4),
        "ReferenceCoverage": round(float(covered[reference].mean()), 4),
        "BrainCoverage": round(float(covered[brain].mean()), 4),
    }
    flags = []
    if score < MIN_TEMPLATE_CORRELATION:
        flags.append(
            f"normalised PET correlates poorly with the tau PET template ({score:.2f} < "
            f"{MIN_TEMPLATE_CORRELATION}): check the normalisation"
        )
    if values["ReferenceCoverage"] < MIN_REFERENCE_COVERAGE:
        flags.append(
            f"only {values['ReferenceCoverage']:.0%} of the {reference_region} reference region "
            "is inside the PET field of view: SUVR is unreliable"
        )
    if values["BrainCoverage"] < MIN_BRAIN_COVERAGE:
        flags.append(f"only {values['BrainCoverage']:.0%} of the brain is in the field of view")
    return {**values, "Flags": flags}


class NormalisationQC(SimpleInterface):
    """QC of a template-space PET: template similarity and coverage, with flags."""

    input_spec = _QCInputSpec
    output_spec = _QCOutputSpec

    def _run_interface(self, runtime):
        pet = np.asarray(nib.load(self.inputs.in_file).dataobj, dtype=np.float32)
        qc = {"Method": self.inputs.method}
        if self.inputs.model_version:
            qc["ModelVersion"] = self.inputs.model_version
        qc.update(normalisation_qc(pet, self.inputs.reference_region))
        out = Path(runtime.cwd) / "normalisation_qc.json"
        out.write_text(json.dumps(qc, indent=2))
        self._results.update(out_file=str(out), score=qc["TemplateCorrelation"], flags=qc["Flags"])
        return runtime
