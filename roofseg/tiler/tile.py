"""Tiling one job — a scene with its labels, or a batch of folder images — into shards."""

from __future__ import annotations

import contextlib
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from roofseg.atomic import file_sha256
from roofseg.contracts.targets import CONTACT_M, CONTACT_PX
from roofseg.contracts.tile import TileRecord
from roofseg.errors import RoofsegError, RoofsegWarning
from roofseg.raster.components import components
from roofseg.raster.ground import ground_pixel_size
from roofseg.raster.labels import open_labels
from roofseg.raster.scene import Scene, band_cache, resampled_shape
from roofseg.raster.windows import grid_rows as rows_of_tiles
from roofseg.raster.windows import offsets, tile_grid, tile_transform
from roofseg.readahead import read_ahead
from roofseg.tiler.inputs import FolderItem, SceneInput
from roofseg.tiler.shards import ShardWriter
from roofseg.tiler.split import BlockSplit
from roofseg.tiler.targets import CONTACT_KINDS, band_px, contact_target

Progress = Callable[[int], None]


@dataclass(frozen=True)
class TileParams:
    """How tiles are cut, filtered, split and sharded (the CLI's options)."""

    size: int = 256
    stride: int = 256
    max_nodata: float = 0.5
    keep_empty: float = 1.0
    bands: tuple[int, ...] | None = None
    shard_bytes: int = 100 * 10**6
    compression: str | None = None
    val: float = 0.15
    test: float = 0.15
    split_block: int = 512
    seed: int = 0
    labels_crs: str | None = None  # the footprints' CRS where their file states none or a wrong one
    ignore_non_polygons: bool = False  # a labels file of lines/points only means no buildings
    gsd: float | None = None  # metres: scenes and labels resampled to this ground pixel size first
    gsds: tuple[float, ...] = ()  # several: each scene tiled once at each (a job per scene and GSD)
    split_gsd: float | None = None  # with gsds: the GSD split_block is measured at (blocks on the scene's own grid)
    # border targets: contact_m metres wide in each scene's px, and contact_px px where a scene has
    # no GSD (None: refused there); without contact_m, contact_px px everywhere; contact_px 0: roof only
    contact_px: int | None = CONTACT_PX
    contact_m: float | None = CONTACT_M
    contact_kind: str = CONTACT_KINDS[0]  # outline (every building's edge band) or between (contacts only)
    pixel_size: float | None = None  # metres: the pixel size of images without georeference (declared)
    nodata: float | None = None  # no data of images without georeference (a pixel with every band at it)

    @property
    def has_contact(self) -> bool:
        """Whether tiles carry a border target."""
        return self.contact_px != 0 and bool(self.contact_px or self.contact_m)

    def at_gsd(self, gsd_m: float | None, source: str) -> TileParams:
        """These parameters for a grid of ``gsd_m`` metres per pixel (None: unknown): with
        ``contact_m``, its border band in that grid's px, or ``contact_px`` where the GSD is
        unknown; a RoofsegError naming ``source`` where neither gives a band."""
        if not self.contact_m or not self.has_contact:
            return self
        if gsd_m:
            return replace(self, contact_px=band_px(self.contact_m, gsd_m))
        if self.contact_px is None:
            raise RoofsegError(
                source,
                "has no ground pixel size to draw the border band in metres at: declare one (--pixel-size) "
                "or give the band in px (--contact-px)",
            )
        return self

    def fingerprint(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass
class JobResult:
    """What a job wrote: committed shard files and counts per split, and what it skipped."""

    id: str
    shards: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    tiles: dict[str, int] = field(default_factory=dict)
    roof_pixels: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=lambda: {"nodata": 0, "empty": 0, "split_border": 0})
    info: dict = field(default_factory=dict)


