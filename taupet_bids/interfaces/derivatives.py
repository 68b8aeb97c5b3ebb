"""Writing BIDS-Derivatives: niworkflows' data sink with our patterns, and an atomic commit.

Sinks write into a per-scan staging folder; only when every sink of a scan has finished does
:class:`CommitDerivatives` copy the staged files into the output folder, so a scan that fails
half-way leaves nothing behind in the output.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from contextlib import contextmanager
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

from taupet_bids import naming

#: Where a PET (anatomical) derivative goes, and the entities it keeps from its source file:
#: the input PET (T1w), all of its entities in BIDS order (``naming.source_pattern``).
_PET = "sub-{subject}[/ses-{session}]/{datatype<pet>|pet}/" + naming.source_pattern()
_ANAT = "sub-{subject}[/ses-{session}]/{datatype<anat>|anat}/" + naming.source_pattern()
#: Images of the scan: averaged PET, template-space SUVR.
_PET_IMAGE_PATTERN = (
    _PET + "[_space-{space}][_res-{resolution}][_pvc-{pvc}][_desc-{desc}]_{suffix<pet>}"
    "{extension<.nii|.nii.gz|.json>|.nii.gz}"
)
#: Per-frame motion parameters.
_TIMESERIES_PATTERN = (
    _PET + "[_desc-{desc}]_{suffix<timeseries>}{extension<.tsv|.json>|.tsv}"
)  # fmt: skip
#: The T1w's derivatives: bias-corrected T1w, brain mask.
_ANAT_PATTERN = (
    _ANAT + "[_space-{space}][_res-{resolution}][_desc-{desc}]_{suffix<T1w|mask>}"
    "{extension<.nii|.nii.gz|.json>|.nii.gz}"
)
#: Regional tables (not defined by BIDS yet, listed in the output's .bidsignore).
_TABLE_PATTERN = (
    _PET + "[_space-{space}]_seg-{segmentation}[_label-{label}][_pvc-{pvc}][_desc-{desc}]"
    "_{suffix<suvr>}{extension<.tsv|.json>|.tsv}"
)
#: CenTauRz tables (one row per CenTauR mask).
_CENTAURZ_PATTERN = (
    _PET + "[_space-{space}][_label-{label}][_desc-{desc}]_{suffix<centaurz>}"
    "{extension<.tsv|.json>|.tsv}"
)
#: Per-scan Braak stage tables (one row per method: uncorrected, then each PVC method).
_BRAAKSTAGE_PATTERN = (
    _PET + "[_space-{space}][_seg-{segmentation}][_label-{label}][_desc-{desc}]"
    "_{suffix<braakstage>}{extension<.tsv|.json>|.tsv}"
)
#: ``--classify``: the prediction (JSON), the occlusion map (template-space NIfTI) and its
#: regional summary (TSV); the names MONAI's bundle runner gives them too.
_CLASSIFICATION_PATTERN = (
    _PET + "[_space-{space}][_res-{resolution}][_desc-{desc}]"
    "_{suffix<classification|map|regions>}{extension<.json|.nii.gz|.tsv>}"
)
#: Transforms written by antspyx (.mat affine, .nii.gz displacement field), named after the
#: PET (``from-pet``) or the T1w (``from-T1w``) they start from.
_XFM_PATTERN = (
    "sub-{subject}[/ses-{session}]/{datatype<anat|pet>}/" + naming.source_pattern()
    + "_from-{from}_to-{to}_mode-{mode<image|points>|image}[_desc-{desc}]_{suffix<xfm>|xfm}"
    "{extension<.mat|.nii.gz|.txt|.h5>}"
)  # fmt: skip
#: The QC record of one scan (registration scores, motion, normalisation QC, flags).
_QC_PATTERN = _PET + "_{suffix<qc>}{extension<.json>|.json}"
#: Report figures of one scan (fMRIPrep's layout: one figures folder per subject).
_FIGURE_PATTERN = (
    "sub-{subject}/{datatype<figures>}/" + naming.source_pattern()
    + "[_desc-{desc}]_{suffix<pet>}{extension<.svg|.png>}"
)  # fmt: skip
#: Hidden names in the output folder: the commit lock, and each commit's temporary folder.
LOCK_NAME = ".taupet-commit.lock"
COMMIT_PREFIX = ".taupet-commit-"
JOURNAL = "journal.json"
_SEGMENTATION_ENTITY = {"name": "segmentation", "pattern": "[_/\\\\]+seg-([a-zA-Z0-9]+)"}


class DerivativesDataSink(_NiworkflowsSink):
    """niworkflows' sink writing at the root of the output folder, knowing our file names."""

    out_path_base = ""
    _config_entities = _NiworkflowsSink._config_entities | {"segmentation"}
    _config_entities_dict = [*_NiworkflowsSink._config_entities_dict, _SEGMENTATION_ENTITY]
    #: Ours only: niworkflows' own patterns drop entities (task- of a T1w, echo-, part-).
    _file_patterns = (
        _FIGURE_PATTERN, _PET_IMAGE_PATTERN, _TIMESERIES_PATTERN, _ANAT_PATTERN, _TABLE_PATTERN,
        _CENTAURZ_PATTERN, _BRAAKSTAGE_PATTERN, _XFM_PATTERN, _QC_PATTERN,
        _CLASSIFICATION_PATTERN,
    )  # fmt: skip

    def _run_interface(self, runtime):
        runtime = super()._run_interface(runtime)
        stem = naming.scan_stem(Path(self.inputs.source_file[0]).name)
        for out_file in self._results["out_file"]:
            if not Path(out_file).name.startswith(f"{stem}_"):  # an entity was dropped
                raise ValueError(
                    f"derivative {Path(out_file).name} does not carry every entity of its "
                    f"source {stem}: add the entity to taupet_bids.naming.SOURCE_ENTITIES"
                )
        return runtime


