"""The demo's synthesis sequence: other tracers first, then training, then the --synthesize
runs with the bundles that were trained; a task whose training failed is left out, not run.

The app and the trainer are the demo's two entry points; here they record their command lines
(the real ones run in `make demo`-style runs and in the synthesis tests' tiny cohorts)."""

from __future__ import annotations

from pathlib import Path

from taupet_bids import demo_synthesis
from taupet_bids.cli.parser import build_parser
from taupet_bids.training.synthesis_cli import build_parser as train_parser
from tests.demo_calls import recorded_run


def _run(tmp_path: Path, failing_task: str | None = None):
    def training_code(argv):
        return 1 if argv[argv.index("--task") + 1] == failing_task else 0

    return recorded_run(demo_synthesis.run, tmp_path, training_code)


def test_tracers_then_training_then_each_synthesis_run(tmp_path):
    code, app_calls, train_calls = _run(tmp_path)
    assert code == 0
    assert [call[call.index("--tracer") + 1] for call in app_calls[:2]] == ["FDG", "PBR28"]
    assert sorted(call[call.index("--task") + 1] for call in train_calls) == sorted(
        [*demo_synthesis.WIDTHS, "tau-from-t1w"]
    )
    diffusion_training = train_calls[-1]
    assert diffusion_training[diffusion_training.index("--architecture") + 1] == "diffusion"
    assert diffusion_training[diffusion_training.index("--bids-dir") + 1] == str(tmp_path / "bids")
    t1w_run, fdg_run, diffusion_run = app_calls[2:]
    assert diffusion_run[diffusion_run.index("--synthesis-architecture") + 1] == "diffusion"
    assert diffusion_run[diffusion_run.index("--synthesis-model") + 1] == str(
        tmp_path / "models" / demo_synthesis.DIFFUSION / "bundle"
    )
    assert "--tracer" not in t1w_run
    assert t1w_run[t1w_run.index("--synthesize") + 1 : t1w_run.index("--synthesis-model")] == [
        "tau-from-t1w",
        "tspo-from-t1w",
    ]
    assert str(tmp_path / "models" / "tau-from-fdg" / "bundle") in fdg_run
    assert fdg_run[fdg_run.index("--tracer") + 1] == "FDG"


def test_every_command_line_parses(tmp_path):
    """The demo's app and training command lines are valid for their parsers (the bundles do
    not exist here, so the app's are parsed without their --synthesis-model check)."""
    _, app_calls, train_calls = _run(tmp_path)
    for argv in app_calls:
        cut = argv.index("--synthesis-model") if "--synthesis-model" in argv else len(argv)
        build_parser().parse_args(argv[:cut])
    for argv in train_calls:
        train_parser().parse_args(argv[1:])


def test_a_failed_training_leaves_its_task_out(tmp_path):
    code, app_calls, _ = _run(tmp_path, failing_task="tau-from-fdg")
    assert code == 1
    assert len(app_calls) == 4
    assert not any("tau-from-fdg" in call for call in app_calls)
