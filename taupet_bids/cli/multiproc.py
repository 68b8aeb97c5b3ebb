"""Nipype's MultiProc plugin, made to report every failed node instead of waiting for it.

Nipype 1.11's worker (``multiproc.run_node``) reads the node's result file after a failure; when
the node failed before writing one (a wrong input type, caught while setting its inputs), that
read raises in the worker, the callback never records the task, and the scheduler waits for it
forever (nipype issue #3088, C-PAC issue #1453). Here every worker returns a result with the
traceback, so the node fails its own scan and the others go on.

Its workers also ignore SIGINT and die of SIGTERM (``cli/signals.py``): a stop is handled once,
by the main process, which kills them.

Nipype's scheduler calls ``gc.collect()`` before every submission and after every node; in a
main process that holds the dataset index, TemplateFlow's and the graph, each call took about
0.28 s, more than half of the scheduler's time on a 4-scan MR-less run (workers waited for it).
The objects alive when the run starts are frozen (``gc.freeze``), so those calls only look at
what the run itself makes.
"""

from __future__ import annotations

import gc
import sys
import weakref
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from traceback import format_exception

from nipype.pipeline.plugins import multiproc

from taupet_bids.cli import signals

#: The plugins of this process, so that a stop can shut their pools down.
_PLUGINS: weakref.WeakSet = weakref.WeakSet()


def _initialize_worker(cwd: str) -> None:
    multiproc.process_initializer(cwd)
    signals.worker_defaults()


def run_node_reporting_failures(node, updatehash: bool, taskid: int) -> dict:
    """``multiproc.run_node``, but a failure to read the node's result is a failure of the node."""
    try:
        return multiproc.run_node(node, updatehash, taskid)
    except BaseException:  # noqa: BLE001 - whatever it was, the scheduler must hear of it
        return {"result": None, "traceback": format_exception(*sys.exc_info()), "taskid": taskid}


class ReportingMultiProcPlugin(multiproc.MultiProcPlugin):
    """MultiProc whose workers always hand back a result (see the module docstring)."""

    def __init__(self, plugin_args=None):
        super().__init__(plugin_args=plugin_args)
        # Nipype's pool, remade with our initializer (no worker has started yet).
        context = self.pool._mp_context
        self.pool.shutdown(wait=False)
        self.pool = ProcessPoolExecutor(
            max_workers=self.processors,
            initializer=_initialize_worker,
            initargs=(self._cwd,),
            mp_context=context,
        )
        _PLUGINS.add(self)

    def run(self, graph, config, updatehash=False):
        """Nipype's scheduling loop, with the objects that exist before it frozen (see above)."""
        gc.collect()
        gc.freeze()
        try:
            return super().run(graph, config, updatehash=updatehash)
        finally:
            gc.unfreeze()

    def _task_done(self, taskid: int, future) -> None:
        """Nipype's callback, but a worker that died (killed, out of memory) fails its node.

        Nipype's own callback raises there (BrokenProcessPool), logs a traceback and never
        records the task, so the scheduler would wait for it.
        """
        if future.cancelled():  # the run is being stopped
            return
        error = future.exception()
        if error is None:
            self._async_callback(future)
            return
        self._taskresult[taskid] = {
            "result": None,
            "traceback": format_exception(type(error), error, error.__traceback__),
            "taskid": taskid,
        }

    def _submit_job(self, node, updatehash=False):
        self._taskid += 1
        if getattr(node.interface, "terminal_output", "") == "stream":
            node.interface.terminal_output = "allatonce"
        future = self.pool.submit(run_node_reporting_failures, node, updatehash, self._taskid)
        future.add_done_callback(partial(self._task_done, self._taskid))
        self._task_obj[self._taskid] = future
        return self._taskid


def shut_down_pools() -> None:
    """After the workers were killed: let every pool go without waiting for its tasks."""
    for plugin in list(_PLUGINS):
        plugin.pool.shutdown(wait=False, cancel_futures=True)
