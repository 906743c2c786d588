"""What to tile: scenes with their labels (see :mod:`roofseg.scenes` for the inputs); or a folder pair."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from roofseg.errors import RoofsegError
from roofseg.raster.labels import VECTOR_SUFFIXES
from roofseg.scenes import ROLE, expand, is_remote, scene_ids
from roofseg.stac import StacChoice

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")

LABEL_RULE = (
    "For a scene NAME.tif (or NAME_image.tif) the labels are looked for beside it as "
    "NAME_mask.tif, then NAME_labels*.{geojson,gpkg,shp,fgb,osm} or NAME.{geojson,gpkg,shp,fgb,osm,osm.pbf}"
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


def find_labels(image: Path, prefer: str, advice: str = "give them with --labels") -> str:
    """The labels beside ``image`` (see LABEL_RULE), masks or footprints first as ``prefer`` says;
    where there are none, a RoofsegError ending in ``advice`` (what the command lets the user do)."""
    base = ROLE.sub("", image.stem)
    folder = image.parent
    masks = [folder / f"{base}_mask{s}" for s in (".tif", ".tiff")]
    vectors = [p for s in VECTOR_SUFFIXES for p in sorted(folder.glob(f"{base}_labels*{s}"))]
    vectors += [folder / f"{base}{s}" for s in VECTOR_SUFFIXES + (".osm.pbf",)]
    ordered = masks + vectors if prefer == "mask" else vectors + masks
    for candidate in ordered:
        if candidate.is_file() and candidate != image:
            return str(candidate)
    raise RoofsegError(image, f"no labels found beside it ({LABEL_RULE}); {advice}")


def scene_inputs(
    entries: Sequence[str], labels: Sequence[str] = (), prefer: str = "vector", stac: StacChoice = StacChoice()
) -> list[SceneInput]:
    """Resolve scene files, folders, lists, URLs and STAC objects to scenes with labels, each with a unique id."""
    refs = [ref for e in entries for ref in expand(e, stac)]
    if labels:
        if len(labels) != len(refs):
            raise RoofsegError(
                None, f"--labels was given {len(labels)} times for {len(refs)} scenes; give it once per scene, in order"
            )
        refs = [(img, lab, sid) for (img, _, sid), lab in zip(refs, labels)]
    out = []
    ids = scene_ids([img for img, _, _ in refs], [sid for _, _, sid in refs])
    for sid, (img, lab, _) in zip(ids, refs):
        if not is_remote(img) and not Path(img).is_file():
            raise RoofsegError(img, "no such file")
        if lab is None and is_remote(img):
            raise RoofsegError(
                img,
                "a remote scene needs its labels named (--labels, 'IMAGE LABELS' in a .txt list, "
                "or a STAC labels asset)",
            )
        lab = lab or find_labels(Path(img), prefer)
        if not is_remote(lab) and not Path(lab).is_file():
            raise RoofsegError(lab, "no such labels file")
        out.append(SceneInput(sid, img, lab))
    return out
