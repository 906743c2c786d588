"""Write outputs under a temporary name and rename them into place only when complete."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from roofseg.errors import RoofsegError

TMP_SUFFIX = ".partial"


def temp_path(path: str | os.PathLike, keep_suffix: bool = False) -> Path:
    """The temporary name an output is written under: same folder, so the rename is atomic.

    ``keep_suffix`` ends it with the output's suffixes too (``.weights.h5``), for writers that
    choose a format by them.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}{extensions(path.name) if keep_suffix else ''}")


def extensions(name: str) -> str:
    """The extensions that end ``name`` (``.weights.h5``, ``.tif``): the dotted parts at its end
    that look like one (up to 8 letters or digits). A name with dots of its own
    (``run-0.148-a.tif``) keeps ``.tif``: Path.suffixes would give ``.148-a.tif`` and make a
    temporary's name almost twice the output's, past the file system's 255 bytes for long names."""
    parts = name.split(".")[1:]
    kept = []
    for part in reversed(parts):
        if not (0 < len(part) <= 8 and part.isalnum()):
            break
        kept.append(part)
    return "".join(f".{p}" for p in reversed(kept))


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
        # a probe of its own, so threads checking the same folder at once do not delete each other's;
        # named with the process id, so a run killed while probing leaves a temporary the next run removes
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe.", suffix=f".{os.getpid()}{TMP_SUFFIX}"):
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
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n


#: the files a shapefile is made of besides the .shp: every one goes (and is uploaded) with it
SHAPEFILE_PARTS = (".shx", ".dbf", ".prj", ".cpg")


def parts_of(path: str | os.PathLike) -> list[Path]:
    """The files an output is: itself, and for a shapefile its side-car files."""
    path = Path(path)
    return [path] + ([path.with_suffix(s) for s in SHAPEFILE_PARTS] if path.suffix.lower() == ".shp" else [])


def staged_path(path: str | os.PathLike) -> Path:
    """The name an output of a set is written under until the whole set is complete
    (``.STEM.PID.partial.SUFFIX``: its suffix kept for writers that choose a format by it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}{TMP_SUFFIX}{path.suffix}")


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Ctrl-C (SIGINT) waits until the block is done, then interrupts as usual (main thread only)."""

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list = []
    previous = signal.signal(signal.SIGINT, lambda *args: caught.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def commit_outputs(staged: dict[Path, Path]) -> None:
    """Rename each staged output (final name → staged name, with its side-car files) into place,
    in order, so the last one can stand for the whole set; a Ctrl-C waits until all are renamed."""
    with deferred_interrupt():
        for final, tmp in staged.items():
            for src, dst in zip(parts_of(tmp), parts_of(final)):
                if src.exists():
                    os.replace(src, dst)
                elif dst != final:
                    dst.unlink(missing_ok=True)  # a side-car the new output has not: the old one would mislead


def discard_outputs(staged: dict[Path, Path]) -> None:
    """Delete staged outputs (and their side-car files) that will not be committed."""
    for tmp in staged.values():
        for part in parts_of(tmp):
            part.unlink(missing_ok=True)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_outputs(outputs: list[Path], inputs: list[str | os.PathLike], overwrite: bool) -> None:
    """Refuse outputs that exist (without ``overwrite``), lie in a missing or read-only folder,
    or are one of the inputs; remove the temporaries a killed run left for these outputs."""
    for p in outputs:
        for source in inputs:
            if p.exists() and os.path.exists(source) and os.path.samefile(p, source):
                raise RoofsegError(p, f"is an input of this run ({source}); choose another output")
        if p.exists() and not overwrite:
            raise RoofsegError(p, "exists; use --overwrite to replace it")
        ensure_writable_dir(p.parent)  # made where it does not exist yet, as every command makes its folders
        remove_stale_partials(p.parent, f"{p.stem}*")
        remove_stale_partials(p.parent, f".{p.stem}*")  # the temporaries of a staged set of outputs
