"""Which scenes a command is given: files, folders, ``.txt`` lists, glob patterns and URLs.

Shared by the tiler and the predictor, so both accept the same inputs and give a scene the
same id. A URL (http(s)://, s3://, gs://, …) or GDAL virtual path (/vsicurl/…) is passed to
GDAL as it is and read window by window with range requests, never downloaded whole.
"""

from __future__ import annotations

import glob
import os
import re
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from roofseg.errors import RoofsegError
from roofseg.stac import StacChoice, looks_like_stac, stac_scenes

SCENE_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
ROLE = re.compile(r"[_-](image|img|rgb|ortho)$", re.IGNORECASE)
MASKLIKE = re.compile(r"[_-](mask|labels?|gt)(_\w+)?$", re.IGNORECASE)
_GLOB = re.compile(r"[*?\[]")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_remote(path: str) -> bool:
    """True for a URL or a GDAL virtual file system path, which only GDAL can open."""
    return bool(_URL.match(str(path))) or str(path).startswith("/vsi")


def name_of(path: str) -> PurePosixPath:
    """The file name part of a path or URL (a URL's query string left out)."""
    path = str(path)
    return PurePosixPath(urlsplit(path).path if _URL.match(path) else path)


def suffix_of(path: str) -> str:
    """The lower-case suffix of a path or URL: '.tif' for 'https://host/a.tif?sig=…'."""
    return name_of(path).suffix.lower()


def expand(entry: str, stac: StacChoice = StacChoice()) -> list[tuple[str, str | None, str | None]]:
    """(scene, labels or None, id or None) for one input: a scene file or URL, a folder of scenes,
    a ``.txt`` list of 'IMAGE [LABELS]' lines (paths relative to the list, or URLs), a glob
    pattern ('scenes/*.tif'), or a STAC Item, ItemCollection, Catalog or Collection (a file or
    URL; each item a scene named by its id, its assets chosen by ``stac``)."""
    entry = str(entry)
    if looks_like_stac(entry):
        return [(s.image, s.labels, s.id) for s in stac_scenes(entry, stac)]
    if is_remote(entry):
        return [(entry, None, None)]
    p = Path(entry)
    if not p.exists() and _GLOB.search(entry):
        matches = sorted(glob.glob(entry, recursive=True))
        if not matches:
            raise RoofsegError(entry, "the pattern matches no file")
        return [ref for m in matches for ref in expand(m, stac)]
    if p.is_dir():
        scenes = [f for f in sorted(p.iterdir()) if f.suffix.lower() in SCENE_SUFFIXES and not MASKLIKE.search(f.stem)]
        if not scenes:
            raise RoofsegError(p, f"holds no scene ({'/'.join(SCENE_SUFFIXES)})")
        return [(str(f), None, None) for f in scenes]
    if p.suffix.lower() == ".txt":
        return _scene_list(p)
    if not p.exists():
        raise RoofsegError(p, "no such file or folder")
    return [(entry, None, None)]


def _scene_list(p: Path) -> list[tuple[str, str | None, None]]:
    try:
        lines = p.read_text().splitlines()
    except OSError as exc:
        raise RoofsegError(p, f"cannot read the scene list ({exc.strerror})") from None
    out = []
    for n, line in enumerate(lines, 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if len(parts) > 2:
            raise RoofsegError(p, f"line {n}: expected 'IMAGE [LABELS]', got {line.strip()!r}")
        paths = [x if is_remote(x) or Path(x).is_absolute() else str(p.parent / x) for x in parts]
        out.append((paths[0], paths[1] if len(paths) == 2 else None, None))
    if not out:
        raise RoofsegError(p, "the scene list names no scene")
    return out


def scene_ids(images: Sequence[str], given: Sequence[str | None] | None = None) -> list[str]:
    """A unique id per scene: the id ``given`` (a STAC item's), else its file name without suffix
    and role word ('_image', '_rgb', …); an id seen before gets '-2', '-3', … in order."""
    seen: Counter = Counter()
    ids = []
    for img, known in zip(images, given or [None] * len(images)):
        sid = known or ROLE.sub("", name_of(img).stem)
        seen[sid] += 1
        ids.append(sid if seen[sid] == 1 else f"{sid}-{seen[sid]}")
    return ids


def scene_files(
    entries: Sequence[str], stac: StacChoice = StacChoice(), set_aside: Callable[[str], bool] | None = None
) -> list[tuple[str, str]]:
    """(id, scene file or URL) for every scene the entries name, in order; each once. Files for
    which ``set_aside`` is true (a run's own outputs) are left out before the ids are chosen, so
    they never take a scene's name."""
    found = {img: sid for e in entries for img, _, sid in expand(e, stac)}
    if set_aside is not None:
        found = {img: sid for img, sid in found.items() if not set_aside(img)}
    for img in found:
        if not is_remote(img) and not Path(img).is_file():
            raise RoofsegError(img, "no such file")
    return list(zip(scene_ids(list(found), list(found.values())), found))


def file_signature(path: str) -> list:
    """What says an input changed: [size, modification time] of a file; of an http(s) URL, its
    Content-Length and ETag (or Last-Modified) by a HEAD request; [None, None] when unknown."""
    if not is_remote(path):
        try:
            st = os.stat(path)
        except OSError:
            return [None, None]
        return [st.st_size, st.st_mtime_ns]
    if not re.match(r"^https?://", path, re.IGNORECASE):
        return [None, None]
    try:
        with urllib.request.urlopen(urllib.request.Request(path, method="HEAD"), timeout=30) as r:
            return [r.headers.get("Content-Length"), r.headers.get("ETag") or r.headers.get("Last-Modified")]
    except OSError:
        return [None, None]  # opening the scene will say what is wrong
