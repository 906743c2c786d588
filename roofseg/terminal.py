"""The terminal that progress bars write to, apart from whatever captures standard error."""

from __future__ import annotations

import atexit
import io
import os
import sys
from typing import TextIO

_terminal: TextIO | None = None


def terminal() -> TextIO:
    """A stream on this process's stderr as it was before any capture. Progress bars write here,
    so catching what C libraries print to file descriptor 2 never swallows them (nor takes them
    for GDAL's words). Where stderr is not a file (a test's capture), sys.stderr itself."""
    global _terminal
    if _terminal is None:
        try:
            fd = os.dup(sys.stderr.fileno())
        except (AttributeError, OSError, ValueError):
            return sys.stderr
        _terminal = io.TextIOWrapper(
            io.FileIO(fd, "w"), encoding=sys.stderr.encoding or "utf-8", errors="backslashreplace", write_through=True
        )
        atexit.register(_terminal.close)
    return _terminal
