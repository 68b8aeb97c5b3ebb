"""Nipype interface of the AD-vs-CN classifier: one template-space SUVR image in, its
prediction, occlusion and attribution maps and their regional summaries out.

The numerics are :mod:`taupet_bids.classification.inference` (the functions the bundle's own
config runs); this wrapper loads the bundle and writes files into the node's folder.
"""

from __future__ import annotations

import time
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)


class _ClassifyInputSpec(BaseInterfaceInputSpec):
    in_file = File(
        exists=True, mandatory=True, desc="template-space SUVR (MNI152NLin6Asym, 2 mm grid)"
    )
    bundle = Directory(exists=True, mandatory=True, desc="trained classifier bundle")
    num_threads = traits.Int(1, usedefault=True, nohash=True, desc="PyTorch threads")


class _ClassifyOutputSpec(TraitedSpec):
    prediction = File(exists=True, desc="JSON: P(AD), label, threshold, model, top regions")
    occlusion_map = File(exists=True, desc="drop in P(AD) when occluded, template 2 mm grid")
    regions = File(exists=True, desc="TSV: the map summarised per DK region and Braak stage")
    attribution_map = File(exists=True, desc="integrated gradients of the AD log-odds, 2 mm grid")
    attribution_regions = File(exists=True, desc="TSV: the attribution map per region")
    probability = traits.Float(desc="P(AD)")
    label = traits.Str(desc="AD or CN at the bundle's threshold")
    model_version = traits.Str(desc="version of the bundle that ran")
    seconds = traits.Float(desc="wall time of loading, prediction and both maps")


class ClassifyADvsCN(SimpleInterface):
    """P(AD) of one template-space SUVR image, with its occlusion and attribution maps."""

    input_spec = _ClassifyInputSpec
    output_spec = _ClassifyOutputSpec

    def _run_interface(self, runtime):
        import torch

        from taupet_bids.classification.bundle import load_classifier
        from taupet_bids.classification.inference import (
            classify,
            output_paths,
            prepare_file,
            save_outputs,
        )

        start = time.perf_counter()
        torch.set_num_threads(max(1, self.inputs.num_threads))
        classifier = load_classifier(self.inputs.bundle)
        prediction, sensitivity, attribution = classify(
            prepare_file(self.inputs.in_file), classifier
        )
        outputs = save_outputs(
            prediction,
            sensitivity,
            output_paths(self.inputs.in_file, Path(runtime.cwd)),
            classifier.metadata,
            attribution,
        )
        self._results.update(
            prediction=str(outputs.prediction),
            occlusion_map=str(outputs.occlusion_map),
            regions=str(outputs.regions),
            attribution_map=str(outputs.attribution_map),
            attribution_regions=str(outputs.attribution_regions),
            probability=prediction.probability,
            label=prediction.label,
            model_version=classifier.version,
            seconds=time.perf_counter() - start,
        )
        return runtime
