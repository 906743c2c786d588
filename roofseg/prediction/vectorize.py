"""Polygons from a 0/1 raster, in its CRS, without reading the raster into one array."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import rasterio
from rasterio.features import shapes
from rasterio.warp import transform_geom

from roofseg.errors import RoofsegError

DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".fgb": "FlatGeobuf"}
EQUAL_AREA = "EPSG:6933"  # where a geographic CRS has no metres, areas are taken in this projection


def polygons(binary_path: str | os.PathLike, min_area: float = 0.0) -> Iterator[tuple[dict, float]]:
    """(GeoJSON polygon, area in m²) for each 8-connected region of 1s, regions under ``min_area`` m² dropped.

    GDAL's polygonize reads the band block by block itself, so memory follows the number of
    polygons, not the raster's size.
    """
    from shapely.geometry import shape

    with rasterio.open(binary_path) as ds:
        band = rasterio.band(ds, 1)
        geographic = ds.crs is not None and ds.crs.is_geographic
        for geom, value in shapes(band, mask=band, connectivity=8, transform=ds.transform):
            if value != 1:
                continue
            area = shape(transform_geom(ds.crs, EQUAL_AREA, geom) if geographic else geom).area
            if area >= min_area:
                yield geom, area


def write_polygons(binary_path: str | os.PathLike, out_path: str | os.PathLike, min_area: float = 0.0) -> int:
    """Write the polygons of ``binary_path`` to ``out_path`` (.geojson, .gpkg, .shp, .fgb); return how many."""
    import fiona

    out = Path(out_path)
    driver = DRIVERS.get(out.suffix.lower())
    if driver is None:
        raise RoofsegError(out, f"unknown vector format (use one of {', '.join(DRIVERS)})")
    with rasterio.open(binary_path) as ds:
        crs_wkt = ds.crs.to_wkt() if ds.crs else ""
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.partial{out.suffix}")  # drivers want their suffix
    schema = {"geometry": "Polygon", "properties": {"id": "int", "area_m2": "float"}}
    n = 0
    try:
        # GeoPackage: a layer named like the file, and no R-tree index (fiona's SQLite has no rtree module)
        options = {"layer": out.stem, "SPATIAL_INDEX": "NO"} if driver == "GPKG" else {}
        with fiona.open(tmp, "w", driver=driver, schema=schema, crs_wkt=crs_wkt, **options) as dst:
            for n, (geom, area) in enumerate(polygons(binary_path, min_area), 1):
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
