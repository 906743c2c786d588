"""Write outputs under a temporary name and rename them into place only when complete."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

from roofseg.errors import RoofsegError

TMP_SUFFIX = ".partial"


def temp_path(path: str | os.PathLike) -> Path:
    """The temporary name an output is written under: same folder, so the rename is atomic."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


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
        probe = temp_path(path / "write-probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RoofsegError(path, f"output folder is not writable ({exc.strerror or exc})") from None
    return path


def remove_stale_partials(folder: str | os.PathLike) -> int:
    """Delete temporaries a killed run left in ``folder``; return how many."""
    n = 0
    for p in Path(folder).glob(f".*{TMP_SUFFIX}"):
        p.unlink(missing_ok=True)
        n += 1
    return n
