"""Write outputs under a temporary name and rename them into place only when complete."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from roofseg.errors import RoofsegError

TMP_SUFFIX = ".partial"


def temp_path(path: str | os.PathLike, keep_suffix: bool = False) -> Path:
    """The temporary name an output is written under: same folder, so the rename is atomic.

    ``keep_suffix`` ends it with the output's suffixes too (``.weights.h5``), for writers that
    choose a format by them.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}{''.join(path.suffixes) if keep_suffix else ''}")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; rename it to ``path`` if the block succeeds, delete it if not."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and prove a file can be written there, or raise RoofsegError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        # a probe of its own, so threads checking the same folder at once do not delete each other's
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe.", suffix=TMP_SUFFIX):
            pass
    except OSError as exc:
        raise RoofsegError(path, f"output folder is not writable ({exc.strerror or exc})") from None
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process has not written it yet: a leftover of an earlier run with our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_partials(folder: str | os.PathLike, name: str = "*") -> int:
    """Delete the temporaries of outputs named ``name`` (a glob) that a dead run left in ``folder``.

    A temporary is named ``.NAME.PID.partial[...]``; one whose process still runs belongs to a
    live run and is kept. Returns how many were deleted.
    """
    n = 0
    for p in Path(folder).glob(f".{name}.*{TMP_SUFFIX}*"):
        stem = p.name.split(TMP_SUFFIX)[0]
        try:
            pid = int(stem.rsplit(".", 1)[1])
        except (IndexError, ValueError):
            continue
        if _pid_alive(pid):
            continue
        p.unlink(missing_ok=True)
        n += 1
    return n
