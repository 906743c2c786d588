"""Polygons from a 0/1 raster, in its CRS, without reading the raster into one array."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import rasterio
import shapely
import shapely.geometry
from rasterio.features import shapes

from roofseg.errors import RoofsegError
from roofseg.raster.ground import GroundArea

DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".fgb": "FlatGeobuf"}


@dataclass(frozen=True)
class VectorOptions:
    """Footprints written beside predictions: their format, smallest ground area, and outline."""

    suffix: str = ".gpkg"  # one of DRIVERS
    min_area: float = 5.0  # m²
    regularize: bool = False  # straight, squared outlines (see roofseg.prediction.regularize)


def polygons(binary_path: str | os.PathLike, min_area: float = 0.0, regularize: bool = False) -> Iterator[tuple[dict, float]]:
    """(valid GeoJSON polygon, ground area in m²) for each 8-connected region of 1s, those under ``min_area`` m² dropped.

    GDAL's polygonize reads the band block by block itself, so memory follows the number of
    polygons, not the raster's size. Its 8-connected rings can touch themselves (invalid in
    OGC terms): such a region is repaired, as a MultiPolygon where it is two pieces joined at a
    corner. ``regularize`` straightens each outline and squares it where it is rectilinear.
    """
    from roofseg.prediction.regularize import regularize as regular

    with rasterio.open(binary_path) as ds:
        band = rasterio.band(ds, 1)
        area_of = GroundArea(ds.crs)
        pixel = math.hypot(ds.transform.a, ds.transform.d)
        for geom, value in shapes(band, mask=band, connectivity=8, transform=ds.transform):
            if value != 1:
                continue
            poly = valid_polygonal(shapely.geometry.shape(geom))
            if regularize and not poly.is_empty:
                poly = valid_polygonal(regular(poly, pixel))
            if poly.is_empty:
                continue
            area = area_of(poly)
            if area >= min_area:
                yield shapely.geometry.mapping(poly), area


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
                   regularize: bool = False) -> int:
    """Write the polygons of ``binary_path`` to ``out_path`` (.geojson, .gpkg, .shp, .fgb); return how many."""
    import fiona

    out = Path(out_path)
    driver = DRIVERS.get(out.suffix.lower())
    if driver is None:
        raise RoofsegError(out, f"unknown vector format (use one of {', '.join(DRIVERS)})")
    with rasterio.open(binary_path) as ds:
        crs_wkt = ds.crs.to_wkt() if ds.crs else ""
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.partial{out.suffix}")  # drivers want their suffix
    schema = {"geometry": ("Polygon", "MultiPolygon"), "properties": {"id": "int", "area_m2": "float"}}
    n = 0
    try:
        # GeoPackage: a layer named like the file, and no R-tree index (fiona's SQLite has no rtree module)
        options = {"layer": out.stem, "SPATIAL_INDEX": "NO"} if driver == "GPKG" else {}
        with fiona.open(tmp, "w", driver=driver, schema=schema, crs_wkt=crs_wkt, **options) as dst:
            for n, (geom, area) in enumerate(polygons(binary_path, min_area, regularize), 1):
                dst.write({"geometry": geom, "properties": {"id": n, "area_m2": round(area, 3)}})
        if driver == "ESRI Shapefile":  # several files; rename each
            for part in tmp.parent.glob(f"{tmp.stem}.*"):
                os.replace(part, out.with_suffix(part.suffix))
        else:
            os.replace(tmp, out)
    finally:
        for part in tmp.parent.glob(f"{tmp.stem}.*"):
            part.unlink(missing_ok=True)
    return n
