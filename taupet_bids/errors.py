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


def report_unexpected(program: str, error: BaseException, folder: Path | None = None) -> int:
    """Say an unforeseen error (a bug) in one line; keep its traceback in a file; return 2.

    The traceback goes to ``folder`` when it exists (the run's ``logs/``), else to the
    temporary folder, so a user can attach it to a bug report without seeing it in the
    terminal.
    """
    import os
    import sys
    import tempfile
    import time
    import traceback

    from taupet_bids import __version__

    trace = "".join(traceback.format_exception(error))
    where = folder if folder is not None and folder.is_dir() else Path(tempfile.gettempdir())
    crash = where / f"{program}-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    try:
        crash.write_text(f"{program} {__version__}\n{trace}")
        saved = f"the traceback is in {crash}; please report it with that file"
    except OSError:
        saved = "the traceback could not be saved"
    lines = str(error).splitlines()
    print(
        f"{program}: internal error ({type(error).__name__}: {lines[0] if lines else ''}); "
        f"this is a bug, {saved}",
        file=sys.stderr,
    )
    return 2
