"""The QC record of one scan as a graph node, so it is staged and committed with the outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from taupet_bids.core.qc import scan_qc

#: QC record key -> input trait of each registration score.
SCORES = {
    "coreg_nmi": "coreg_score",
    "t1w2std_correlation": "t1w2std_score",
    "t1w2std_alignment_margin": "t1w2std_margin",
}


def _json_ready(value):
    """NaN as null: the file stays strict JSON that any reader accepts."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class _ScanQCInputSpec(BaseInterfaceInputSpec):
    motion_params = File(exists=True, mandatory=True, desc="per-frame motion table (TSV)")
    normalisation = File(exists=True, mandatory=True, desc="normalisation method and QC (JSON)")
    coreg_score = traits.Float(desc="PET-to-T1w normalised mutual information (MR-based path)")
    t1w2std_score = traits.Float(desc="T1w-to-template correlation (MR-based path)")
    t1w2std_margin = traits.Float(desc="T1w-to-template alignment margin (MR-based path)")


class _ScanQCOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="every QC number of the scan and its flags (JSON)")


class ScanQC(SimpleInterface):
    """Gather a scan's QC numbers from the nodes that made them, and flag what looks wrong."""

    input_spec = _ScanQCInputSpec
    output_spec = _ScanQCOutputSpec

    def _run_interface(self, runtime):
        normalisation = json.loads(Path(self.inputs.normalisation).read_text())
        scores = {
            key: float(getattr(self.inputs, trait))
            for key, trait in SCORES.items()
            if isdefined(getattr(self.inputs, trait))
        }
        record = scan_qc(Path(self.inputs.motion_params), normalisation, **scores)
        out = Path(runtime.cwd) / "qc.json"
        out.write_text(json.dumps({k: _json_ready(v) for k, v in record.items()}, indent=2) + "\n")
        self._results["out_file"] = str(out)
        return runtime
