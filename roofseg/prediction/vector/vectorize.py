"""Polygons from a 0/1 raster, in its CRS, without reading the raster into one array."""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import fiona
import numpy as np
import rasterio
import shapely
import shapely.geometry
from rasterio.features import rasterize, shapes
from rasterio.windows import Window

from roofseg.contracts.card import MIN_AREA, PostProcess
from roofseg.contracts.tags import BINARY, probability_scale, read_tags
from roofseg.contracts.targets import ROOF, TARGETS
from roofseg.errors import RoofsegError
from roofseg.prediction.vector.existing import ExistingBuildings
from roofseg.prediction.vector.geometry import share_walls, simplify_outlines, valid_polygonal, without_slivers
from roofseg.prediction.vector.instances import ContactBand, contact_band, split_region
from roofseg.prediction.vector.osm import MAX_WAY_NODES, STATUS_TAG, OsmWriter
from roofseg.prediction.vector.regularize import regularize as regular
from roofseg.raster.ground import GroundArea, ground_pixel_sides
from roofseg.raster.windows import covering_window

DRIVERS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".fgb": "FlatGeobuf",
    ".osm": "OSM",
}


@dataclass(frozen=True)
class VectorOptions:
    """Footprints written beside predictions: their format, smallest ground area, and outline."""

    suffix: str = ".gpkg"  # one of DRIVERS
    min_area: float = MIN_AREA  # m²
    regularize: bool = False  # straight, squared outlines (see roofseg.prediction.vector.regularize)
    separate: bool = True  # split touching buildings where the prediction has a contact band
    min_confidence: float = 0.0  # buildings whose mean roof probability is lower are left out
    contact_cut: float | None = None  # contact probability from which a pixel splits buildings (None: the threshold)
    seed_depth: float | None = None  # buildings seeded at peaks this deep instead (see prediction.vector.instances)
    existing: str | None = None  # buildings already mapped (a vector file or OSM extract): left out
    existing_overlap: float = 0.3  # share of a predicted building's area covered by mapped ones from which it is mapped
    existing_crs: str | None = None  # the CRS of the file of mapped buildings, where it states none or a wrong one
    keep_existing: bool = False  # write mapped ones too, with status 'new', 'mapped' or 'extends'

    def postprocess(self, threshold: float) -> PostProcess:
        """What turns the prediction into these footprints, at roof ``threshold``."""
        return PostProcess(threshold, self.contact_cut, self.min_area, self.regularize, self.seed_depth)


@dataclass(frozen=True)
class ProbabilityBand:
    """Where a prediction keeps its roof probability: a band of a raster, and the value standing for 1."""

    path: str
    band: int = 1
    scale: float = 1.0


def probability_band(prediction: str | os.PathLike) -> ProbabilityBand:
    """The roof band of a prediction raster written by ``roofseg predict`` (255 stands for 1 in uint8)."""

    with rasterio.open(prediction) as ds:
        tags = read_tags(ds)
        scale = tags.scale if tags else probability_scale(ds.dtypes[0])
    return ProbabilityBand(os.fspath(prediction), 1, scale)


ROWS = 512  # rows of a prediction read at once when thresholding it


def roof_cut(ds: rasterio.DatasetReader, threshold: float) -> float:
    """The pixel value from which prediction raster ``ds`` says roof, read from what it holds.

    roofseg's own rasters say so in their tags (a probability and its scale, or a 0/1 mask);
    otherwise a uint8 raster of 0s and 1s only is a mask, any other uint8 a 0–255 probability,
    and a float raster a 0–1 probability.
    """

    tags = read_tags(ds)
    bands = tags.bands if tags else TARGETS[:1]  # a raster from elsewhere: one band of roof
    if bands[0] != ROOF or len(bands) != ds.count or ds.dtypes[0] not in ("uint8", "float32", "float64"):
        raise RoofsegError(
            ds.name,
            f"is not a prediction raster ({ds.count} band(s) of {ds.dtypes[0]}; "
            "expected one uint8 or float band, or the roof and contact bands roofseg predict writes)",
        )
    if tags is not None and tags.content == BINARY:
        return 0.5
    if tags is not None:
        return threshold * tags.scale
    if ds.dtypes[0] != "uint8":
        return threshold
    top = max(
        int(ds.read(1, window=Window(0, r, ds.width, min(ROWS, ds.height - r))).max())
        for r in range(0, ds.height, ROWS)
    )
    return 0.5 if top <= 1 else threshold * 255


