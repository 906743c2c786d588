"""Output folders in object stores (s3://, gs://): written locally, then uploaded whole.

An object store has no rename and no lock. Each output is made in a local staging folder, as for
a local run, and uploaded once complete: an object appears whole or not at all, the object-store
equivalent of the rename. The staging folder is named after the URL, so a rerun on the same
machine resumes from it. GDAL reads the uploaded rasters back with its own /vsis3/ and /vsigs/.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from roofseg.errors import RoofsegError

_OBJECT_STORE = re.compile(r"^(s3|gs|gcs|az|abfs)://", re.IGNORECASE)


def is_object_store(path: str | os.PathLike) -> bool:
    return bool(_OBJECT_STORE.match(os.fspath(path)))


class RemoteFolder:
    """An output folder at ``url`` in an object store, with its local staging folder."""

    def __init__(self, url: str):
        try:
            # an optional extra, imported where it is used
            import fsspec
        except ImportError:
            raise RoofsegError(url, "object-store outputs need fsspec: pip install 'roofseg[cloud]'") from None
        self.url = url.rstrip("/")
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise RoofsegError(url, f"cannot write there ({exc}); pip install 'roofseg[cloud]'") from None
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        self.staging = Path(os.environ.get("ROOFSEG_STAGING", tempfile.gettempdir())) / "roofseg-staging" / digest
        self.staging.mkdir(parents=True, exist_ok=True)

    def key(self, name: str) -> str:
        return f"{self.root}/{name}"

    def exists(self, name: str) -> bool:
        try:
            return self.fs.exists(self.key(name))
        except OSError as exc:
            raise RoofsegError(self.url, f"cannot reach the object store ({exc})") from None

    def upload(self, name: str) -> None:
        """Upload staged file ``name`` (a path relative to the folder) to its object."""
        try:
            self.fs.put_file(str(self.staging / name), self.key(name))
        except OSError as exc:
            raise RoofsegError(f"{self.url}/{name}", f"upload failed ({exc})") from None

    def download(self, name: str) -> bool:
        """Fetch object ``name`` into the staging folder; False when there is none."""
        if not self.exists(name):
            return False
        target = self.staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fs.get_file(self.key(name), str(target))
        except OSError as exc:
            raise RoofsegError(f"{self.url}/{name}", f"download failed ({exc})") from None
        return True

    def listing(self, prefix: str) -> list[str]:
        """Names (relative to the folder) of the objects under ``prefix``."""
        try:
            found = self.fs.find(self.key(prefix))
        except FileNotFoundError:
            return []
        return [f[len(self.root) + 1 :] for f in found]

    def remove(self, name: str) -> None:
        self.fs.rm_file(self.key(name))

    def gdal_path(self, name: str) -> str:
        """``name`` as GDAL opens it (its /vsis3/ or /vsigs/ reader)."""
        return f"{self.url}/{name}"
