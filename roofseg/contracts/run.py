"""A prediction folder's run record, ``predict.json``: the model and options its predictions were
made with. Each prediction raster carries the record's stamp (:mod:`roofseg.contracts.tags`), so a
scene made under another record is never taken as done.

Format history: ``roofseg-predictions/1``, the only one so far.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from roofseg.atomic import write_json
from roofseg.contracts.versions import stamp, version_of
from roofseg.errors import RoofsegError

NAME = "roofseg-predictions"
VERSION = 1
RUN_RECORD_FILE = "predict.json"


@dataclass(frozen=True)
class RunRecord:
    """What a folder's predictions were made with: the model file's identity, the options that
    change what is written, and the footprints' options (None: no footprints)."""

    model: dict | None
    options: dict
    vector: dict | None = None

    @property
    def stamp(self) -> str:
        """The digest every prediction raster made under this record carries."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def differences(self, other: RunRecord) -> list[str]:
        """The parts (model, options, vector) in which ``other`` differs from this record."""
        return [k for k in ("model", "options", "vector") if getattr(self, k) != getattr(other, k)]

    def to_dict(self) -> dict:
        return {"format": stamp(NAME, VERSION), "model": self.model, "options": self.options, "vector": self.vector}

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | os.PathLike | None = None) -> RunRecord:
        if not isinstance(data, dict):
            raise RoofsegError(path, "is not a prediction run record (not a JSON object)")
        version_of(data.get("format"), NAME, VERSION, path)
        return cls(data.get("model"), data.get("options") or {}, data.get("vector"))


def read_run_record(path: str | os.PathLike) -> RunRecord:
    """The run record at ``path``, or a RoofsegError saying it cannot be read."""
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as exc:
        raise RoofsegError(
            path, f"cannot read the run record ({exc}); use --overwrite to start the folder afresh"
        ) from None
    return RunRecord.from_dict(data, path)


def write_run_record(path: str | os.PathLike, record: RunRecord) -> None:
    """Write ``record`` to ``path`` atomically."""
    write_json(path, record.to_dict())