def binary_raster(prediction: str | os.PathLike, threshold: float, out: str | os.PathLike) -> Path:
    """Write ``prediction``'s roof band thresholded at ``threshold`` (a probability, read as the
    raster says: :func:`roof_cut`) as a 0/1 GeoTIFF at ``out``, nodata as 0. ``roofseg predict``
    writes its binary raster by the same rule, from the probabilities it stores."""
    with rasterio.open(prediction) as ds:
        cut = roof_cut(ds, threshold)
        profile = dict(
            driver="GTiff",
            width=ds.width,
            height=ds.height,
            count=1,
            dtype="uint8",
            crs=ds.crs,
            transform=ds.transform,
            tiled=True,
            compress="deflate",
        )
        with rasterio.open(out, "w", **profile) as dst:
            for row in range(0, ds.height, ROWS):
                window = Window(0, row, ds.width, min(ROWS, ds.height - row))
                roof = (ds.read(1, window=window) >= cut) & (ds.read_masks(1, window=window) > 0)
                dst.write(roof.astype(np.uint8), 1, window=window)
    return Path(out)


def buildings(
    prediction: str | os.PathLike,
    binary: str | os.PathLike,
    post: PostProcess,
    separate: bool = True,
    confidence: bool = True,
) -> Iterator[Building]:
    """The buildings of one prediction under ``post``: the polygons of its ``binary`` raster (the
    roof at ``post.threshold``), split along the prediction's contact band (seeded at its peaks of
    ``post.seed_depth``, or its cores below ``post.contact_cut``: the threshold where None) unless
    ``separate`` is off, outlines regularized or not, and those under ``post.min_area`` m² left out.
    The one function that makes the footprints ``predict`` writes, ``tune`` scores and ``evaluate-scene`` counts."""
    cut = post.threshold if post.contact_cut is None else post.contact_cut
    contact = contact_band(os.fspath(prediction), cut, post.seed_depth) if separate else None
    probability = probability_band(prediction) if confidence else None
    return polygons(binary, post.min_area, post.regularize, contact, probability)


def pixel_size(ds) -> float:
    """A pixel's diagonal step in the raster's CRS units: the scale of tolerances in its polygons."""
    return math.hypot(ds.transform.a, ds.transform.d)


class Building(NamedTuple):
    """One predicted building: its GeoJSON polygon, ground area (m²) and confidence (0–1, or None)."""

    geometry: dict
    area: float
    confidence: float | None


def confidence_of(poly: shapely.Geometry, probs, band: ProbabilityBand) -> float:
    """The mean roof probability (0–1) over the pixels whose centres lie in ``poly`` (the pixel
    under its representative point, for a polygon too thin to hold a centre)."""

    window = covering_window(poly.bounds, probs.transform, probs.height, probs.width)
    if window is None:
        return 0.0
    values = probs.read(band.band, window=window, out_dtype="float64")
    inside = rasterize([poly], out_shape=values.shape, transform=probs.window_transform(window), dtype="uint8") > 0
    if not inside.any():
        point = poly.representative_point()
        row, col = probs.index(point.x, point.y)
        row, col = (
            min(max(row - int(window.row_off), 0), values.shape[0] - 1),
            min(max(col - int(window.col_off), 0), values.shape[1] - 1),
        )
        return float(values[row, col] / band.scale)
    return float(values[inside].mean() / band.scale)


