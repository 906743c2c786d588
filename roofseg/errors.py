"""The error type the command line turns into one line and a non-zero exit."""

from __future__ import annotations

import os


class RoofsegError(Exception):
    """A problem with the user's input or output, stated in one line naming the file."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)

    def __reduce__(self):  # so that errors raised in worker processes arrive whole
        return type(self), (self.path, self.problem)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (GDAL's can run to many), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
