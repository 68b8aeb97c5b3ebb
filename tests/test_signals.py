"""Stopping a run: its worker processes and theirs are found and killed, none left orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from taupet_bids.cli import signals


def test_every_descendant_is_killed_grandchildren_too() -> None:
    parent = subprocess.Popen(["bash", "-c", "sleep 60 & sleep 60 & wait"])
    try:
        deadline = time.monotonic() + 10
        while len(signals.descendants(parent.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sleeps = signals.descendants(parent.pid)
        killed = signals.kill_descendants(root=parent.pid)
        assert set(sleeps) <= set(killed)
        assert signals.descendants(parent.pid) == []
        assert parent.wait(timeout=10) == 0  # its own children gone, bash's wait returns
    finally:
        parent.kill()
        parent.wait()


def test_stop_run_is_not_an_exception_and_carries_the_shell_exit_code() -> None:
    stop = signals.StopRun(signal.SIGTERM)
    assert not isinstance(stop, Exception)  # no `except Exception` in Nipype swallows it
    assert (stop.name, stop.exit_code) == ("SIGTERM", 143)
    assert signals.StopRun(signal.SIGINT).exit_code == 130


def test_the_handlers_raise_once_and_are_put_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    previous = signals.install()
    try:
        with pytest.raises(signals.StopRun):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal during the cleanup is ignored
        time.sleep(0.1)
    finally:
        signals.restore(previous)
    assert signal.getsignal(signal.SIGTERM) == before
