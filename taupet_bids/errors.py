"""Exceptions taupet-bids raises on purpose.

A user who gets one of these should not need a traceback: the message is one line naming the
file, what is wrong with it and, where we know it, how to fix it. The CLI catches
``TaupetError`` and prints ``str(err)``.
"""

from __future__ import annotations

from pathlib import Path


class TaupetError(Exception):
    """Base class of every error taupet-bids raises deliberately."""


class InputError(TaupetError):
    """An input file (or the dataset as a whole) cannot be processed as it is.

    ``str()`` reads ``"<file name>: <problem>; <fix>"`` on a single line.
    """

    def __init__(self, path: str | Path | None, problem: str, fix: str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        self.fix = fix
        super().__init__(self._one_line())

    def _one_line(self) -> str:
        where = self.path.name if self.path is not None and self.path.name else str(self.path)
        text = f"{where}: {self.problem}" if self.path is not None else self.problem
        if self.fix:
            text = f"{text}; {self.fix}"
        return " ".join(text.split())
