"""The ``NAME/N`` stamp of roofseg's files: which release wrote them, and which this one reads."""

from __future__ import annotations

import os

from roofseg.errors import RoofsegError


def stamp(name: str, version: int) -> str:
    """The format stamp a file of kind ``name`` written in ``version`` carries: ``name/version``."""
    return f"{name}/{version}"


def version_of(value: object, name: str, newest: int, path: str | os.PathLike | None, default: int = 1) -> int:
    """The version of a file of kind ``name`` from its ``format`` stamp (``default`` when it has
    none: files from before the stamp), or a RoofsegError naming ``path`` for another kind of file
    or a version newer than ``newest``, the one this release writes."""
    if value is None:
        return default
    kind, _, number = str(value).partition("/")
    if kind != name or not number.isdigit():
        raise RoofsegError(path, f"is not a {name} file (its format is {value!r})")
    version = int(number)
    if version > newest:
        raise RoofsegError(
            path,
            f"was written by a newer roofseg ({value}); this release reads up to "
            f"{stamp(name, newest)}: upgrade roofseg (pip install -U roofseg)",
        )
    return version
