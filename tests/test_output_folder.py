"""Other people's folders, the all-or-nothing commit, the work-folder lock, file modes.

A "damaged" scan is committed beside a healthy one whose files must stay byte-identical.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from taupet_bids.cli import locks
from taupet_bids.cli import run as cli_run
from taupet_bids.cli.parser import build_parser, parse_args
from taupet_bids.errors import InputError

HEALTHY = "sub-001/pet/sub-001_trc-FTP_desc-preproc_pet.nii.gz"
COMMIT_PREFIX = ".taupet-commit-"
LOCK_NAME = ".taupet-commit.lock"


@pytest.fixture(autouse=True)
def _templateflow_first(templateflow_home) -> None:
    """Some code here imports niworkflows, which reads TEMPLATEFLOW_HOME once, at import."""


@pytest.fixture
def derivatives(templateflow_home):
    """interfaces/derivatives.py imports niworkflows, which reads TEMPLATEFLOW_HOME at import."""
    from taupet_bids.interfaces import derivatives as module

    assert (module.COMMIT_PREFIX, module.LOCK_NAME) == (COMMIT_PREFIX, LOCK_NAME)
    return module


def _staged(root: Path, subject: str, n_files: int = 6) -> Path:
    """A staging folder like a scan's: a few files in pet/, anat/ and figures/."""
    for index in range(n_files):
        folder = ("pet", "anat", "figures")[index % 3]
        path = root / f"sub-{subject}" / folder / f"sub-{subject}_desc-f{index}_x.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1000 + index))
    return root


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != LOCK_NAME
    }


@pytest.fixture
def output(derivatives, tmp_path: Path) -> Path:
    """An output folder holding one healthy scan's committed files."""
    out = tmp_path / "out"
    healthy = tmp_path / "healthy"
    (healthy / HEALTHY).parent.mkdir(parents=True)
    (healthy / HEALTHY).write_bytes(b"healthy bytes")
    derivatives.copy_tree_atomically(healthy, out, name="sub_001")
    return out


def _no_trace_of(out: Path, subject: str) -> None:
    assert not list(out.glob(f"sub-{subject}*")), sorted(out.rglob("*"))
    assert not list(out.glob(f"{COMMIT_PREFIX}*"))
    assert not list(out.rglob(".tmp-*"))


def test_commit_writes_every_file_and_leaves_no_temporary_folder(
    derivatives, output: Path, tmp_path
) -> None:
    staged = _staged(tmp_path / "staged", "002")
    written = derivatives.copy_tree_atomically(staged, output, name="sub_002")
    assert len(written) == 6
    assert _tree(output) == {HEALTHY: b"healthy bytes", **_tree(staged)}
    assert not list(output.glob(f"{COMMIT_PREFIX}*"))


def test_derivatives_get_the_umasks_modes(derivatives, tmp_path: Path) -> None:
    staged = _staged(tmp_path / "staged", "002")
    for path in staged.rglob("*"):
        path.chmod(0o600 if path.is_file() else 0o700)  # as mkstemp and a private work folder
    previous = os.umask(0o022)
    try:
        derivatives.copy_tree_atomically(staged, tmp_path / "out", name="sub_002")
    finally:
        os.umask(previous)
    for path in (tmp_path / "out").rglob("*"):
        if path.name == LOCK_NAME:
            continue
        expected = 0o644 if path.is_file() else 0o755
        assert path.stat().st_mode & 0o777 == expected, path


def test_a_commit_that_fails_half_way_through_the_moves_leaves_nothing(
    derivatives, output: Path, tmp_path: Path, monkeypatch
) -> None:
    staged = _staged(tmp_path / "staged", "002")
    real_replace, moved = os.replace, []

    def fail_after_three(source, target):
        if COMMIT_PREFIX in str(source) and len(moved) == 3:
            raise OSError(errno.EIO, "Input/output error")
        moved.append(target)
        real_replace(source, target)

    monkeypatch.setattr(derivatives.os, "replace", fail_after_three)
    with pytest.raises(OSError, match="Input/output"):
        derivatives.copy_tree_atomically(staged, output, name="sub_002")
    assert len(moved) == 3  # the journal, then two files were in place before the failure
    _no_trace_of(output, "002")
    assert _tree(output) == {HEALTHY: b"healthy bytes"}


