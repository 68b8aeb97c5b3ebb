"""A node that fails before writing its result file fails its scan; the run does not hang."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    from nipype.interfaces import utility as niu
    from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec
    from nipype.pipeline import engine as pe
    from taupet_bids.cli.multiproc import ReportingMultiProcPlugin

    class _In(BaseInterfaceInputSpec):
        in_file = File(mandatory=True)

    class TakesOneFile(SimpleInterface):
        input_spec, output_spec = _In, TraitedSpec
        def _run_interface(self, runtime):
            return runtime

    def two_paths():
        return ["a.nii", "b.nii"]

    def square(x):
        return x * x

    workflow = pe.Workflow(name="wf", base_dir=sys.argv[1])
    workflow.config["execution"]["crashdump_dir"] = sys.argv[1]
    make_list = pe.Node(niu.Function(function=two_paths, output_names=["out"]), name="make_list")
    takes_one = pe.Node(TakesOneFile(), name="takes_one")
    independent = pe.Node(niu.Function(function=square, output_names=["y"]), name="independent")
    independent.inputs.x = 3
    workflow.connect(make_list, "out", takes_one, "in_file")
    workflow.add_nodes([independent])
    try:
        workflow.run(plugin=ReportingMultiProcPlugin(plugin_args={"n_procs": 2}))
    except RuntimeError as error:
        print("FAILED:", error)
    """
)


def test_a_node_failing_while_setting_inputs_is_reported_not_waited_for(tmp_path) -> None:
    script = tmp_path / "run_graph.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "FAILED:" in done.stdout and "takes_one" in done.stdout, done.stdout[-2000:]
    assert (tmp_path / "wf" / "independent" / "result_independent.pklz").exists()


def test_objects_from_before_the_run_are_frozen_during_it_and_thawed_after(monkeypatch) -> None:
    """Nipype's per-node gc.collect() must not walk the main process's whole heap."""
    import gc

    from nipype.pipeline.plugins import multiproc

    from taupet_bids.cli.multiproc import ReportingMultiProcPlugin

    before = [object() for _ in range(1000)]
    seen = {}

    def scheduling_loop(self, graph, config, updatehash=False):
        seen["frozen"] = gc.get_freeze_count()
        return "ran"

    monkeypatch.setattr(multiproc.MultiProcPlugin, "run", scheduling_loop)
    plugin = ReportingMultiProcPlugin(plugin_args={"n_procs": 1})
    try:
        assert plugin.run(None, {}) == "ran"
    finally:
        plugin.pool.shutdown(wait=False)
    assert seen["frozen"] >= len(before)
    assert gc.get_freeze_count() == 0
