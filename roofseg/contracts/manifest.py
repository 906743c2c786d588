"""A tiling run's ``manifest.json``: which shards hold which split's tiles, and how they were made.

Format history:

- ``roofseg-tiles/1``: the splits, shards, targets, jobs and parameters.
- ``roofseg-tiles/2``: ``known``, whether the tiles carry a mask of the pixels whose label is known
  (tiles of a review; see roofseg.contracts.tile, layout 2); earlier: false. A job's ``review``
  (the store it was tiled from, its SHA-256 and counts); earlier: none. ``contact_m``: the border
  target's width in metres, drawn in each scene's px (``tile --contact-m``), and ``contact_px``
  px on a scene without a ground pixel size (0: none was allowed); absent or None: every scene's
  band is ``contact_px`` px wide.

Each job is a :class:`Job`; every key of it may be missing from an earlier manifest (its default
is set in :meth:`Job.from_dict`), and keys it does not know are kept in ``extra``.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from roofseg.atomic import write_json
from roofseg.contracts.sizes import DEFAULT_TILE_SIZE
from roofseg.contracts.targets import TARGETS
from roofseg.contracts.versions import stamp, version_of
from roofseg.errors import RoofsegError

NAME = "roofseg-tiles"
VERSION = 2
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Shard:
    """One TFRecord file and how many tiles it holds; ``path`` is relative to the manifest's folder
    (or a URL)."""

    path: str
    tiles: int


@dataclass(frozen=True)
class Split:
    """The tiles of one split (train, val or test)."""

    tiles: int = 0
    roof_fraction: float = 0.0
    shards: tuple[Shard, ...] = ()


#: name parts that say where in a place a scene lies, not which place: zooms, blocks, tile numbers
_NOT_PLACE = re.compile(r"^(z\d+|block\d+|\d+|image|chip|tile)$", re.IGNORECASE)
#: folder names that say what a folder holds, not which place
_NOT_PLACE_FOLDER = re.compile(r"^(images?|chips?|scenes?([-_].*)?|val[-_].*|train[-_].*|tiles?|masks?|data)$")


@dataclass(frozen=True)
class Job:
    """What one tiling job did: a scene (at one GSD), or a batch of folder images."""

    id: str
    tiles: dict[str, int] = field(default_factory=dict)  # tiles written per split
    skipped: dict[str, int] = field(default_factory=dict)  # windows skipped, by reason
    split: str | None = None  # "block", "image" (folder jobs), or the split the whole scene went to
    image: str | None = None  # the scene (scene jobs)
    labels: str | None = None
    images: tuple[str, ...] = ()  # the images (folder jobs)
    width: int | None = None  # the scene as tiled (resampled to gsd_m), px
    height: int | None = None
    crs: str | None = None
    dtype: str | None = None
    bands: tuple[int, ...] = ()
    gsd_m: float | None = None  # the ground pixel size it was tiled at
    source_gsd_m: float | None = None  # the scene's own
    place: str | None = None  # the place it shows, where the job states it (see place_of)
    review: dict | None = None  # tiled from a review: store, sha256, accept, reject, skip
    extra: dict = field(default_factory=dict, compare=False)

    def tiles_in(self, split: str) -> int:
        return int(self.tiles.get(split, 0))

    def to_dict(self) -> dict:
        out = {
            "id": self.id,
            "split": self.split,
            "tiles": dict(self.tiles),
            "skipped": dict(self.skipped),
        }
        if self.images:
            out["images"] = list(self.images)
        else:
            out.update(
                image=self.image,
                labels=self.labels,
                width=self.width,
                height=self.height,
                crs=self.crs,
                dtype=self.dtype,
                bands=list(self.bands),
                gsd_m=self.gsd_m,
                source_gsd_m=self.source_gsd_m,
            )
        if self.place is not None:
            out["place"] = self.place
        if self.review is not None:
            out["review"] = dict(self.review)
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(
            id=str(data.get("id") or ""),
            tiles={str(k): int(v) for k, v in (data.get("tiles") or {}).items()},
            skipped={str(k): int(v) for k, v in (data.get("skipped") or {}).items()},
            split=data.get("split"),
            image=data.get("image"),
            labels=data.get("labels"),
            images=tuple(str(i) for i in data.get("images") or ()),
            width=int(data["width"]) if data.get("width") is not None else None,
            height=int(data["height"]) if data.get("height") is not None else None,
            crs=data.get("crs"),
            dtype=data.get("dtype"),
            bands=tuple(int(b) for b in data.get("bands") or ()),
            gsd_m=float(data["gsd_m"]) if data.get("gsd_m") else None,
            source_gsd_m=float(data["source_gsd_m"]) if data.get("source_gsd_m") else None,
            place=data.get("place"),
            review=dict(data["review"]) if data.get("review") else None,
            extra={k: v for k, v in data.items() if k not in known},
        )


def place_of(job: Job) -> str:
    """The place a tiling job's scene shows, for drawing tiles balanced by place: the ``place``
    the job states, else the scene's name without its GSD, zoom, block and tile numbers
    (``hot_data2_z20_block1@0.15m`` → ``hot_data2``, ``OAM-1238448-1046528-21`` → ``OAM``), else
    (a name of numbers alone) the nearest folder named for a place."""
    if job.place:
        return str(job.place)
    name = job.id.split("@", 1)[0]
    words = [w for w in re.split(r"[-_.]", name) if w and not _NOT_PLACE.match(w)]
    if words:
        return "_".join(words)
    image = job.image or (job.images or ("",))[0]
    for folder in PurePosixPath(str(image)).parents:
        if folder.name and not _NOT_PLACE_FOLDER.match(folder.name):
            return folder.name
    return name or "unnamed"


def group_of(job: Job) -> str:
    """A job's place and ground pixel size: what a balanced draw gives equal shares to."""
    gsd = job.gsd_m
    return f"{place_of(job)}@{gsd:.2f}m" if gsd else place_of(job)