def test_a_full_disk_during_the_copy_leaves_nothing(
    derivatives, output: Path, tmp_path: Path, monkeypatch
) -> None:
    staged = _staged(tmp_path / "staged", "002")
    real_copy, copied = shutil.copyfile, []

    def disk_full_on_the_third(source, target):
        if len(copied) == 2:
            Path(target).write_bytes(b"half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        copied.append(target)
        return real_copy(source, target)

    monkeypatch.setattr(derivatives.shutil, "copyfile", disk_full_on_the_third)
    with pytest.raises(OSError) as caught:
        derivatives.copy_tree_atomically(staged, output, name="sub_002")
    assert caught.value.errno == errno.ENOSPC
    assert len(str(caught.value).splitlines()) == 1
    _no_trace_of(output, "002")
    assert _tree(output) == {HEALTHY: b"healthy bytes"}


KILLED_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from taupet_bids.interfaces import derivatives

    real_replace, moved = os.replace, []

    def killed_after_three(source, target):
        if derivatives.COMMIT_PREFIX in str(source) and len(moved) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        moved.append(target)
        real_replace(source, target)

    derivatives.os.replace = killed_after_three
    derivatives.copy_tree_atomically(Path(sys.argv[1]), Path(sys.argv[2]), name="sub_002")
    """
)


@pytest.mark.e2e  # a real SIGKILL of a process that imports Nipype: seconds, not a unit test
def test_a_commit_killed_half_way_is_rolled_back_by_the_next_one(
    derivatives, output: Path, tmp_path: Path
) -> None:
    staged = _staged(tmp_path / "staged", "002", n_files=30)
    script = tmp_path / "killed_commit.py"
    script.write_text(KILLED_COMMIT)
    done = subprocess.run([sys.executable, script, staged, output], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    half = [path for path in _tree(output) if path.startswith("sub-002")]
    assert len(half) == 2, "the kill came half-way through the moves"
    assert (output / f"{COMMIT_PREFIX}sub_002" / derivatives.JOURNAL).is_file()

    removed = derivatives.sweep_unfinished_commits(output)  # what the next commit or run does first
    assert {str(path.relative_to(output)) for path in removed} >= set(half)
    _no_trace_of(output, "002")
    assert _tree(output) == {HEALTHY: b"healthy bytes"}
    derivatives.copy_tree_atomically(staged, output, name="sub_002")  # the rerun commits it whole
    assert _tree(output) == {HEALTHY: b"healthy bytes", **_tree(staged)}


def test_a_failed_commit_keeps_the_files_an_earlier_commit_made(
    derivatives, output: Path, tmp_path: Path, monkeypatch
) -> None:
    """A file that was there before (a T1w another scan of the subject committed) is not the
    failed commit's to remove: it keeps one whole version; the files the commit made go."""
    staged = _staged(tmp_path / "staged", "001")
    (staged / HEALTHY).write_bytes(b"new healthy bytes")
    (staged / "sub-001" / "pet" / "sub-001_zzz.bin").write_bytes(b"moved last")
    real_replace = os.replace

    def fails_on_the_last(source, target):
        if str(target).endswith("zzz.bin"):
            raise OSError(errno.EIO, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(derivatives.os, "replace", fails_on_the_last)
    with pytest.raises(OSError):
        derivatives.copy_tree_atomically(staged, output, name="sub_001_trc_PI2620")
    assert _tree(output) == {HEALTHY: b"new healthy bytes"}
    assert not list(output.glob(f"{COMMIT_PREFIX}*"))


def test_a_run_sweeps_what_older_versions_left(derivatives, output: Path) -> None:
    (output / "sub-001" / "pet" / ".tmp-abc123").write_bytes(b"half a file")
    (output / f"{COMMIT_PREFIX}sub_009").mkdir()  # killed while copying: no journal yet
    (output / f"{COMMIT_PREFIX}sub_009" / "files").mkdir()
    removed = derivatives.sweep_unfinished_commits(output, older_versions=True)
    assert len(removed) == 2
    assert _tree(output) == {HEALTHY: b"healthy bytes"}


# Folders that are not ours ------------------------------------------------------------------


@pytest.fixture
def bids(tmp_path: Path) -> Path:
    root = tmp_path / "bids"
    root.mkdir()
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "x", "BIDSVersion": "1.10.0", "DatasetType": "raw"})
    )
    return root


def _config(bids: Path, out: Path, *options: str):
    return parse_args([str(bids), str(out), "participant", *options])


