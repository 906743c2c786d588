"""One writer per output folder: an advisory lock that the system releases when its process dies."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from roofseg.errors import RoofsegError

LOCK_NAME = ".roofseg.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` for the block, or raise RoofsegError if a live run holds it.

    ``flock`` locks belong to the open file: a killed run leaves the file but not the lock, so
    the next run goes on, while two live runs never write one folder at once. The file is
    removed when the block ends.
    """
    path = Path(folder) / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RoofsegError(folder, f"cannot create its lock file ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RoofsegError(
                folder,
                f"another roofseg run (pid {holder}) is writing this folder; "
                "wait for it to finish or choose another output",
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file as we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        path.unlink(missing_ok=True)  # while still locked, so no one locks a file about to vanish
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
