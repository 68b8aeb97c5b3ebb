"""Nipype interfaces of ``--synthesize``: run a synthesis bundle on a template-space input (T1w,
or FDG SUVR), and stage the synthetic image, its tables and the template-space T1w (when the
network read one) under their final names.

The numerics are :mod:`taupet_bids.synthesis.inference` (the functions the bundle's own config
runs); these wrappers load the bundle and move files.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    InputMultiObject,
    OutputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)


class _SynthesizeInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="T1w or FDG SUVR on the template's 2 mm grid")
    bundle = Directory(exists=True, mandatory=True, desc="trained synthesis bundle")
    num_threads = traits.Int(1, usedefault=True, nohash=True, desc="PyTorch threads")
    clinical = traits.Dict(
        traits.Str, traits.Any, desc="diffusion bundles: clinical values (None: missing)"
    )
    n_samples = traits.Int(1, usedefault=True, desc="diffusion bundles: samples averaged")
    seed = traits.Int(0, usedefault=True, desc="diffusion bundles: sampling seed")


class _SynthesizeOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="synthetic SUVR, template 2 mm grid")
    sidecar = File(exists=True, desc="its JSON sidecar (Synthetic: true, model, inputs)")
    extra_files = OutputMultiObject(
        File(exists=True), desc="diffusion bundles: the SD map and its sidecar (else empty)"
    )
    model_version = traits.Str(desc="version of the bundle that ran")
    seconds = traits.Float(desc="wall time of loading and inference")


class SynthesizePET(SimpleInterface):
    """Synthetic SUVR from one template-space input, as the bundle's runner would write it."""

    input_spec = _SynthesizeInputSpec
    output_spec = _SynthesizeOutputSpec

    def _run_interface(self, runtime):
        import torch

        from taupet_bids.synthesis import diffusion_inference
        from taupet_bids.synthesis.bundle import load_synthesiser, read_card
        from taupet_bids.synthesis.inference import synthesise

        start = time.perf_counter()
        torch.set_num_threads(max(1, self.inputs.num_threads))
        if read_card(self.inputs.bundle).network == "diffusion":
            network, metadata = diffusion_inference.load(self.inputs.bundle)
            image, sidecar, *extra = diffusion_inference.run(
                network, metadata, self.inputs.in_file, Path(runtime.cwd),
                clinical_values=dict(self.inputs.clinical) if self.inputs.clinical else None,
                n_samples=self.inputs.n_samples, seed=self.inputs.seed,
                **diffusion_inference.sampling_defaults(metadata),
            )  # fmt: skip
        else:
            synthesiser = load_synthesiser(self.inputs.bundle)
            outputs = synthesise(synthesiser, self.inputs.in_file, Path(runtime.cwd))
            image, sidecar, extra = outputs.image, outputs.sidecar, []
            metadata = synthesiser.metadata
        self._results.update(
            out_file=str(image),
            sidecar=str(sidecar),
            extra_files=[str(path) for path in extra],
            model_version=str(metadata.get("version", "unknown")),
            seconds=time.perf_counter() - start,
        )
        return runtime


class _StageInputSpec(BaseInterfaceInputSpec):
    image = File(exists=True, mandatory=True, desc="synthetic image, named as it will be")
    sidecar = File(exists=True, mandatory=True, desc="its sidecar")
    tables = InputMultiObject(File(exists=True), mandatory=True, desc="one TSV per atlas")
    atlases = traits.List(traits.Str, mandatory=True, desc="atlas of each table, in order")
    reference_region = traits.Str(mandatory=True, desc="the tables' reference region")
    t1w_std = File(exists=True, desc="the T1w on the template grid, when the network read one")
    source_uri = traits.Str(mandatory=True, desc="BIDS URI of the raw input (T1w, FDG PET)")
    staging_dir = Directory(mandatory=True, desc="the session's staging folder")
    extra_files = InputMultiObject(
        File(exists=True), desc="more pet/ files kept under their names (a diffusion SD map)"
    )


class _StageOutputSpec(TraitedSpec):
    out_files = OutputMultiObject(File(exists=True), desc="every staged file")


class StageSynthetic(SimpleInterface):
    """Copy one session's synthesis outputs into its staging folder under their final names:
    ``pet/`` for the image and its tables (sidecars say ``Synthetic``), ``anat/`` for the
    template-space T1w the network read (none for an FDG input: the FDG scan's own
    derivatives hold its template-space SUVR)."""

    input_spec = _StageInputSpec
    output_spec = _StageOutputSpec

    def _run_interface(self, runtime):
        from taupet_bids.core.regions import STAT_COLUMN_DESCRIPTIONS
        from taupet_bids.synthesis.inference import anat_path, table_path

        image = Path(self.inputs.image)
        meta = json.loads(Path(self.inputs.sidecar).read_text())
        meta["Sources"] = [self.inputs.source_uri]
        folder = Path(self.inputs.staging_dir) / _session_folder(image.name)
        (folder / "pet").mkdir(parents=True, exist_ok=True)
        staged = [shutil.copyfile(image, folder / "pet" / image.name)]
        staged.append(_write_json(folder / "pet" / Path(self.inputs.sidecar).name, meta))
        for extra in self.inputs.extra_files or []:
            extra = Path(extra)
            if extra.suffix == ".json":
                record = {**json.loads(extra.read_text()), "Sources": meta["Sources"]}
                staged.append(_write_json(folder / "pet" / extra.name, record))
            else:
                staged.append(shutil.copyfile(extra, folder / "pet" / extra.name))
        for table, atlas in zip(self.inputs.tables, self.inputs.atlases, strict=True):
            name = table_path(image, atlas, self.inputs.reference_region).name
            staged.append(shutil.copyfile(table, folder / "pet" / name))
            table_meta = {
                **{k: meta[k] for k in ("Synthetic", "SynthesisTask", "SynthesisSource")},
                **{k: meta[k] for k in ("ModelName", "ModelVersion", "ModelSHA256")},
                "TracerName": meta.get("TracerName"),
                "ReferenceRegion": self.inputs.reference_region,
                "RegionalMask": "template",
                "Columns": STAT_COLUMN_DESCRIPTIONS,
                "Sources": meta["Sources"],
            }
            staged.append(_write_json(folder / "pet" / name.replace(".tsv", ".json"), table_meta))
        if isdefined(self.inputs.t1w_std):
            t1w = folder / "anat" / anat_path(image).name
            staged += _stage_t1w(Path(self.inputs.t1w_std), t1w, meta["Sources"])
        self._results["out_files"] = [str(path) for path in staged]
        return runtime


def _stage_t1w(t1w_std: Path, t1w: Path, sources: list[str]) -> list[Path]:
    """The template-space T1w the network read, and its sidecar."""
    from taupet_bids.synthesis.inference import RESOLUTION_NOTE

    t1w.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "Description": "T1w after N4, resampled to the template with the T1w's own "
        "registration: the synthesis network's input",
        "SkullStripped": False,
        "Resolution": RESOLUTION_NOTE,
        "Sources": sources,
    }
    return [
        shutil.copyfile(t1w_std, t1w),
        _write_json(t1w.with_name(t1w.name.replace(".nii.gz", ".json")), record),
    ]


def _session_folder(name: str) -> Path:
    from taupet_bids import naming

    parts = naming.entities(name)
    folder = Path(f"sub-{parts['sub']}")
    return folder / f"ses-{parts['ses']}" if "ses" in parts else folder


def _write_json(path: Path, record: dict) -> Path:
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
