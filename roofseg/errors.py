"""The error type the command line turns into one line and a non-zero exit."""

from __future__ import annotations

import os
import sys


class RoofsegError(Exception):
    """A problem with the user's input or output, stated in one line naming the file."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)

    def __reduce__(self):  # so that errors raised in worker processes arrive whole
        return type(self), (self.path, self.problem)


class RoofsegWarning(UserWarning):
    """Something the user should know, in roofseg's words, naming the file: said in one line."""


class BatchError(RoofsegError):
    """Some items of a batch failed (the others were done): one line per failed item, and the
    count, with where the failures are recorded (``path``)."""

    def __init__(self, path: str | os.PathLike | None, failures: list[str], total: int, what: str = "scenes"):
        self.failures, self.total, self.what = list(failures), total, what
        super().__init__(path, f"{len(self.failures)} of {total} {what} failed (a rerun retries only those)")

    def __reduce__(self):
        return type(self), (self.path, self.failures, self.total, self.what)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (GDAL's can run to many), or its type's name.

    A TensorFlow OpError's own text (``.message``) is taken, without the op's traceback.
    """
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _expected_types() -> tuple[type, ...]:
    """Exception types of the I/O libraries that mean a failed input or output, not a bug.

    Looked up in sys.modules, so this never imports TensorFlow or GDAL just to name an error.
    """

    types: list[type] = [OSError, MemoryError]
    for module, names in (
        ("rasterio.errors", ("RasterioError", "CRSError", "WindowError")),
        ("fiona.errors", ("FionaError", "DriverError")),
        ("pyproj.exceptions", ("ProjError", "CRSError")),
        ("tensorflow", ()),
    ):
        mod = sys.modules.get(module)
        if mod is None:
            continue
        if module == "tensorflow":
            types.append(mod.errors.OpError)
        types += [getattr(mod, n) for n in names if isinstance(getattr(mod, n, None), type)]
    return tuple(types)


def failure_line(exc: BaseException) -> str | None:
    """The one line an expected failure ends the command with, or None for an unexpected one (a bug).

    RoofsegError says its file itself; an OSError (h5py's too) names its file; a TensorFlow
    OpError, GDAL/rasterio, fiona or PROJ error gives its first line, which names the file
    where the library knows it.
    """
    if isinstance(exc, RoofsegError):
        return str(exc)
    if not isinstance(exc, _expected_types()):
        return None
    if isinstance(exc, OSError) and exc.strerror:
        name = exc.filename if exc.filename is not None else None
        return f"{name}: {exc.strerror}" if name else exc.strerror
    return f"{type(exc).__name__}: {first_line(exc)}"
