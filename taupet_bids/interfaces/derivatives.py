"""Writing BIDS-Derivatives: niworkflows' data sink with our patterns, and an atomic commit.

Sinks write into a per-scan staging folder; only when every sink of a scan has finished does
:class:`CommitDerivatives` copy the staged files into the output folder, so a scan that fails
half-way leaves nothing behind in the output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)
from niworkflows.interfaces.bids import DerivativesDataSink as _NiworkflowsSink

#: Regional tables (not defined by BIDS yet, listed in the output's .bidsignore).
_TABLE_PATTERN = (
    "sub-{subject}[/ses-{session}]/{datatype<pet>|pet}/sub-{subject}[_ses-{session}]"
    "[_trc-{tracer}][_rec-{reconstruction}][_run-{run}][_space-{space}]_seg-{segmentation}"
    "[_label-{label}][_pvc-{pvc}][_desc-{desc}]_{suffix<suvr>}{extension<.tsv|.json>|.tsv}"
)
#: CenTauRz tables (one row per CenTauR mask).
_CENTAURZ_PATTERN = (
    "sub-{subject}[/ses-{session}]/{datatype<pet>|pet}/sub-{subject}[_ses-{session}]"
    "[_trc-{tracer}][_rec-{reconstruction}][_run-{run}][_space-{space}][_label-{label}]"
    "[_desc-{desc}]_{suffix<centaurz>}{extension<.tsv|.json>|.tsv}"
)
#: Per-scan Braak stage tables (one row per method: uncorrected, then each PVC method).
_BRAAKSTAGE_PATTERN = (
    "sub-{subject}[/ses-{session}]/{datatype<pet>|pet}/sub-{subject}[_ses-{session}]"
    "[_trc-{tracer}][_rec-{reconstruction}][_run-{run}][_space-{space}][_seg-{segmentation}]"
    "[_label-{label}][_desc-{desc}]_{suffix<braakstage>}{extension<.tsv|.json>|.tsv}"
)
#: Transforms written by antspyx (.mat affine, .nii.gz displacement field).
_XFM_PATTERN = (
    "sub-{subject}[/ses-{session}]/{datatype<anat|pet>}/sub-{subject}[_ses-{session}]"
    "[_trc-{tracer}][_rec-{reconstruction}][_run-{run}]_from-{from}_to-{to}"
    "_mode-{mode<image|points>|image}[_desc-{desc}]_{suffix<xfm>|xfm}"
    "{extension<.mat|.nii.gz|.txt|.h5>}"
)
#: The QC record of one scan (registration scores, motion, normalisation QC, flags).
_QC_PATTERN = (
    "sub-{subject}[/ses-{session}]/{datatype<pet>|pet}/sub-{subject}[_ses-{session}]"
    "[_trc-{tracer}][_rec-{reconstruction}][_run-{run}]_{suffix<qc>}{extension<.json>|.json}"
)
#: Report figures of one scan (fMRIPrep's layout: one figures folder per subject).
_FIGURE_PATTERN = (
    "sub-{subject}/{datatype<figures>}/sub-{subject}[_ses-{session}][_trc-{tracer}]"
    "[_rec-{reconstruction}][_run-{run}][_desc-{desc}]_{suffix<pet>}{extension<.svg|.png>}"
)
_SEGMENTATION_ENTITY = {"name": "segmentation", "pattern": "[_/\\\\]+seg-([a-zA-Z0-9]+)"}


class DerivativesDataSink(_NiworkflowsSink):
    """niworkflows' sink writing at the root of the output folder, knowing our file names."""

    out_path_base = ""
    _config_entities = _NiworkflowsSink._config_entities | {"segmentation"}
    _config_entities_dict = [*_NiworkflowsSink._config_entities_dict, _SEGMENTATION_ENTITY]
    _file_patterns = (
        _FIGURE_PATTERN, _TABLE_PATTERN, _CENTAURZ_PATTERN, _BRAAKSTAGE_PATTERN, _XFM_PATTERN,
        _QC_PATTERN,
        *_NiworkflowsSink._file_patterns,
    )  # fmt: skip


def copy_tree_atomically(source: Path, destination: Path) -> list[Path]:
    """Copy every file of ``source`` under ``destination``, each appearing whole or not at all."""
    written = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        target = destination / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        written.append(target)
    return written


class _CommitInputSpec(BaseInterfaceInputSpec):
    staging_dir = Directory(mandatory=True, desc="where this scan's sinks wrote (made at run time)")
    output_dir = Directory(mandatory=True, desc="the derivatives folder")
    staged_files = InputMultiObject(
        traits.Any, mandatory=True, desc="the sinks' outputs: connecting them orders the commit"
    )
    marker = traits.Str(mandatory=True, desc="file written last, to tell success apart")


class _CommitOutputSpec(TraitedSpec):
    out_files = traits.List(traits.Str, desc="files now in the output folder")


class CommitDerivatives(SimpleInterface):
    """Copy one scan's staged derivatives into the output folder, after all of them exist."""

    input_spec = _CommitInputSpec
    output_spec = _CommitOutputSpec

    def _run_interface(self, runtime):
        written = copy_tree_atomically(Path(self.inputs.staging_dir), Path(self.inputs.output_dir))
        self._results["out_files"] = [str(path) for path in written]
        Path(self.inputs.marker).write_text("\n".join(self._results["out_files"]) + "\n")
        return runtime
