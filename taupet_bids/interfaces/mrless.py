"""Nipype interfaces of spatial normalisation without MRI, and the QC of every normalisation.

The network (:mod:`taupet_bids.normalisation.inference`), the classical antspyx baseline
(:mod:`taupet_bids.normalisation.ants_baseline`) and the QC score
(:mod:`taupet_bids.normalisation.qc`) are plain functions; these wrappers load and write files.
"""

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
    isdefined,
    traits,
)

from taupet_bids.core.images import load_3d, out_path
from taupet_bids.normalisation.ants_baseline import normalise_pet
from taupet_bids.normalisation.qc import normalisation_qc
from taupet_bids.normalisation.registration_check import brain_check


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

        from taupet_bids.normalisation.bundle import cached_normaliser
        from taupet_bids.normalisation.inference import normalise, write_itk_displacement

        start = time.perf_counter()
        torch.set_num_threads(max(1, self.inputs.num_threads))
        normaliser = cached_normaliser(self.inputs.bundle or None)
        volume = load_3d(self.inputs.in_file, np.float32)
        result = normalise(volume, nib.load(self.inputs.in_file).affine, normaliser)
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


class _RefineInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="averaged PET, native space (Bq/mL)")
    network_transforms = traits.List(File(exists=True), mandatory=True, desc="network's field")
    template_file = File(exists=True, desc="tau PET template (default: the shipped one)")
    seed = traits.Int(42, usedefault=True, desc="antsRegistration --random-seed")
    num_threads = traits.Int(1, usedefault=True, nohash=True, desc="1 = bitwise reproducible")


class _RefineOutputSpec(TraitedSpec):
    transforms = traits.List(File(exists=True), desc="PET -> template: one composed field")
    parameters = File(exists=True, desc="JSON: refining affine's shift (mm), seconds")
    shift_mean_mm = traits.Float(desc="mean distance the refinement moved the template brain")
    shift_max_mm = traits.Float(desc="largest distance the refinement moved the template brain")


class RefineNormalisation(SimpleInterface):
    """``network+ants``: refine the network's field with a short affine registration."""

    input_spec = _RefineInputSpec
    output_spec = _RefineOutputSpec

    def _run_interface(self, runtime):
        from taupet_bids.normalisation.refinement import refine_normalisation

        result = refine_normalisation(
            self.inputs.in_file,
            self.inputs.network_transforms[0],
            str(Path(runtime.cwd) / "refine_"),
            template_file=self.inputs.template_file or None,
            seed=self.inputs.seed,
            num_threads=self.inputs.num_threads,
        )
        parameters = Path(runtime.cwd) / "refinement.json"
        parameters.write_text(
            json.dumps(
                {
                    "Method": "network+ants",
                    "RefinementShiftMeanMm": round(result["shift_mean_mm"], 3),
                    "RefinementShiftMaxMm": round(result["shift_max_mm"], 3),
                    "Seconds": round(result["seconds"], 3),
                },
                indent=2,
            )
        )
        self._results.update(
            transforms=result["transforms"],
            parameters=str(parameters),
            shift_mean_mm=result["shift_mean_mm"],
            shift_max_mm=result["shift_max_mm"],
        )
        return runtime


class _QCInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="PET resampled to template space (2 mm)")
    reference_region = traits.Str(mandatory=True, desc="reference region label")
    method = traits.Str(mandatory=True, desc="how the PET was normalised")
    model_version = traits.Str(desc="version of the network bundle, when the network ran")
    refinement_shift_mm = traits.Float(desc="network-vs-refined disagreement (network+ants)")
    tau_tracer = traits.Bool(
        True, usedefault=True, desc="False: the tau template correlation is not flagged"
    )


class _QCOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="JSON with the QC values and flags")
    score = traits.Float(desc="Pearson correlation with the tau PET template inside the brain")
    flags = traits.List(traits.Str, desc="human-readable QC warnings (empty when all pass)")


class NormalisationQC(SimpleInterface):
    """QC of a template-space PET: template similarity and coverage, with flags."""

    input_spec = _QCInputSpec
    output_spec = _QCOutputSpec

    def _run_interface(self, runtime):
        pet = np.asarray(nib.load(self.inputs.in_file).dataobj, dtype=np.float32)
        qc = {"Method": self.inputs.method}
        if self.inputs.model_version:
            qc["ModelVersion"] = self.inputs.model_version
        shift = self.inputs.refinement_shift_mm
        check = brain_check(self.inputs.in_file, self.inputs.reference_region)
        qc.update(
            normalisation_qc(
                pet,
                self.inputs.reference_region,
                shift if isdefined(shift) else None,
                check,
                tau_tracer=self.inputs.tau_tracer,
            )
        )
        out = Path(runtime.cwd) / "normalisation_qc.json"
        out.write_text(json.dumps(qc, indent=2))
        self._results.update(out_file=str(out), score=qc["TemplateCorrelation"], flags=qc["Flags"])
        return runtime


class _NormaliseInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="averaged PET, native space (Bq/mL)")
    template_file = File(exists=True, desc="tau PET template (default: the shipped one)")
    deformable = traits.Bool(False, usedefault=True, desc="add a SyN stage (less accurate)")
    seed = traits.Int(42, usedefault=True, desc="antsRegistration --random-seed")
    num_threads = traits.Int(1, usedefault=True, nohash=True, desc="1 = bitwise reproducible")


class _NormaliseOutputSpec(TraitedSpec):
    transforms = traits.List(File(exists=True), desc="PET -> template (ANTs order)")
    warped_file = File(exists=True, desc="PET on the template 2 mm grid (Bq/mL)")
    similarity = traits.Float(desc="Pearson r with the template inside its brain mask (QC)")


class ANTsPETNormalisation(SimpleInterface):
    """MR-less spatial normalisation of a tau PET by antspyx registration to a PET template."""

    input_spec = _NormaliseInputSpec
    output_spec = _NormaliseOutputSpec

    def _run_interface(self, runtime):
        result = normalise_pet(
            self.inputs.in_file,
            out_path(self.inputs.in_file, "_to_pettemplate_", ext=""),
            template_file=self.inputs.template_file or None,
            seed=self.inputs.seed,
            num_threads=self.inputs.num_threads,
            deformable=self.inputs.deformable,
        )
        self._results.update(
            transforms=result["transforms"],
            warped_file=result["warped_file"],
            similarity=result["similarity"],
        )
        return runtime