@pytest.mark.parametrize(
    ("where", "words"),
    [
        (lambda bids: bids, "is the input dataset"),
        (lambda bids: bids / "out", "is inside the input dataset"),
        (lambda bids: bids / "sub-01" / "out", "is inside the input dataset"),
        (lambda bids: bids.parent, "holds the input dataset"),
    ],
)
def test_output_folder_in_the_input_dataset_is_refused(bids: Path, where, words: str) -> None:
    config = _config(bids, where(bids), "-w", str(bids.parent.parent / "work"))
    with pytest.raises(InputError, match=words) as caught:
        cli_run.check_folders(config)
    assert "derivatives" in str(caught.value) and len(str(caught.value).splitlines()) == 1


def test_output_under_the_datasets_derivatives_is_allowed(bids: Path) -> None:
    cli_run.check_folders(_config(bids, bids / "derivatives" / "taupet-bids"))


def test_work_folder_in_the_input_dataset_is_refused(bids: Path, tmp_path: Path) -> None:
    config = _config(bids, tmp_path / "out", "-w", str(bids / "work"))
    with pytest.raises(InputError, match="work folder .* is inside the input dataset"):
        cli_run.check_folders(config)
    cli_run.check_folders(_config(bids, tmp_path / "out", "-w", str(bids / "derivatives" / "w")))


