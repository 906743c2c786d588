"""Which scenes a command is given: files, folders, ``.txt`` lists and glob patterns.

Shared by the tiler and the predictor, so both accept the same inputs and give a scene the
same id.
"""

from __future__ import annotations

import glob
import re
from collections import Counter
from pathlib import Path
from typing import Sequence

from roofseg.errors import RoofsegError

SCENE_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
ROLE = re.compile(r"[_-](image|img|rgb|ortho)$", re.IGNORECASE)
MASKLIKE = re.compile(r"[_-](mask|labels?|gt)(_\w+)?$", re.IGNORECASE)
_GLOB = re.compile(r"[*?\[]")


def expand(entry: str) -> list[tuple[Path, str | None]]:
    """(scene, labels or None) for one input: a scene file, a folder of scenes, a ``.txt`` list
    of 'IMAGE [LABELS]' lines (relative to the list), or a glob pattern ('scenes/*.tif')."""
    p = Path(entry)
    if not p.exists() and _GLOB.search(entry):
        matches = sorted(glob.glob(entry, recursive=True))
        if not matches:
            raise RoofsegError(entry, "the pattern matches no file")
        return [pair for m in matches for pair in expand(m)]
    if p.is_dir():
        scenes = [f for f in sorted(p.iterdir()) if f.suffix.lower() in SCENE_SUFFIXES and not MASKLIKE.search(f.stem)]
        if not scenes:
            raise RoofsegError(p, f"holds no scene ({'/'.join(SCENE_SUFFIXES)})")
        return [(f, None) for f in scenes]
    if p.suffix.lower() == ".txt":
        return _scene_list(p)
    if not p.exists():
        raise RoofsegError(p, "no such file or folder")
    return [(p, None)]


def _scene_list(p: Path) -> list[tuple[Path, str | None]]:
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
        paths = [Path(x) if Path(x).is_absolute() else p.parent / x for x in parts]
        out.append((paths[0], str(paths[1]) if len(paths) == 2 else None))
    if not out:
        raise RoofsegError(p, "the scene list names no scene")
    return out


def scene_ids(images: Sequence[Path]) -> list[str]:
    """A unique id per scene: its file name without suffix and role word ('_image', '_rgb', …);
    a name seen before gets '-2', '-3', … in order."""
    seen: Counter = Counter()
    ids = []
    for img in images:
        sid = ROLE.sub("", img.stem)
        seen[sid] += 1
        ids.append(sid if seen[sid] == 1 else f"{sid}-{seen[sid]}")
    return ids


def scene_files(entries: Sequence[str]) -> list[tuple[str, Path]]:
    """(id, scene file) for every scene the entries name, in order; each file once."""
    images = list(dict.fromkeys(img for e in entries for img, _ in expand(e)))
    for img in images:
        if not img.is_file():
            raise RoofsegError(img, "no such file")
    return list(zip(scene_ids(images), images))
