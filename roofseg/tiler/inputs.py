"""What to tile: scenes with their labels, from files, folders or a text list; or a folder pair."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from roofseg.errors import RoofsegError
from roofseg.raster.labels import VECTOR_SUFFIXES

SCENE_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
_ROLE = re.compile(r"[_-](image|img|rgb|ortho)$", re.IGNORECASE)
_MASKLIKE = re.compile(r"[_-](mask|labels?|gt)(_\w+)?$", re.IGNORECASE)

LABEL_RULE = (
    "For a scene NAME.tif (or NAME_image.tif) the labels are looked for beside it as "
    "NAME_mask.tif, then NAME_labels*.{geojson,gpkg,shp} or NAME.{geojson,gpkg,shp}"
)


@dataclass(frozen=True)
class SceneInput:
    """A scene to tile and its labels (a mask raster or vector footprints)."""

    id: str
    image: str
    labels: str


@dataclass(frozen=True)
class FolderItem:
    """An image/mask pair of the folder layout ``images/NAME.ext`` + ``masks/NAME.ext``."""

    id: str
    image: str
    mask: str


def is_folder_pair(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "images").is_dir() and (p / "masks").is_dir()


def folder_items(folder: str | Path) -> list[FolderItem]:
    """The image/mask pairs of ``folder/images`` and ``folder/masks``, matched by file stem."""
    folder = Path(folder)
    masks = {p.stem: p for p in sorted((folder / "masks").iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    items = []
    for img in sorted((folder / "images").iterdir()):
        if img.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        mask = masks.get(img.stem)
        if mask is None:
            raise RoofsegError(img, f"has no mask of the same name in {folder / 'masks'}")
        items.append(FolderItem(img.stem, str(img), str(mask)))
    if not items:
        raise RoofsegError(folder / "images", f"holds no image ({', '.join(IMAGE_SUFFIXES)})")
    return items


def _find_labels(image: Path, prefer: str) -> str:
    base = _ROLE.sub("", image.stem)
    folder = image.parent
    masks = [folder / f"{base}_mask{s}" for s in (".tif", ".tiff")]
    vectors = [p for s in VECTOR_SUFFIXES for p in sorted(folder.glob(f"{base}_labels*{s}"))]
    vectors += [folder / f"{base}{s}" for s in VECTOR_SUFFIXES]
    ordered = masks + vectors if prefer == "mask" else vectors + masks
    for candidate in ordered:
        if candidate.is_file() and candidate != image:
            return str(candidate)
    raise RoofsegError(image, f"no labels found beside it ({LABEL_RULE}); give them with --labels")


def _expand(entry: str) -> list[tuple[Path, str | None]]:
    p = Path(entry)
    if p.is_dir():
        scenes = [f for f in sorted(p.iterdir()) if f.suffix.lower() in SCENE_SUFFIXES and not _MASKLIKE.search(f.stem)]
        if not scenes:
            raise RoofsegError(p, "holds no scene (.tif/.tiff/.vrt/.img/.jp2)")
        return [(f, None) for f in scenes]
    if p.suffix.lower() == ".txt":
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
    if not p.exists():
        raise RoofsegError(p, "no such file or folder")
    return [(p, None)]


def scene_inputs(entries: Sequence[str], labels: Sequence[str] = (), prefer: str = "mask") -> list[SceneInput]:
    """Resolve scene files, folders and lists to scenes with labels, each with a unique id."""
    pairs = [pair for e in entries for pair in _expand(e)]
    if labels:
        if len(labels) != len(pairs):
            raise RoofsegError(None, f"--labels was given {len(labels)} times for {len(pairs)} scenes; give it once per scene, in order")
        pairs = [(img, lab) for (img, _), lab in zip(pairs, labels)]
    out, seen = [], {}
    for img, lab in pairs:
        if not img.is_file():
            raise RoofsegError(img, "no such file")
        lab = lab or _find_labels(img, prefer)
        if not Path(lab).is_file():
            raise RoofsegError(lab, "no such labels file")
        sid = _ROLE.sub("", img.stem)
        seen[sid] = seen.get(sid, 0) + 1
        if seen[sid] > 1:
            sid = f"{sid}-{seen[sid]}"
        out.append(SceneInput(sid, str(img), str(lab)))
    return out