def polygons(
    binary_path: str | os.PathLike,
    min_area: float = 0.0,
    regularize: bool = False,
    contact: ContactBand | None = None,
    probability: ProbabilityBand | None = None,
) -> Iterator[Building]:
    """A :class:`Building` (valid GeoJSON polygon, ground area in m², confidence) for each building:
    each 8-connected region of 1s, or with ``contact`` each part of it that the contact band splits off (see
    :func:`roofseg.prediction.vector.instances.split_region`); those under ``min_area`` m² dropped.

    GDAL's polygonize reads the band block by block itself, so memory follows the number of
    polygons, not the raster's size; a region is split in a window of its own size. Its
    8-connected rings can touch themselves (invalid in OGC terms): such a region is repaired, as a
    MultiPolygon where it is two pieces joined at a corner; a piece smaller than the smallest
    building kept (and than 4 px) is a crumb and dropped (:func:`without_slivers`). ``regularize`` straightens each
    outline and squares it where it is rectilinear; the parts of a split region never overlap
    (a part's squared sides stop at the parts before it). With ``probability``, each building's
    confidence is the mean roof probability of its pixels (see :func:`confidence_of`).
    """

    with rasterio.open(binary_path) as ds, contextlib.ExitStack() as stack:
        band = rasterio.band(ds, 1)
        area_of = GroundArea(ds.crs)
        pixel = pixel_size(ds)
        borders = stack.enter_context(rasterio.open(contact.path)) if contact else None
        probs = stack.enter_context(rasterio.open(probability.path)) if probability else None
        # a part of a building smaller than the smallest building kept (and than 4 px) is a crumb, not a wing
        sides = ground_pixel_sides(ds.crs, ds.transform, ds.height, ds.width) or (ds.transform.a, ds.transform.e)
        sliver = max(min_area, 4 * abs(sides[0] * sides[1]))
        for geom, value in shapes(band, mask=band, connectivity=8, transform=ds.transform):
            if value != 1:
                continue
            region = valid_polygonal(shapely.geometry.shape(geom))
            parts = _split(region, ds, borders, contact, min_area, area_of) if borders is not None else [region]
            taken = shapely.Polygon()  # the parts of this region written so far
            for poly in parts:
                if regularize and not poly.is_empty:
                    poly = valid_polygonal(regular(poly, pixel))
                    if len(parts) > 1:  # squared sides may cross into a neighbour: it keeps what it had
                        poly = valid_polygonal(poly.difference(taken))
                        taken = taken.union(poly)
                if poly.is_empty:
                    continue
                poly = without_slivers(poly, lambda part: area_of(part) >= sliver)
                area = area_of(poly)
                if area >= min_area:
                    confidence = confidence_of(poly, probs, probability) if probs is not None else None
                    yield Building(shapely.geometry.mapping(poly), area, confidence)


def _split(region: shapely.Geometry, ds, borders, contact: ContactBand, min_area: float, area_of) -> list:
    """``region`` (a polygon traced from ``ds``) as one polygon per building the contact band finds in it."""

    window = covering_window(region.bounds, ds.transform, ds.height, ds.width)
    if window is None:
        return [region]
    transform = ds.window_transform(window)
    shape = (int(window.height), int(window.width))
    inside = rasterize([region], out_shape=shape, transform=transform, dtype="uint8").astype(bool)
    pixels = int(np.count_nonzero(inside))
    if pixels < 2:
        return [region]
    # a core smaller than a quarter of the smallest building kept is noise, not a building
    min_core = max(4, round(0.25 * min_area / (area_of(region) / pixels)))
    band = borders.read(contact.band, window=window)
    if contact.depth is None:
        labels = split_region(inside, band, contact.cut, min_core)
    else:  # peaks are read in probabilities
        roof = borders.read(contact.roof_band, window=window) / contact.scale
        labels = split_region(inside, band / contact.scale, contact.cut, min_core, roof, contact.depth)
    if labels.max() < 2:
        return [region]
    pieces: dict[int, list] = {}
    for geom, value in shapes(labels, mask=labels > 0, connectivity=8, transform=transform):
        pieces.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    return [valid_polygonal(shapely.union_all(p)) for _, p in sorted(pieces.items())]


