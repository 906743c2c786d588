"""GDAL errors that rasterio only logs, raised: a write that failed must not pass for one that worked.

When GDAL fails while flushing blocks or closing a file (a full disk, a file-size limit),
rasterio reports it to its logger and carries on, so a truncated GeoTIFF would be renamed to
its final name. :func:`raise_gdal_errors` listens to that logger around a write and raises.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Iterator

from roofseg.errors import RoofsegError

_MARK = "GDAL signalled an error"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        self.lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if _MARK in text:
            with self.lock:
                self.messages.append(text.split("msg=", 1)[-1].strip("'\""))


@contextlib.contextmanager
def raise_gdal_errors(path: str | os.PathLike) -> Iterator[None]:
    """Raise RoofsegError(path, …) after the block if GDAL signalled an error during it."""
    handler = _Collect()
    logger = logging.getLogger("rasterio")  # its modules' records (rasterio._env, ._err, …) reach it
    level = logger.level
    logger.addHandler(handler)
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    if handler.messages:
        raise RoofsegError(path, f"writing failed ({handler.messages[0]})")