@contextmanager
def output_lock(output_dir: Path):
    """Hold ``<output>/.taupet-commit.lock`` (flock): one commit or sweep at a time.

    Runs that share an output folder (one Slurm task per participant) take turns here, so a
    sweep never mistakes another run's commit in progress for a stale one. Where the file
    system has no flock (some network mounts), the commit goes on unlocked.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(output_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as error:
            if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _remove_empty_parents(path: Path, root: Path) -> None:
    for parent in path.parents:
        if parent == root or root not in parent.parents:
            return
        try:
            parent.rmdir()
        except OSError:
            return


def _roll_back(folder: Path, output_dir: Path) -> list[Path]:
    """Undo one unfinished commit: remove the files it created, then its temporary folder."""
    removed = []
    journal = folder / JOURNAL
    if journal.exists():
        try:
            created = json.loads(journal.read_text())["created"]
        except (OSError, ValueError, KeyError, TypeError):
            created = []  # a journal is written whole (rename) before the first move
        for relative in created:
            target = output_dir / relative
            if target.is_file() or target.is_symlink():
                target.unlink()
                removed.append(target)
            _remove_empty_parents(target, output_dir)  # and the folders made for it
    shutil.rmtree(folder, ignore_errors=True)
    return removed


def sweep_unfinished_commits(output_dir: Path, older_versions: bool = False) -> list[Path]:
    """Roll back every commit a killed run left in ``output_dir``; call with the lock held.

    Removes the files that an unfinished commit had already moved into place (only those it
    created: a file that existed before keeps its previous or new version, each whole), its
    ``.taupet-commit-*`` folder and, with ``older_versions``, the ``.tmp-*`` files that the
    per-file copies of taupet-bids 0.1 left anywhere in the folder. Returns what was removed.
    """
    removed = []
    if not output_dir.is_dir():
        return removed
    for folder in sorted(output_dir.glob(f"{COMMIT_PREFIX}*")):
        if folder.is_dir():
            removed += _roll_back(folder, output_dir)
            removed.append(folder)
    for stale in output_dir.rglob(".tmp-*") if older_versions else ():
        if stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def copy_tree_atomically(source: Path, destination: Path, name: str = "scan") -> list[Path]:
    """Copy every file of ``source`` under ``destination``: all of them, or none at all.

    The files are first copied into ``destination/.taupet-commit-<name>/`` (same file system),
    then a journal naming the files that do not exist yet is written, then each file is renamed
    into place, and the journal goes last. Anything that stops the commit half-way (an error,
    a full disk, a signal) rolls it back here; a killed process leaves the journal, and the next
    commit or run rolls it back (:func:`sweep_unfinished_commits`). Files and folders get the
    modes the umask gives (``0o666 & ~umask``, ``0o777 & ~umask``), as any file the user writes.
    """
    files = sorted(p for p in source.rglob("*") if p.is_file())
    relatives = [path.relative_to(source) for path in files]
    folder = destination / f"{COMMIT_PREFIX}{name}"
    with output_lock(destination):
        sweep_unfinished_commits(destination)  # nobody else commits while we hold the lock
        try:
            folder.mkdir()
            staged = folder / "files"
            for path, relative in zip(files, relatives, strict=True):
                copy = staged / relative
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, copy)  # a new file: the umask's mode, not the source's
            created = [str(rel) for rel in relatives if not (destination / rel).exists()]
            partial = folder / (JOURNAL + ".partial")
            partial.write_text(json.dumps({"created": created}))
            os.replace(partial, folder / JOURNAL)
            written = []
            for relative in relatives:
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged / relative, target)
                written.append(target)
            (folder / JOURNAL).unlink()  # the commit point: nothing to roll back any more
        except BaseException:  # an error, a full disk or a signal: leave nothing half-written
            _roll_back(folder, destination)
            raise
        shutil.rmtree(folder, ignore_errors=True)
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
        written = copy_tree_atomically(
            Path(self.inputs.staging_dir),
            Path(self.inputs.output_dir),
            name=Path(self.inputs.marker).stem,
        )
        self._results["out_files"] = [str(path) for path in written]
        Path(self.inputs.marker).write_text("\n".join(self._results["out_files"]) + "\n")
        return runtime
