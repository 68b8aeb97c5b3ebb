"""Nipype's MultiProc plugin, made to report every failed node instead of waiting for it.

Nipype 1.11's worker (``multiproc.run_node``) reads the node's result file after a failure; when
the node failed before writing one (a wrong input type, caught while setting its inputs), that
read raises in the worker, the callback never records the task, and the scheduler waits for it
forever (nipype issue #3088, C-PAC issue #1453). Here every worker returns a result with the
traceback, so the node fails its own scan and the others go on.
"""

from __future__ import annotations

import sys
from traceback import format_exception

from nipype.pipeline.plugins import multiproc


def run_node_reporting_failures(node, updatehash: bool, taskid: int) -> dict:
    """``multiproc.run_node``, but a failure to read the node's result is a failure of the node."""
    try:
        return multiproc.run_node(node, updatehash, taskid)
    except BaseException:  # noqa: BLE001 - whatever it was, the scheduler must hear of it
        return {"result": None, "traceback": format_exception(*sys.exc_info()), "taskid": taskid}


class ReportingMultiProcPlugin(multiproc.MultiProcPlugin):
    """MultiProc whose workers always hand back a result (see the module docstring)."""

    def _submit_job(self, node, updatehash=False):
        self._taskid += 1
        if getattr(node.interface, "terminal_output", "") == "stream":
            node.interface.terminal_output = "allatonce"
        future = self.pool.submit(run_node_reporting_failures, node, updatehash, self._taskid)
        future.add_done_callback(self._async_callback)
        self._task_obj[self._taskid] = future
        return self._taskid
