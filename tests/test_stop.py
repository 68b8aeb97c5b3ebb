"""SIGTERM, Ctrl-C and a second run on the same work folder, on the real command line.

One simulated participant; each run is stopped a few seconds after its first step started, so
the whole module takes about a minute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taupet_bids.cli import locks

COMMAND = str(Path(sys.executable).with_name("taupet-bids"))


@pytest.fixture(scope="module")
def bids(tmp_path_factory, templateflow_home) -> Path:
    root = tmp_path_factory.mktemp("stop") / "bids"
    simulate = Path(sys.executable).with_name("taupet-bids-simulate")
    subprocess.run([simulate, root, "--n-subjects", "1", "--seed", "11"], check=True)
    return root


def _start(bids: Path, out: Path, work: Path) -> tuple[subprocess.Popen, Path]:
    """The CLI in its own session (process group), its log in a file we can watch."""
    log = out.parent / f"{out.name}.log"
    with log.open("w") as stdout:
        process = subprocess.Popen(
            [COMMAND, bids, out, "participant", "-w", work, "--skip-bids-validation",
             "--nprocs", "2"],
            stdout=stdout, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
    return process, log


def _wait_for(log: Path, words: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while words not in log.read_text():
        assert process.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, f"no {words!r} in {timeout} s"
        time.sleep(0.2)


def _group(pgid: int) -> list[str]:
    """Processes still in a process group (the run's session)."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            left.append(f"{entry.name}: {stat[:80]}")
    return left


def _assert_clean_stop(process, log: Path, out: Path, name: str, code: int) -> None:
    _, stderr = process.communicate(timeout=60)
    text = log.read_text()
    assert process.returncode == code, stderr + text[-3000:]
    assert stderr.strip().splitlines() == [
        f"taupet-bids: stopped by {name}; nothing half-written was left in {out}; rerun to resume"
    ]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    time.sleep(0.5)
    assert _group(process.pid) == [], "no worker outlives the run"
    assert not list(out.glob(".taupet-commit-*"))
    assert not list(out.rglob(".tmp-*"))
    committed = [p for p in out.rglob("*") if p.is_file() and "sub-001" in p.parts]
    assert committed == [], "a scan stopped before its commit has no files in the output"


def test_sigterm_stops_workers_and_a_second_run_is_refused(bids: Path, tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    process, log = _start(bids, out, work)
    _wait_for(log, "[0/1 done]", process)

    second = subprocess.run(
        [COMMAND, bids, tmp_path / "out2", "participant", "-w", work, "--skip-bids-validation"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        f"taupet-bids: error: {work.name}: another taupet-bids run (PID {process.pid}) is using "
        f"the work folder {work}; wait for it to finish, or give this run its own --work-dir"
    ]
    assert not (tmp_path / "out2").exists(), "the refused run wrote nothing"

    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    _assert_clean_stop(process, log, out, "SIGTERM", 143)
    locks.lock_work_folder(work)  # the lock went with the run
    locks.release_work_folder(work)


def test_ctrl_c_in_a_terminal_stops_the_run_without_a_traceback(bids: Path, tmp_path) -> None:
    out = tmp_path / "out"
    process, log = _start(bids, out, tmp_path / "work")
    _wait_for(log, "[0/1 done]", process)
    time.sleep(2)
    os.killpg(process.pid, signal.SIGINT)  # a terminal sends it to the whole process group
    _assert_clean_stop(process, log, out, "SIGINT", 130)
