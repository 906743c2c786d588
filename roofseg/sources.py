"""Where a model comes from: a file, ``base`` (the model that ships inside roofseg), or a URL
pinned by its SHA-256 (``https://…/base.keras#sha256=HEX``, also s3:// and gs://), as pip pins
hashes. Every command that takes a model resolves it here, to a local ``.keras`` file.

Downloads and the float32 copy of the shipped base are kept in a cache folder
(``$ROOFSEG_CACHE``, else ``~/.cache/roofseg``), named by their SHA-256, written under a temporary
name and renamed only once checked: a wrong pin or a cut-short download leaves nothing behind.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from roofseg.atomic import file_sha256, remove_stale_partials, temp_path
from roofseg.errors import RoofsegError, first_line

BASE = "base"
SHIPPED = Path(__file__).resolve().parent / "models" / "base.keras"  # float16 weights and the card
_URL = re.compile(r"^(https?|s3|gs|gcs)://", re.IGNORECASE)
_PIN = re.compile(r"^sha256=([0-9a-fA-F]{64})$")


def cache_dir() -> Path:
    """Where downloaded models and the shipped base's float32 copy are kept."""
    root = os.environ.get("ROOFSEG_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "roofseg")
    return Path(root)


def is_url(spec: str) -> bool:
    return bool(_URL.match(spec))


def model_file(spec: str | os.PathLike) -> str:
    """The local ``.keras`` file that ``spec`` names: ``base``, a pinned URL, or a path (as it is)."""
    spec = os.fspath(spec)
    if spec == BASE:
        return shipped_base()
    if is_url(spec):
        return fetched(spec)
    return spec


def pinned(url: str) -> tuple[str, str]:
    """The address and the pinned SHA-256 (lower-case hex) of ``URL#sha256=HEX``; a RoofsegError
    for a URL without a pin (a model must be the one the team meant, byte for byte)."""
    address, _, fragment = url.partition("#")
    match = _PIN.match(fragment)
    if not match:
        raise RoofsegError(
            url,
            "a model URL must be pinned by its SHA-256: URL#sha256=HEX (sha256sum FILE gives it)",
        )
    return address, match.group(1).lower()


def _download(address: str, to: Path) -> None:
    if address.lower().startswith(("http://", "https://")):
        with urllib.request.urlopen(address, timeout=60) as response, open(to, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        return
    try:
        # an optional extra, imported where it is used
        import fsspec
    except ImportError:
        raise RoofsegError(address, "s3:// and gs:// models need fsspec: pip install 'roofseg[cloud]'") from None
    with fsspec.open(address, "rb") as response, open(to, "wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)


def fetched(url: str) -> str:
    """The cached copy of the model at a pinned ``url``, downloaded once and checked against the pin."""
    address, sha = pinned(url)
    folder = cache_dir() / "models"
    final = folder / f"{sha}.keras"
    if final.is_file() and file_sha256(final) == sha:
        return str(final)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(folder)  # what a killed download left
    tmp = temp_path(final)
    try:
        try:
            _download(address, tmp)
        except (OSError, urllib.error.URLError, ValueError, http.client.HTTPException) as exc:  # IncompleteRead too
            raise RoofsegError(url, f"download failed ({first_line(exc)}); nothing was kept") from None
        got = file_sha256(tmp)
        if got != sha:
            raise RoofsegError(
                url,
                f"the download's SHA-256 is {got}, not the pinned one (a cut-short download, or another file); "
                "nothing was kept",
            )
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return str(final)


def shipped_base() -> str:
    """The model that ships with roofseg, as a float32 ``.keras`` file (expanded once into the cache)."""
    if not SHIPPED.is_file():
        raise RoofsegError(
            SHIPPED, "this roofseg was installed without its base model; reinstall it, or build one with `make base`"
        )
    # here, not at the top: TensorFlow only when a model is used
    from roofseg.training.shipping import expand, expanded_from

    sha = file_sha256(SHIPPED)
    final = cache_dir() / "base" / f"base-{sha[:16]}.keras"
    if final.is_file() and expanded_from(final):  # an expansion of before it named its source is made again
        return str(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(final.parent)  # what a killed expansion left
    tmp = temp_path(final, keep_suffix=True)
    try:
        expand(SHIPPED, tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return str(final)