@dataclass(frozen=True)
class Manifest:
    """What a tiling run wrote (see the module's format history)."""

    splits: dict[str, Split]
    tile_size: int = DEFAULT_TILE_SIZE
    channels: int = 3
    compression: str | None = None
    split_mode: str = "block"
    tiles: int = 0
    roof_fraction: float = 0.0
    gsd_m: float | None = None  # the training tiles' median ground pixel size
    targets: tuple[str, ...] = TARGETS[:1]
    contact_px: int = 0
    contact_m: float | None = None  # the border band in metres, drawn in each scene's px (tile --contact-m)
    contact_kind: str | None = None  # outline, between or distance (the border target); None: between (older tilings)
    known: bool = False  # the tiles carry a known mask: the pixels outside it have no label (a review's tiles)
    jobs: tuple[Job, ...] = ()  # what each scene or folder job did
    params: dict = field(default_factory=dict)  # the tiling parameters

    def __post_init__(self):
        # tiles with a contact target state its kind: before kinds, between (its only kind)
        if self.contact_kind is None and TARGETS[1] in self.targets:
            object.__setattr__(self, "contact_kind", "between")

    @property
    def has_contact(self) -> bool:
        return TARGETS[1] in self.targets

    @property
    def bands(self) -> list[tuple[int, ...]]:
        """The band choices of the scenes, each once, sorted."""
        return sorted({j.bands for j in self.jobs if j.bands})

    @property
    def dtypes(self) -> list[str]:
        """The data types of the scenes, each once, sorted."""
        return sorted({j.dtype for j in self.jobs if j.dtype})

    @property
    def gsd_range(self) -> tuple[float, float] | None:
        """The finest and coarsest ground pixel size of the scenes that gave training tiles."""
        gsds = [j.gsd_m for j in self.jobs if j.gsd_m and j.tiles_in("train")]
        return (min(gsds), max(gsds)) if gsds else None

    @property
    def training_scenes(self) -> list[str]:
        """The ids of the jobs (scenes, or a scene at one GSD) that gave training tiles."""
        return [j.id for j in self.jobs if j.tiles_in("train")]

    def groups(self, split: str = "train") -> dict[str, list[Shard]]:
        """The shards of ``split`` by place and GSD (:func:`group_of`), each group in shard order.
        A shard belongs to the job whose id its file is named by (the tiler names shards so)."""
        by_job = {}
        for job in self.jobs:
            by_job[job.id] = group_of(job)
        out: dict[str, list[Shard]] = {}
        for shard in self.splits[split].shards if split in self.splits else ():
            stem = PurePosixPath(shard.path).name.rsplit("-", 1)[0]
            group = by_job.get(stem) or next((g for j, g in by_job.items() if stem.startswith(j)), stem)
            out.setdefault(group, []).append(shard)
        return out

    def shard_paths(self) -> list[str]:
        """Every shard of every split, as listed (relative to the manifest's folder)."""
        return [s.path for split in self.splits.values() for s in split.shards]

    def split(self, name: str, source: str | os.PathLike | None = None) -> Split:
        """The split ``name``, or a RoofsegError naming ``source`` (the manifest's file) if it has none."""
        if name not in self.splits:
            raise RoofsegError(source, f"has no split {name!r} (it has {', '.join(self.splits)})")
        return self.splits[name]

    def to_dict(self) -> dict:
        return {
            "format": stamp(NAME, VERSION),
            "tile_size": self.tile_size,
            "channels": self.channels,
            "compression": self.compression,
            "split_mode": self.split_mode,
            "tiles": self.tiles,
            "roof_fraction": self.roof_fraction,
            "splits": {
                k: {
                    "tiles": s.tiles,
                    "roof_fraction": s.roof_fraction,
                    "shards": [{"path": sh.path, "tiles": sh.tiles} for sh in s.shards],
                }
                for k, s in self.splits.items()
            },
            "gsd_m": self.gsd_m,
            "targets": list(self.targets),
            "contact_px": self.contact_px,
            "contact_m": self.contact_m,
            "contact_kind": self.contact_kind,
            "known": self.known,
            "jobs": [j.to_dict() for j in self.jobs],
            "params": self.params,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | os.PathLike | None = None) -> Manifest:
        if not isinstance(data, dict):
            raise RoofsegError(path, "is not a tiling manifest (not a JSON object)")
        version_of(data.get("format"), NAME, VERSION, path)
        try:
            splits = {
                k: Split(
                    int(s.get("tiles", 0)),
                    float(s.get("roof_fraction", 0.0)),
                    tuple(Shard(str(p["path"]), int(p["tiles"])) for p in s.get("shards", ())),
                )
                for k, s in (data.get("splits") or {}).items()
            }
            return cls(
                splits=splits,
                tile_size=int(data.get("tile_size") or DEFAULT_TILE_SIZE),
                channels=int(data.get("channels", 3)),
                compression=data.get("compression"),
                split_mode=data.get("split_mode", "block"),
                tiles=int(data.get("tiles", 0)),
                roof_fraction=float(data.get("roof_fraction", 0.0)),
                gsd_m=float(data["gsd_m"]) if data.get("gsd_m") else None,
                targets=tuple(data.get("targets") or TARGETS[:1]),
                contact_px=int(data.get("contact_px") or 0),
                contact_m=float(data["contact_m"]) if data.get("contact_m") else None,
                contact_kind=data.get("contact_kind"),
                known=bool(data.get("known", False)),
                jobs=tuple(Job.from_dict(j) for j in data.get("jobs") or ()),
                params=dict(data.get("params") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RoofsegError(path, f"the manifest is damaged ({type(exc).__name__}: {exc}); tile again") from None


def read_manifest(path: str | os.PathLike) -> Manifest:
    """The manifest at ``path``: a local file, or any URL TensorFlow's file systems open (gs://).
    A local file is parsed once however often a run asks (kept while its size and time stay)."""
    path = os.fspath(path)
    if "://" not in path:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise RoofsegError(path, f"cannot read the manifest ({exc})") from None
        return _read_local(os.path.abspath(path), path, st.st_mtime_ns, st.st_size)
    return _parse(_read_text(path), path)


@functools.lru_cache(maxsize=8)
def _read_local(absolute: str, given: str, mtime_ns: int, size: int) -> Manifest:
    return _parse(_read_text(given), given)


def _read_text(path: str) -> str:
    try:
        if "://" in path:
            # TensorFlow's file systems only for a remote manifest: reading a local one never imports TF
            from roofseg._tf import tf

            with tf.io.gfile.GFile(path) as f:
                return f.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise RoofsegError(path, f"cannot read the manifest ({exc})") from None
    except Exception as exc:  # TensorFlow's OpError: its type is not importable without TF
        if type(exc).__module__.startswith("tensorflow"):
            raise RoofsegError(path, f"cannot read the manifest ({str(exc).splitlines()[0]})") from None
        raise


def _parse(text: str, path: str) -> Manifest:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RoofsegError(path, f"cannot read the manifest ({exc})") from None
    return Manifest.from_dict(data, path)


def write_manifest(path: str | os.PathLike, manifest: Manifest) -> None:
    """Write ``manifest`` to ``path`` atomically."""
    write_json(path, manifest.to_dict())