class _SplitWriters:
    """One ShardWriter per split, opened on first use; all committed or aborted together."""

    def __init__(self, out_dir: Path, shard_name: str, params: TileParams, result: JobResult):
        self.out_dir, self.shard_name, self.params, self.result = out_dir, shard_name, params, result
        self.writers: dict[str, ShardWriter] = {}

    def write(self, split: str, record: TileRecord) -> None:
        writer = self.writers.get(split)
        if writer is None:
            writer = self.writers[split] = ShardWriter(
                self.out_dir / split / self.shard_name, self.params.shard_bytes, self.params.compression
            )
            (self.out_dir / split).mkdir(exist_ok=True)
        writer.write(record.to_example())
        self.result.tiles[split] = self.result.tiles.get(split, 0) + 1
        self.result.roof_pixels[split] = self.result.roof_pixels.get(split, 0) + record.roof_pixels

    def commit(self) -> None:
        for split, writer in self.writers.items():
            self.result.shards[split] = [(str(p.relative_to(self.out_dir)), n) for p, n in writer.commit()]

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


def keep_draw(seed: int, job_id: str, row: int, col: int) -> float:
    """A uniform number fixed by the tile's place, so reruns keep the same empty tiles."""
    return float(np.random.default_rng([seed, zlib.crc32(job_id.encode()), row, col]).random())