def write_polygons(
    binary_path: str | os.PathLike,
    out_path: str | os.PathLike,
    min_area: float = 0.0,
    regularize: bool = False,
    contact: ContactBand | None = None,
    layer: str | None = None,
    probability: ProbabilityBand | None = None,
    min_confidence: float = 0.0,
    existing: ExistingBuildings | None = None,
    keep_existing: bool = False,
) -> int:
    """Write the polygons of ``binary_path`` (see :func:`polygons`) to ``out_path``: see :func:`write_buildings`."""
    with rasterio.open(binary_path) as ds:
        crs, pixel = ds.crs, pixel_size(ds)
    found = polygons(binary_path, min_area, regularize, contact, probability)
    return write_buildings(
        found, out_path, crs, layer, probability is not None, min_confidence, existing, keep_existing, min_area, pixel
    )


def write_buildings(
    found: Iterable[Building],
    out_path: str | os.PathLike,
    crs,
    layer: str | None = None,
    confidence: bool = True,
    min_confidence: float = 0.0,
    existing: ExistingBuildings | None = None,
    keep_existing: bool = False,
    min_area: float = 0.0,
    pixel: float = 0.0,
) -> int:
    """Write buildings (in ``crs``) to ``out_path`` (one of :data:`DRIVERS`); return how many.

    ``layer``: the layer's name (default: the file's name without suffix). ``confidence``: each
    building has one (the mean roof probability of its pixels), written as ``confidence``; those
    under ``min_confidence`` are left out. ``existing``: buildings already mapped are left out and
    of those that extend a mapped one only the new part (at least ``min_area`` m², wider than two
    ``pixel``) is written (see :mod:`roofseg.prediction.vector.existing`); with ``keep_existing``
    every building is written whole with its ``status``: new, mapped or extends.

    GeoJSON is RFC 7946 (WGS84 lon/lat, right-hand rings, no ``crs`` member); ``.osm`` is OSM XML
    for JOSM (:mod:`roofseg.prediction.vector.osm`); the other formats keep the raster's CRS.
    """
    out = Path(out_path)
    driver = DRIVERS.get(out.suffix.lower())
    if driver is None:
        raise RoofsegError(out, f"unknown vector format (use one of {', '.join(DRIVERS)})")
    # centimetres in metric CRSs, ~1 cm (1e-7°) in degrees: the traced pixels' floats carry noise, not detail
    grid = 1e-7 if crs is not None and crs.is_geographic else 0.01

    def kept() -> Iterator[tuple[shapely.Geometry, dict]]:
        n = 0
        for building in found:
            if building.confidence is not None and building.confidence < min_confidence:
                continue
            shape = shapely.geometry.shape(building.geometry)
            area = building.area
            verdict = existing.judge(shape, min_area, pixel) if existing is not None else None
            if verdict is not None and not keep_existing:
                if verdict.new is None:
                    continue
                if verdict.new is not shape:  # only the part the map lacks
                    shape, area = verdict.new, existing.area_of(verdict.new)
            n += 1
            values = {"id": n, "area_m2": round(area, 3)}
            if building.confidence is not None:
                values["confidence"] = round(building.confidence, 4)
            if verdict is not None and keep_existing:
                values["status"] = verdict.status
            yield shape, values

    def with_shared_walls() -> Iterator[tuple[shapely.Geometry, dict]]:
        # all at once: a wall is shared with neighbours anywhere in the scene (see share_walls);
        # noded, then the staircase steps simplified as one coverage, then noded again at the
        # corners the simplification kept
        found = list(kept())
        shapes = share_walls([shape for shape, _ in found], grid / 10)
        shapes = share_walls(simplify_outlines(shapes, pixel), grid / 10)
        for shape, (_, values) in zip(shapes, found):
            yield shapely.set_precision(shape, grid), values

    tmp = out.with_name(f".{out.stem}.{os.getpid()}.partial{out.suffix}")  # drivers want their suffix
    try:
        if driver == "OSM":
            writer = OsmWriter(crs)
            for shape, values in with_shared_walls():  # OSM gets building=yes and nothing invented
                writer.add(shape, {STATUS_TAG: values["status"]} if "status" in values else None)
            writer.write(tmp)
            n = writer.count
            if writer.split:
                warnings.warn(
                    f"{out}: {writer.split} building(s) had an outline of more than {MAX_WAY_NODES} nodes, OSM's "
                    "limit for a way: each is written as a multipolygon of several ways; check them in JOSM",
                    stacklevel=2,
                )
        else:
            n = _write_ogr(
                tmp,
                driver,
                crs,
                with_shared_walls(),
                layer or out.stem,
                extra={
                    **({"confidence": "float"} if confidence else {}),
                    **({"status": "str"} if existing is not None and keep_existing else {}),
                },
            )
        if driver == "ESRI Shapefile":  # several files; rename each
            for part in tmp.parent.glob(f"{tmp.stem}.*"):
                os.replace(part, out.with_suffix(part.suffix))
        else:
            os.replace(tmp, out)
    finally:
        for part in tmp.parent.glob(f"{tmp.stem}.*"):
            part.unlink(missing_ok=True)
    return n