def _describe(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    description = folder / "dataset_description.json"
    description.write_text(json.dumps({
        "Name": "derivatives", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": name, "Version": "1"} for name in names],
    }))  # fmt: skip
    return description


def test_another_pipelines_output_folder_is_refused_unless_forced(
    bids: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fmriprep"
    description = _describe(out, "fMRIPrep")
    (out / "sub-01").mkdir()
    with pytest.raises(InputError) as caught:
        cli_run.check_folders(_config(bids, out))
    message = str(caught.value)
    assert "made by fMRIPrep, not taupet-bids" in message and "--force-output-dir" in message
    assert len(message.splitlines()) == 1

    forced = _config(bids, out, "--force-output-dir")
    cli_run.check_folders(forced)
    cli_run.prepare_output_dir(forced)
    generators = [entry["Name"] for entry in json.loads(description.read_text())["GeneratedBy"]]
    assert generators == ["fMRIPrep", "taupet-bids"]
    cli_run.check_folders(_config(bids, out))  # now a folder taupet-bids writes into


def test_a_raw_dataset_as_output_folder_is_refused(bids: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-raw"
    shutil.copytree(bids, other)
    with pytest.raises(InputError, match="no GeneratedBy; DatasetType raw"):
        cli_run.check_folders(_config(bids, other))


def test_our_own_output_folder_is_accepted(bids: Path, tmp_path: Path) -> None:
    _describe(tmp_path / "out", "taupet-bids")
    cli_run.check_folders(_config(bids, tmp_path / "out"))


def test_force_output_dir_is_in_the_help() -> None:
    assert "--force-output-dir" in build_parser().format_help()


# The work folder ------------------------------------------------------------------------------


def test_unwritable_work_folder_writes_nothing_into_the_output(bids: Path, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = _config(bids, tmp_path / "out", "-w", str(blocker / "work"))
    with pytest.raises(InputError, match="cannot write to the work folder") as caught:
        cli_run.prepare_output_dir(config, lock_work=True)
    assert len(str(caught.value).splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unwritable_work_folder_leaves_an_existing_output_folder_as_it_was(
    bids: Path, tmp_path
) -> None:
    (tmp_path / "out").mkdir()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError):
        cli_run.prepare_output_dir(
            _config(bids, tmp_path / "out", "-w", str(blocker / "w")), lock_work=True
        )
    assert list((tmp_path / "out").iterdir()) == []


SECOND_RUN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from taupet_bids.cli.locks import lock_work_folder
    from taupet_bids.errors import InputError
    try:
        lock_work_folder(Path(sys.argv[1]))
    except InputError as error:
        print(error)
        sys.exit(1)
    """
)


def test_a_second_run_on_the_same_work_folder_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "work"
    locks.lock_work_folder(work)
    try:
        second = subprocess.run(
            [sys.executable, "-c", SECOND_RUN, work], capture_output=True, text=True
        )
    finally:
        locks.release_work_folder(work)
    assert second.returncode == 1, second.stderr
    line = second.stdout.strip()
    assert f"another taupet-bids run (PID {os.getpid()})" in line and str(work) in line
    assert len(line.splitlines()) == 1
    after = subprocess.run([sys.executable, "-c", SECOND_RUN, work], capture_output=True)
    assert after.returncode == 0, "the lock goes with the run that held it"


# Reports -------------------------------------------------------------------------------------


def test_a_report_that_cannot_be_written_fails_the_subjects_scans(tmp_path: Path, monkeypatch):
    from taupet_bids.reports import subject as subject_reports

    def broken_report(output_dir, subject, methods=""):
        if subject == "sub-002":
            (output_dir / f"{subject}.html").write_text("<html>half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return output_dir / f"{subject}.html"

    monkeypatch.setattr(subject_reports, "write_subject_report", broken_report)
    config = _config(tmp_path, tmp_path / "out")
    (tmp_path / "out").mkdir()
    outcomes = [
        cli_run.ScanOutcome(Path(f"sub-{label}_trc-FTP_pet.nii.gz"), ok)
        for label, ok in (("001", True), ("002", True), ("003", False))
    ]
    after = cli_run._subject_reports(config, outcomes, "methods")
    assert [o.ok for o in after] == [True, False, False]
    assert "sub-002.html could not be written (OSError" in after[1].reason
    assert len(after[1].reason.splitlines()) == 1
    assert not (tmp_path / "out" / "sub-002.html").exists(), "no half-written report"


def test_a_stop_signal_during_the_commit_rolls_it_back(
    derivatives, output: Path, tmp_path, monkeypatch
):
    """The commit runs in the main process: SIGTERM there raises StopRun in the middle of it."""
    from taupet_bids.cli.signals import StopRun

    staged = _staged(tmp_path / "staged", "002")
    real_replace, moved = os.replace, []

    def stopped_after_two(source, target):
        if len(moved) == 3:
            raise StopRun(signal.SIGTERM)
        moved.append(target)
        real_replace(source, target)

    monkeypatch.setattr(derivatives.os, "replace", stopped_after_two)
    with pytest.raises(StopRun):
        derivatives.copy_tree_atomically(staged, output, name="sub_002")
    _no_trace_of(output, "002")
    assert _tree(output) == {HEALTHY: b"healthy bytes"}


# Paths and crashes ---------------------------------------------------------------------------


def test_a_symlinked_dataset_root_is_resolved_like_pybids_resolves_it(bids: Path, tmp_path) -> None:
    link = tmp_path / "link"
    link.symlink_to(bids)
    config = _config(link, tmp_path / "out")
    assert config.bids_dir == bids.resolve()
    from taupet_bids.workflows.outputs import _bids_uri

    pet = (link / "sub-01" / "pet" / "sub-01_trc-FTP_pet.nii.gz").resolve()  # as pybids gives it
    assert _bids_uri(pet, config.bids_dir) == "bids:raw:sub-01/pet/sub-01_trc-FTP_pet.nii.gz"


def test_an_unexpected_error_reaches_the_user_as_one_line_with_the_trace_in_a_file(
    bids: Path, tmp_path, monkeypatch, capsys
) -> None:
    def broken(config):
        raise ValueError("a bug\nsecond line")

    monkeypatch.setattr(cli_run, "_run", broken)
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)
    assert cli_run.main([str(bids), str(out), "participant"]) == 2
    stderr = capsys.readouterr().err.strip()
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr
    assert "internal error (ValueError: a bug)" in stderr and "this is a bug" in stderr
    crash = next((out / "logs").glob("taupet-bids-crash-*.txt"))
    assert str(crash) in stderr and "Traceback" in crash.read_text()


@pytest.mark.parametrize("program", ["taupet-bids-train", "taupet-bids-simulate"])
def test_the_other_commands_report_a_bug_in_one_line_too(
    program: str, tmp_path, monkeypatch, capsys
) -> None:
    """The training and simulator commands follow the app: one line, the trace in a file, rc 2."""
    import tempfile

    def broken(*args, **kwargs):
        raise KeyError("lost")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    if program == "taupet-bids-train":
        from taupet_bids.training import classifier_cli, cli

        monkeypatch.setattr(classifier_cli, "main", broken)
        code = cli.main(["classifier", "anything"])
    else:
        from taupet_bids.simulate import cli

        monkeypatch.setattr(cli, "simulate_cohort", broken)
        code = cli.main([str(tmp_path / "cohort"), "--n-subjects", "1"])
    assert code == 2
    stderr = capsys.readouterr().err.strip()
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr
    assert stderr.startswith(f"{program}: internal error (KeyError: 'lost')")
    crash = next(tmp_path.glob(f"{program}-crash-*.txt"))
    assert str(crash) in stderr and "Traceback" in crash.read_text()
