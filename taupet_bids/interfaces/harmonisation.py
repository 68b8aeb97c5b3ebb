"""Nipype interface of the PET-MR harmoniser: one template-space SUVR image (and the T1w in
template space, when the scan has one) in; the harmonised SUVR, the correction map and a JSON
record out.

The numerics are :mod:`taupet_bids.harmonisation.inference` (the functions the bundle's own
config runs). A subject T1w that cannot be used (unreadable, off the template grid, empty in
the brain) does not stop the scan: the template's T1w takes its place and the record says why,
so the measured outputs and a harmonised image still land.
"""

from __future__ import annotations

import json
import logging
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

LOG = logging.getLogger("taupet_bids")


class _HarmoniseInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="template-space SUVR (2 mm grid)")
    t1w_file = File(desc="T1w in template space (2 mm grid); unset: the template's T1w")
    bundle = Directory(exists=True, mandatory=True, desc="trained harmoniser bundle")
    reason = traits.Str("", usedefault=True, desc="why the scan is harmonised (the plan's)")
    ac_method = traits.Str(
        "mr", usedefault=True, desc="the scan's AC method as its sidecar names it (the plan's)"
    )
    num_threads = traits.Int(1, usedefault=True, nohash=True, desc="PyTorch threads")


class _HarmoniseOutputSpec(TraitedSpec):
    harmonized_suvr = File(exists=True, desc="SUVR x exp(field), template 2 mm grid")
    correction_map = File(exists=True, desc="log-ratio field, template 2 mm grid")
    record = File(exists=True, desc="JSON: model, anatomy, decision, field statistics")
    meta = traits.Dict(desc="sidecar fields of the harmonised outputs")
    seconds = traits.Float(desc="wall time of loading and inference")


class HarmoniseSUVR(SimpleInterface):
    """Correct one template-space SUVR image for MR-based attenuation correction."""

    input_spec = _HarmoniseInputSpec
    output_spec = _HarmoniseOutputSpec

    def _run_interface(self, runtime):
        import torch

        from taupet_bids.errors import InputError
        from taupet_bids.harmonisation.bundle import load_harmoniser
        from taupet_bids.harmonisation.inference import (
            infer,
            output_paths,
            prepare_files,
            save_outputs,
        )

        start = time.perf_counter()
        torch.set_num_threads(max(1, self.inputs.num_threads))
        harmoniser = load_harmoniser(self.inputs.bundle)
        t1w = self.inputs.t1w_file or None
        fallback = None
        try:
            image = prepare_files(self.inputs.in_file, t1w)
        except (InputError, ValueError, OSError) as error:
            if t1w is None:
                raise
            fallback = f"the subject's T1w in template space could not be used ({error})"
            LOG.warning("%s: %s; harmonised with the template's T1w", self.inputs.in_file, fallback)
            t1w, image = None, prepare_files(self.inputs.in_file, None)
        field = infer(harmoniser.network, harmoniser.inferer, image, self.inputs.ac_method)
        outputs = save_outputs(
            field,
            self.inputs.in_file,
            output_paths(self.inputs.in_file, Path(runtime.cwd)),
            harmoniser.metadata,
            t1w,
            self.inputs.ac_method,
        )
        record = json.loads(outputs.record.read_text())
        record["HarmonizationReason"] = self.inputs.reason
        if fallback:
            record["HarmonizationAnatomyFallback"] = fallback
        outputs.record.write_text(json.dumps(record, indent=2) + "\n")
        self._results.update(
            harmonized_suvr=str(outputs.suvr),
            correction_map=str(outputs.field),
            record=str(outputs.record),
            meta=record,
            seconds=time.perf_counter() - start,
        )
        return runtime
