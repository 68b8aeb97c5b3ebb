"""The terminal progress lines: scans counted, a session's shared T1w workflow named but not."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from taupet_bids.reports.progress import ProgressTracker


def _node(fullname: str) -> SimpleNamespace:
    return SimpleNamespace(fullname=fullname, name=fullname.rsplit(".", 1)[-1])


def test_a_shared_t1w_workflow_is_logged_once_and_not_counted_as_a_scan(caplog) -> None:
    tracker = ProgressTracker(["sub_01_trc_FTP", "sub_01_trc_18FFDG"])
    top = "taupet_participant_wf"
    with caplog.at_level(logging.INFO, logger="taupet_bids"):
        tracker(_node(f"{top}.anat_sub_01_T1w.n4"), "start")
        tracker(_node(f"{top}.anat_sub_01_T1w.t1w_to_template"), "start")
        tracker(_node(f"{top}.anat_sub_01_T1w.t1w_to_template"), "exception")
        tracker(_node(f"{top}.scan_sub_01_trc_FTP.outputs_wf.commit"), "end")
    lines = caplog.messages
    assert lines.count("[0/2 done] T1w sub_01_T1w: T1w registration") == 1
    assert "[0/2 done] T1w sub_01_T1w: failed at t1w_to_template" in lines
    assert lines[-1] == "[1/2 done] sub_01_trc_FTP: finished"
    assert tracker.failed == set()  # the scans it feeds are judged by their own commit