def _write_ogr(tmp: Path, driver: str, crs, buildings, layer: str, extra: dict) -> int:
    """Write (shapely geometry, properties) pairs with GDAL's ``driver`` (through fiona)."""

    # a declared geometry type (GIS tools show "Unknown" for a mixed one): every building a
    # MultiPolygon where the format keeps one type per layer; a shapefile's polygons hold several parts
    multi = driver in ("GPKG", "FlatGeobuf")
    geometry = "MultiPolygon" if multi else ("Polygon" if driver == "ESRI Shapefile" else ("Polygon", "MultiPolygon"))
    schema = {"geometry": geometry, "properties": {"id": "int", "area_m2": "float", **extra}}
    options = {"layer": layer} if driver != "ESRI Shapefile" else {}
    if driver == "GPKG":  # no R-tree index: fiona's SQLite has no rtree module
        options["SPATIAL_INDEX"] = "NO"
    if driver == "GeoJSON":  # RFC 7946: WGS84 longitude/latitude (GDAL reprojects), right-hand rings, no crs member
        options.update(RFC7946="YES", COORDINATE_PRECISION=7)
    n = 0
    with fiona.open(tmp, "w", driver=driver, schema=schema, crs_wkt=crs.to_wkt() if crs else "", **options) as dst:
        for shape, values in buildings:
            if multi and shape.geom_type == "Polygon":
                shape = shapely.MultiPolygon([shape])
            dst.write({"geometry": shapely.geometry.mapping(shape), "properties": values})
            n += 1
    return n


def write_footprints(
    prediction: str | os.PathLike,
    binary: str | os.PathLike,
    out_path: str | os.PathLike,
    vectors: VectorOptions,
    threshold: float = 0.5,
    layer: str | None = None,
) -> int:
    """The footprints of one predicted scene as ``vectors`` asks (see :func:`buildings`), from its
    ``binary`` raster at ``threshold``. Returns how many were written."""
    with rasterio.open(binary) as ds:
        crs, pixel = ds.crs, pixel_size(ds)
    existing = (
        ExistingBuildings(vectors.existing, crs, vectors.existing_overlap, vectors.existing_crs)
        if vectors.existing
        else None
    )
    found = buildings(prediction, binary, vectors.postprocess(threshold), vectors.separate)
    return write_buildings(
        found,
        out_path,
        crs,
        layer,
        True,
        vectors.min_confidence,
        existing,
        vectors.keep_existing,
        vectors.min_area,
        pixel,
    )
