"""One run per work folder: ``<work>/.taupet-bids.lock``, held (flock) until the process ends.

Two runs on one work folder would reset each other's staging folders and race on Nipype's
caches. The second one refuses with the PID of the first, which the lock file holds.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from taupet_bids.errors import InputError

LOCK_NAME = ".taupet-bids.lock"

#: The open lock file of this process: kept open, so the lock lasts as long as the run.
_HELD: dict[Path, int] = {}


def lock_work_folder(work_dir: Path) -> Path:
    """Create the work folder if needed and lock it for this run, or raise one clear line.

    Raises :class:`InputError` when the folder cannot be written or another run holds it.
    """
    work_dir = Path(work_dir)
    if work_dir in _HELD:
        return work_dir / LOCK_NAME
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(work_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise InputError(
            work_dir,
            f"cannot write to the work folder {work_dir} ({error.strerror})",
            "choose a folder you can write to with --work-dir",
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise InputError(
            work_dir,
            f"another taupet-bids run (PID {holder}) is using the work folder {work_dir}",
            "wait for it to finish, or give this run its own --work-dir",
        ) from None
    except OSError as error:  # a file system without flock: run unlocked rather than not at all
        if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            os.close(fd)
            raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as error:
        os.close(fd)
        raise InputError(
            work_dir,
            f"cannot write to the work folder {work_dir} ({error.strerror})",
            "choose a folder you can write to with --work-dir",
        ) from None
    _HELD[work_dir] = fd
    return work_dir / LOCK_NAME


def release_work_folder(work_dir: Path) -> None:
    """Let the work folder go (the end of the process does the same)."""
    fd = _HELD.pop(Path(work_dir), None)
    if fd is not None:
        os.close(fd)