def pad(array: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad the first two axes of ``array`` to ``size`` × ``size`` at the bottom and right."""
    h, w = array.shape[:2]
    if h == size and w == size:
        return array
    widths = [(0, size - h), (0, size - w)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths)


def grid_row_count(height: int, params: TileParams) -> int:
    """How many rows of windows the tile grid of a scene ``height`` px high has."""
    return len(offsets(height, params.size, params.stride))


def split_grid(source, height: int, width: int, split_gsd: float | None, path: str) -> tuple[int, int]:
    """(height, width) of the grid a scene's split blocks are drawn on: its own ``height`` ×
    ``width``, or, tiled at several GSDs, the finest one's (``split_gsd``) over the ``source``
    dataset's extent."""
    if not split_gsd:
        return height, width
    return resampled_shape(source, split_gsd, path) or (source.height, source.width)


def block_split(scene: Scene, params: TileParams) -> BlockSplit:
    """The scene's split blocks. Tiled at one of several GSDs, the blocks are ``split_block``
    pixels of the finest (``split_gsd``) wide, at every GSD the same blocks drawn into the same
    splits: a place is never train at one resolution and val at another."""
    if not params.split_gsd:
        return BlockSplit(scene.height, scene.width, params.split_block, params.val, params.test, params.seed)
    # the blocks lie on the grid of the finest GSD; the tiles' grid maps onto it exactly (both
    # span the scene's extent), so each GSD sees the same blocks, drawn into the same splits
    finest = split_grid(scene.source, scene.height, scene.width, params.split_gsd, scene.path)
    scale = (finest[0] / scene.height, finest[1] / scene.width)
    return BlockSplit(*finest, params.split_block, params.val, params.test, params.seed, scale)


def _scene_records(
    scene: Scene,
    labels,
    job_id: str,
    split: str | None,
    params: TileParams,
    skipped: dict[str, int],
    grid_rows: tuple[int, int] | None = None,
) -> Iterator[tuple[str | None, TileRecord | None]]:
    """(split, record) for every window of the grid (of its rows [a, b) with ``grid_rows``);
    (None, None) for a window skipped."""
    blocks = None if split else block_split(scene, params)
    crs_wkt = scene.crs.to_wkt() if scene.crs else ""
    epsg = (scene.crs.to_epsg() or 0) if scene.crs else 0
    area = params.size * params.size
    if grid_rows is None:
        tiles = tile_grid(scene.height, scene.width, params.size, params.stride)
    else:
        rows = list(rows_of_tiles(scene.height, scene.width, params.size, params.stride))[slice(*grid_rows)]
        tiles = [t for row in rows for t in row]
    for t in tiles:
        tile_split = split or blocks.of_tile(t.row, t.col, t.height, t.width)
        if tile_split is None:
            skipped["split_border"] += 1
            yield None, None
            continue
        image, valid = scene.read(t.row, t.col, t.height, t.width)
        nodata_fraction = 1.0 - np.count_nonzero(valid) / area  # padding outside the scene is no data
        if nodata_fraction > params.max_nodata:
            skipped["nodata"] += 1
            yield None, None
            continue
        mask, contact = _targets(labels, t.row, t.col, t.height, t.width, params.contact_px, params.contact_kind)
        mask[~valid] = 0
        known = labels.known(t.row, t.col, t.height, t.width) if hasattr(labels, "known") else None
        if known is not None:  # labels of part of the scene (a review): a tile nothing is known of teaches nothing
            known[~valid] = 0
            if not known.any():
                skipped["unknown"] = skipped.get("unknown", 0) + 1
                yield None, None
                continue
            known = pad(known, params.size)  # padding is no data: unknown too
        if contact is not None:
            contact[~valid] = 0
            contact = pad(contact, params.size)
        if (
            tile_split == "train"
            and params.keep_empty < 1
            and not mask.any()
            and keep_draw(params.seed, job_id, t.row, t.col) >= params.keep_empty
        ):
            skipped["empty"] += 1
            yield None, None
            continue
        yield (
            tile_split,
            TileRecord(
                image=pad(image, params.size),
                mask=pad(mask, params.size),
                scene_id=job_id,
                row=t.row,
                col=t.col,
                transform=tuple(tile_transform(scene.transform, t.row, t.col))[:6],
                crs_wkt=crs_wkt,
                epsg=epsg,
                valid_height=t.height,
                valid_width=t.width,
                nodata_fraction=float(nodata_fraction),
                contact=contact,
                known=known,
            ),
        )


def _targets(
    labels, row: int, col: int, height: int, width: int, contact_px: int, kind: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """The window's 0/1 roof mask and, with ``contact_px``, its 0/1 contact target (None without).

    Instances are read with ``contact_px`` of context around the window, so the contact target
    of a tile is the one the whole scene has there; the roof is where any instance is.
    """
    if not contact_px:
        return labels.read(row, col, height, width), None
    m = contact_px
    ids = labels.instances(row - m, col - m, height + 2 * m, width + 2 * m)
    return (ids[m : m + height, m : m + width] > 0).astype(np.uint8), contact_target(ids, m, m, kind)


def tile_scene(
    job: SceneInput,
    split: str | None,
    params: TileParams,
    out_dir: Path,
    progress: Progress,
    shard_name: str | None = None,
    grid_rows: tuple[int, int] | None = None,
) -> JobResult:
    """Cut one scene into tiles; ``split`` is the whole scene's split, or None to split by block.

    Shards are named ``SPLIT/{shard_name}-00000.tfrecord``… (default: the job's id). With
    ``grid_rows`` (a, b), only the windows of the grid's rows a to b - 1: a part of the scene,
    whose records are those the whole scene gives for these windows (a distributed runner
    spreads one scene's parts over its workers).
    """
    result = JobResult(job.id)
    writers = _SplitWriters(out_dir, shard_name or job.id, params, result)
    try:
        with (
            Scene(job.image, params.bands, params.gsd, params.pixel_size, params.nodata) as scene,
            band_cache(scene, params.size),
        ):
            gsd_m = ground_pixel_size(scene.crs, scene.transform, scene.height, scene.width)
            params = params.at_gsd(gsd_m, job.image)
            with warnings.catch_warnings():
                # what a scene's labels warn of (no building, a CRS assumed) the plan said once:
                # it opens every scene's labels before any job runs (run._plan_scenes)
                warnings.simplefilter("ignore", RoofsegWarning)
                labels = open_labels(job.labels, scene, params.labels_crs, params.ignore_non_polygons)
            # windows are read by a thread while this one encodes and writes the previous ones;
            # closing() stops and joins that thread, even when a write fails, before labels close
            records = read_ahead(_scene_records(scene, labels, job.id, split, params, result.skipped, grid_rows))
            try:
                with contextlib.closing(records):
                    for tile_split, record in records:
                        progress(1)
                        if record is not None:
                            writers.write(tile_split, record)
            finally:
                labels.close()
            reviewed = getattr(labels, "counts", None)  # a review's decisions: what they were
            result.info = {
                "image": job.image,
                "labels": job.labels,
                "split": split or "block",
                "width": scene.width,
                "height": scene.height,
                "crs": scene.crs.to_string() if scene.crs else None,
                "dtype": scene.dtype,
                "bands": list(scene.bands),
                "gsd_m": gsd_m,
                "source_gsd_m": ground_pixel_size(
                    scene.crs, scene.source.transform, scene.source.height, scene.source.width
                ),
            }
            if reviewed is not None:
                result.info["review"] = {"store": job.labels, "sha256": file_sha256(job.labels), **reviewed}
        writers.commit()
    except BaseException:
        writers.abort()
        raise
    return result


def read_folder_item(item: FolderItem, size: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """An image (RGB uint8) and its 0/1 mask, each resized to ``size`` × ``size``, and the original (h, w)."""
    image = cv2.imread(item.image, cv2.IMREAD_COLOR)
    if image is None:
        raise RoofsegError(item.image, "cannot be read as an image (corrupt, or not JPG/PNG/TIF)")
    mask = cv2.imread(item.mask, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise RoofsegError(item.mask, "cannot be read as a mask image (corrupt, or not JPG/PNG/TIF)")
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.shape[:2] != image.shape[:2]:
        raise RoofsegError(
            item.mask, f"mask is {mask.shape[1]}x{mask.shape[0]} px but its image is {image.shape[1]}x{image.shape[0]}"
        )
    shape = image.shape[:2]
    # Image and mask go through the same resampling, so the mask lands on the image's grid: the
    # mask is resampled as a fraction of roof and thresholded at one half. (Nearest neighbour is
    # not pixel-centred in OpenCV and shifts the mask by up to a pixel.)
    interpolation = cv2.INTER_AREA if size < min(shape) else cv2.INTER_LINEAR
    image = cv2.resize(image, (size, size), interpolation=interpolation)[..., ::-1]
    roof = cv2.resize((mask > 0).astype(np.float32), (size, size), interpolation=interpolation)
    return np.ascontiguousarray(image), (roof >= 0.5).astype(np.uint8), shape


def tile_folder(
    job_id: str,
    items: list[FolderItem],
    splits: dict[str, str],
    params: TileParams,
    out_dir: Path,
    progress: Progress,
    shard_name: str | None = None,
) -> JobResult:
    """Resize each folder image/mask pair to one tile; ``splits`` maps item ids to splits."""
    result = JobResult(job_id)
    writers = _SplitWriters(out_dir, shard_name or job_id, params, result)
    try:
        for item in items:
            progress(1)
            image, mask, (h, w) = read_folder_item(item, params.size)
            split = splits[item.id]
            if (
                split == "train"
                and params.keep_empty < 1
                and not mask.any()
                and keep_draw(params.seed, item.id, 0, 0) >= params.keep_empty
            ):
                result.skipped["empty"] += 1
                continue
            # a mask image's instances are its connected regions; resized to one tile, its pixels
            # are (original side / tile side) times the declared pixel size
            gsd_m = params.pixel_size * max(h, w) / params.size if params.pixel_size else None
            m = params.at_gsd(gsd_m, item.image).contact_px
            contact = contact_target(components(np.pad(mask, m)), m, m, params.contact_kind) if m else None
            # The tile's transform maps its pixels back onto the original image's pixel grid.
            writers.write(
                split,
                TileRecord(
                    image=image,
                    mask=mask,
                    scene_id=item.id,
                    row=0,
                    col=0,
                    transform=(w / params.size, 0.0, 0.0, 0.0, h / params.size, 0.0),
                    crs_wkt="",
                    epsg=0,
                    valid_height=params.size,
                    valid_width=params.size,
                    nodata_fraction=0.0,
                    contact=contact,
                ),
            )
        result.info = {"images": [i.image for i in items], "split": "image"}
        writers.commit()
    except BaseException:
        writers.abort()
        raise
    return result


def merge_parts(job_id: str, parts: list[JobResult]) -> JobResult:
    """One job's result from the results of its parts, in part order."""
    merged = JobResult(job_id)
    for part in parts:
        for split, shards in part.shards.items():
            merged.shards.setdefault(split, []).extend(shards)
        for field_name in ("tiles", "roof_pixels", "skipped"):
            total = getattr(merged, field_name)
            for key, n in getattr(part, field_name).items():
                total[key] = total.get(key, 0) + n
        merged.info = merged.info or part.info
    return merged
