"""GDAL errors that rasterio only logs, raised: a write that failed must not pass for one that worked.

When GDAL fails while flushing blocks or closing a file (a full disk, a file-size limit),
rasterio reports it to its logger and carries on, so a truncated GeoTIFF would be renamed to
its final name. :func:`raise_gdal_errors` listens to that logger around a write and raises.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

from rasterio.errors import RasterioError

from roofseg.errors import RoofsegError, first_line

_MARK = "GDAL signalled an error"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:  # Handler.handle holds the handler's lock
        text = record.getMessage()
        if _MARK in text:
            self.messages.append(text.split("msg=", 1)[-1].strip("'\""))


@contextlib.contextmanager
def _native_stderr_captured(sink) -> Iterator[None]:
    """Send what C libraries print to file descriptor 2 into ``sink``; Python's sys.stderr
    (progress bars, warnings) still reaches the terminal. A no-op where stderr is not fd 2."""
    try:
        sys.stderr.flush()
        real = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if not real:
        yield
        return
    saved = os.dup(2)
    python_stderr = sys.stderr
    sys.stderr = io.TextIOWrapper(
        io.FileIO(os.dup(saved), "w"), encoding=python_stderr.encoding, errors="backslashreplace", write_through=True
    )
    os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr.close()
        sys.stderr = python_stderr


@contextlib.contextmanager
def raise_gdal_errors(path: str | os.PathLike) -> Iterator[None]:
    """Raise RoofsegError(path, …) if GDAL signalled an error during the block, or rasterio raised one.

    Only for blocks that write ``path``: the message names it, with GDAL's own reason (such as
    "File too large" or "No space left on device") where GDAL gave one. What libtiff prints
    straight to stderr meanwhile is kept out of the terminal and joins the reason. Progress
    bars shown meanwhile write to :func:`terminal`.
    """

    handler = _Collect()
    logger = logging.getLogger("rasterio")  # its modules' records (rasterio._env, ._err, …) reach it
    level = logger.level
    logger.addHandler(handler)
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    with tempfile.TemporaryFile() as printed:
        try:
            with _native_stderr_captured(printed):
                yield
        except RasterioError as exc:
            raise RoofsegError(path, f"writing failed ({_reason(handler, printed) or first_line(exc)})") from None
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
        reason = _reason(handler, printed)
    if reason:
        raise RoofsegError(path, f"writing failed ({reason})")


def _reason(handler: _Collect, printed) -> str:
    printed.seek(0)
    lines = [ln.strip() for ln in printed.read().decode(errors="replace").splitlines() if ln.strip()]
    return "; ".join(dict.fromkeys(lines[:1] + handler.messages[:1]))
