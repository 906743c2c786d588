"""Polygons from a 0/1 raster, in its CRS, without reading the raster into one array."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
import shapely
import shapely.geometry
from rasterio.features import shapes

from roofseg.errors import RoofsegError
from roofseg.prediction.instances import ContactBand
from roofseg.raster.ground import GroundArea

DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".fgb": "FlatGeobuf"}


@dataclass(frozen=True)
class VectorOptions:
    """Footprints written beside predictions: their format, smallest ground area, and outline."""

    suffix: str = ".gpkg"  # one of DRIVERS
    min_area: float = 5.0  # m²
    regularize: bool = False  # straight, squared outlines (see roofseg.prediction.regularize)
    separate: bool = True  # split touching buildings where the prediction has a contact band


def polygons(binary_path: str | os.PathLike, min_area: float = 0.0, regularize: bool = False,
             contact: ContactBand | None = None) -> Iterator[tuple[dict, float]]:
    """(valid GeoJSON polygon, ground area in m²) for each building: each 8-connected region of 1s,
    or with ``contact`` each part of it that the contact band splits off (see
    :func:`roofseg.prediction.instances.split_region`); those under ``min_area`` m² dropped.

    GDAL's polygonize reads the band block by block itself, so memory follows the number of
    polygons, not the raster's size; a region is split in a window of its own size. Its
    8-connected rings can touch themselves (invalid in OGC terms): such a region is repaired, as a
    MultiPolygon where it is two pieces joined at a corner. ``regularize`` straightens each
    outline and squares it where it is rectilinear; the parts of a split region never overlap
    (a part's squared sides stop at the parts before it).
    """
    from roofseg.prediction.regularize import regularize as regular

    with rasterio.open(binary_path) as ds, contextlib.ExitStack() as stack:
        band = rasterio.band(ds, 1)
        area_of = GroundArea(ds.crs)
        pixel = math.hypot(ds.transform.a, ds.transform.d)
        borders = stack.enter_context(rasterio.open(contact.path)) if contact else None
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
                area = area_of(poly)
                if area >= min_area:
                    yield shapely.geometry.mapping(poly), area


def _split(region: shapely.Geometry, ds, borders, contact: ContactBand, min_area: float, area_of) -> list:
    """``region`` (a polygon traced from ``ds``) as one polygon per building the contact band finds in it."""
    from rasterio.features import rasterize

    from roofseg.prediction.instances import split_region
    from roofseg.raster.windows import covering_window

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
    labels = split_region(inside, borders.read(contact.band, window=window), contact.cut, min_core)
    if labels.max() < 2:
        return [region]
    pieces: dict[int, list] = {}
    for geom, value in shapes(labels, mask=labels > 0, connectivity=8, transform=transform):
        pieces.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    return [valid_polygonal(shapely.union_all(p)) for _, p in sorted(pieces.items())]


def valid_polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` made valid, keeping only its polygonal parts (a Polygon or a MultiPolygon)."""
    if geom.is_valid:
        return geom
    fixed = shapely.make_valid(geom)
    if fixed.geom_type in ("Polygon", "MultiPolygon"):
        return fixed
    parts = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def write_polygons(binary_path: str | os.PathLike, out_path: str | os.PathLike, min_area: float = 0.0,
                   regularize: bool = False, contact: ContactBand | None = None, layer: str | None = None) -> int:
    """Write the polygons of ``binary_path`` to ``out_path`` (.geojson, .gpkg, .shp, .fgb); return how many.

    ``contact``: split touching buildings along the prediction's contact band (see :func:`polygons`).
    ``layer``: the layer's name (default: the file's name without suffix)."""
    import fiona

    out = Path(out_path)
    driver = DRIVERS.get(out.suffix.lower())
    if driver is None:
        raise RoofsegError(out, f"unknown vector format (use one of {', '.join(DRIVERS)})")
    with rasterio.open(binary_path) as ds:
        crs = ds.crs
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.partial{out.suffix}")  # drivers want their suffix
    # a declared geometry type (GIS tools show "Unknown" for a mixed one): every building a
    # MultiPolygon where the format keeps one type per layer; a shapefile's polygons hold several parts
    multi = driver in ("GPKG", "FlatGeobuf")
    geometry = "MultiPolygon" if multi else ("Polygon" if driver == "ESRI Shapefile" else ("Polygon", "MultiPolygon"))
    schema = {"geometry": geometry, "properties": {"id": "int", "area_m2": "float"}}
    # centimetres in metric CRSs, ~1 cm (1e-7°) in degrees: the traced pixels' floats carry noise, not detail
    grid = 1e-7 if crs is not None and crs.is_geographic else 0.01
    options = {"layer": layer or out.stem} if driver != "ESRI Shapefile" else {}
    if driver == "GPKG":  # no R-tree index: fiona's SQLite has no rtree module
        options["SPATIAL_INDEX"] = "NO"
    if driver == "GeoJSON":  # RFC 7946: WGS84 longitude/latitude (GDAL reprojects), right-hand rings, no crs member
        options.update(RFC7946="YES", COORDINATE_PRECISION=7)
    n = 0
    try:
        with fiona.open(tmp, "w", driver=driver, schema=schema, crs_wkt=crs.to_wkt() if crs else "", **options) as dst:
            for n, (geom, area) in enumerate(polygons(binary_path, min_area, regularize, contact), 1):
                shape = shapely.set_precision(shapely.geometry.shape(geom), grid)
                if multi and shape.geom_type == "Polygon":
                    shape = shapely.MultiPolygon([shape])
                dst.write({"geometry": shapely.geometry.mapping(shape), "properties": {"id": n, "area_m2": round(area, 3)}})
        if driver == "ESRI Shapefile":  # several files; rename each
            for part in tmp.parent.glob(f"{tmp.stem}.*"):
                os.replace(part, out.with_suffix(part.suffix))
        else:
            os.replace(tmp, out)
    finally:
        for part in tmp.parent.glob(f"{tmp.stem}.*"):
            part.unlink(missing_ok=True)
    return n


def write_footprints(prediction: str | os.PathLike, binary: str | os.PathLike, out_path: str | os.PathLike,
                     vectors: VectorOptions, threshold: float = 0.5, layer: str | None = None) -> int:
    """The footprints of one predicted scene as ``vectors`` asks: from its ``binary`` raster,
    split along the ``prediction``'s contact band where it has one (unless ``vectors.separate``
    is off). Returns how many were written."""
    from roofseg.prediction.instances import contact_band

    contact = contact_band(os.fspath(prediction), threshold) if vectors.separate else None
    return write_polygons(binary, out_path, vectors.min_area, vectors.regularize, contact, layer)
