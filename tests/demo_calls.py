"""A demo sequence run with its app and trainer replaced by recorders of their command lines,
for the demo tests (the real entry points run in the command-line tests and the demo itself)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def recorded_run(
    demo_run: Callable, tmp_path: Path, training_code: Callable[[list[str]], int] = lambda argv: 0
) -> tuple[int, list[list[str]], list[list[str]]]:
    """(exit code, app command lines, trainer command lines) of ``demo_run`` on ``tmp_path``;
    every app call succeeds, a training call returns ``training_code(argv)``."""
    app_calls, train_calls = [], []

    def run_app(argv):
        app_calls.append(argv)
        return 0

    def train(argv):
        train_calls.append(argv)
        return training_code(argv)

    folders = (tmp_path / name for name in ("bids", "out", "work", "models"))
    code = demo_run(*folders, run_app, train)
    return code, app_calls, train_calls
