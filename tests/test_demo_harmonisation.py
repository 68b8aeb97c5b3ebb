"""The demo's harmonisation sequence: train on the demo's own pairs, then ``--harmonize auto``
with that bundle; a failed training harmonises nothing and says so. The app and the trainer
record their command lines here (the real ones run in ``python -m taupet_bids.demo DIR
--harmonize`` and in tests/test_harmonize_cli.py)."""

from __future__ import annotations

from pathlib import Path

from taupet_bids import demo_harmonisation
from taupet_bids.cli.parser import build_parser
from taupet_bids.simulate.cli import build_parser as simulate_parser
from taupet_bids.training.harmoniser_cli import build_parser as train_parser
from tests.demo_calls import recorded_run


def _run(tmp_path: Path, training_code: int = 0):
    return recorded_run(demo_harmonisation.run, tmp_path, lambda argv: training_code)


def test_training_on_the_demo_then_harmonising_with_its_bundle(tmp_path):
    code, app_calls, train_calls = _run(tmp_path)
    assert code == 0
    (training,) = train_calls
    assert training[0] == "harmoniser" and training[1] == str(tmp_path / "out")
    assert training[training.index("--bids-dir") + 1] == str(tmp_path / "bids")
    (harmonising,) = app_calls
    assert harmonising[harmonising.index("--harmonize") + 1] == "auto"
    bundle = tmp_path / "models" / "harmoniser" / "bundle"
    assert harmonising[harmonising.index("--harmonization-model") + 1] == str(bundle)
    assert harmonising[harmonising.index("-w") + 1] == str(tmp_path / "work")


def test_every_command_line_parses(tmp_path):
    """The simulator, trainer and app command lines are valid for their parsers (the bundle
    does not exist here, so the app's is parsed without its --harmonization-model check)."""
    _, app_calls, train_calls = _run(tmp_path)
    simulate_parser().parse_args(["BIDS", *demo_harmonisation.SIMULATE_OPTIONS])
    args = train_parser().parse_args(train_calls[0][1:])
    assert args.steps == demo_harmonisation.STEPS and args.conditioning == "ct"
    argv = app_calls[0]
    build_parser().parse_args(argv[: argv.index("--harmonization-model")])


def test_a_failed_training_harmonises_nothing(tmp_path, capsys):
    code, app_calls, _ = _run(tmp_path, training_code=2)
    assert code == 1 and app_calls == []
    assert "no scan is harmonised" in capsys.readouterr().out
