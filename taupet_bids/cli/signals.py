"""SIGTERM and SIGINT: stop the workers, roll back an unfinished commit, exit with one line.

The handlers raise :class:`StopRun` in the main thread, wherever it is (Nipype's scheduler
loop, a commit running in the main process, the validator). The CLI catches it, kills every
process this run started (the MultiProc workers and anything they started), rolls back a
commit left half-way, prints one line and exits 128 + the signal's number (143, 130), as a
shell does. Workers ignore SIGINT themselves (``cli/multiproc.py``), so Ctrl-C in a terminal,
which reaches the whole process group, is handled once, here.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil

HANDLED = (signal.SIGTERM, signal.SIGINT)


class StopRun(BaseException):
    """A stop signal arrived; a BaseException, so that no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_stopping: list[int] = []


def _raise_stop(signum: int, frame) -> None:  # noqa: ARG001 - the signal module's signature
    if _stopping:  # a second Ctrl-C while cleaning up: the first one is being handled
        return
    _stopping.append(signum)
    raise StopRun(signum)


def install() -> dict:
    """Turn SIGTERM and SIGINT into :class:`StopRun`; return the handlers to :func:`restore`."""
    _stopping.clear()
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers (main() called from a thread)
    return {signum: signal.signal(signum, _raise_stop) for signum in HANDLED}


def restore(previous: dict) -> None:
    """Put back the handlers :func:`install` replaced (main() called in-process, by make demo)."""
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def ignore() -> None:
    """For the cleanup after a stop: further signals must not interrupt it."""
    for signum in HANDLED:
        signal.signal(signum, signal.SIG_IGN)


def worker_defaults() -> None:
    """In a worker: SIGINT is the main process's to handle; SIGTERM ends the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def descendants(pid: int | None = None) -> list[int]:
    """Every process started by ``pid`` (default: this process), children before grandchildren."""
    try:
        return [child.pid for child in psutil.Process(pid or os.getpid()).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_descendants(timeout: float = 5.0, root: int | None = None) -> list[int]:
    """SIGKILL every process this run (or ``root``) started, reap them; return their PIDs.

    Killing (not terminating) is deliberate: a worker must not finish a step or a commit after
    the run has been told to stop. Grandchildren are killed too, so none is left orphaned.
    """
    killed = []
    deadline = time.monotonic() + timeout
    while True:
        pids = descendants(root)
        if not pids or time.monotonic() > deadline:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        for pid in pids:  # reap our own children; the others are reaped by init once orphaned
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.05)
    return sorted(set(killed))
