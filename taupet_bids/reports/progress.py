"""Progress of a participant run on the terminal, from Nipype's node status callback.

Nipype calls ``status_callback(node, status)`` as nodes start, end or crash. Logging every node
would drown the terminal, so a line is written only when a scan enters a new stage (PET
preprocessing, quantification, outputs), finishes, or fails, and when a T1w workflow (shared by
the scans of its session) starts or fails, with the running count.
"""

from __future__ import annotations

import logging
import threading

LOG = logging.getLogger("taupet_bids")

STAGES = {
    "pet_preproc_wf": "PET preprocessing",
    "anat_wf": "T1w registration",
    "quantification_wf": "quantification",
    "outputs_wf": "writing outputs",
}


class ProgressTracker:
    """Counts finished and failed scans; one instance per run, shared by the callback."""

    def __init__(self, scan_names: list[str]) -> None:
        self.total = len(scan_names)
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.stage: dict[str, str] = {}
        self._lock = threading.Lock()

    def _where(self, fullname: str) -> tuple[str | None, str | None]:
        """(scan, stage) of a node's full name ``taupet_participant_wf.scan_X.anat_wf.n4``."""
        parts = fullname.split(".")
        scan = next((p.removeprefix("scan_") for p in parts if p.startswith("scan_")), None)
        stage = next((STAGES[p] for p in parts if p in STAGES), None)
        return scan, stage

    def __call__(self, node, status: str) -> None:
        fullname = getattr(node, "fullname", "")
        scan, stage = self._where(fullname)
        if scan is None:
            self._anat(fullname, node, status)
            return
        with self._lock:
            if status == "exception" and scan not in self.failed:
                self.failed.add(scan)
                LOG.info("[%s] %s: failed at %s", self.count(), scan, node.name)
            elif status == "end" and node.name == "commit":
                self.done.add(scan)
                LOG.info("[%s] %s: finished", self.count(), scan)
            elif status == "start" and stage and self.stage.get(scan) != stage:
                self.stage[scan] = stage
                LOG.info("[%s] %s: %s", self.count(), scan, stage)

    def _anat(self, fullname: str, node, status: str) -> None:
        """A shared T1w workflow (``taupet_participant_wf.anat_sub_01_T1w.n4``): it belongs to
        no one scan, so it is logged under its own name and not counted."""
        anat = next((p.removeprefix("anat_") for p in fullname.split(".") if p.startswith("anat_")),
                    None)  # fmt: skip
        if anat is None:
            return
        with self._lock:
            if status == "exception":
                LOG.info("[%s] T1w %s: failed at %s", self.count(), anat, node.name)
            elif status == "start" and self.stage.get(f"anat_{anat}") is None:
                self.stage[f"anat_{anat}"] = STAGES["anat_wf"]
                LOG.info("[%s] T1w %s: %s", self.count(), anat, STAGES["anat_wf"])

    def count(self) -> str:
        """``3/10 done, 1 failed``."""
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return f"{len(self.done)}/{self.total} done{failed}"
