"""Building labels on a scene's pixel grid, from a mask raster or from vector footprints.

Both kinds answer the same question — which pixels of this window are roof — so the tiler
and the scene evaluator can take either.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Protocol

import fiona
import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds, transform_geom
from rasterio.windows import Window
from shapely.geometry import mapping

from roofseg.contracts.review import is_review_store
from roofseg.errors import RoofsegError, RoofsegWarning, first_line
from roofseg.raster.components import scene_components
from roofseg.raster.osm import is_building, read_osm_buildings
from roofseg.raster.reviewed import ReviewLabels
from roofseg.raster.scene import Scene, open_raster
from roofseg.raster.shapes import POLYGONAL, FootprintLabels, bbox
from roofseg.raster.windows import grid_bounds
from roofseg.scenes import is_remote, suffix_of

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".osm", ".pbf")
RASTER_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".vrt", ".img")


class Labels(Protocol):
    path: str

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """0/1 uint8 (height, width): 1 where a building is."""

    def instances(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """int32 (height, width): 0 off buildings, one id per building (the window may reach past the scene)."""

    # labels that know only part of the scene (a review) also have
    # known(row, col, height, width) -> 0/1 uint8: 1 where the label says what the pixel is


def open_labels(
    path: str | os.PathLike, scene: Scene, crs: str | None = None, ignore_non_polygons: bool = False
) -> Labels:
    """Open ``path`` as labels for ``scene``: vector footprints, a review's store
    (:mod:`roofseg.raster.reviewed`) or a mask raster, by its suffix.

    ``crs`` states the footprints' CRS where the file has none or a wrong one (``--labels-crs``);
    ``ignore_non_polygons`` takes a file of lines or points only as an area without buildings.
    """
    suffix = suffix_of(os.fspath(path))
    if is_review_store(path):
        # a reviewer's decisions: known roof and ground, the rest unknown (labels with a known())
        return ReviewLabels(path, scene)
    if suffix in VECTOR_SUFFIXES:
        return VectorLabels(path, scene, crs=crs, ignore_non_polygons=ignore_non_polygons)
    return MaskLabels(path, scene)


def _onto(mask: rasterio.DatasetReader, scene: Scene) -> rasterio.DatasetReader:
    """``mask`` warped onto the resampled grid of ``scene`` (the majority when coarsening)."""

    coarser = scene.width < scene.source.width
    # src_nodata=None: 0 is background here whatever the file's nodata says; skipped as nodata,
    # the majority would be taken over roof pixels alone and roofs would swell
    return WarpedVRT(
        mask,
        crs=scene.crs or mask.crs,
        transform=scene.transform,
        width=scene.width,
        height=scene.height,
        resampling=Resampling.mode if coarser else Resampling.nearest,
        src_nodata=None,
    )


class MaskLabels:
    """A raster of the scene's size whose non-zero pixels are roof (0/1 or 0/255 masks)."""

    def __init__(self, path: str | os.PathLike, scene: Scene):
        self.path = os.fspath(path)
        self._components, self._components_path = None, None  # the whole mask's regions, when asked
        self.ds = self.source = ds = open_raster(self.path, "a mask raster")
        native = scene.source  # the mask must lie on the scene's own grid
        if (ds.height, ds.width) != (native.height, native.width):
            self.close()
            raise RoofsegError(
                self.path,
                f"mask is {ds.width}x{ds.height} px but the scene {scene.path} is {native.width}x{native.height}",
            )
        georeferenced = ds.crs is not None or not ds.transform.is_identity
        if georeferenced and scene.georeferenced:
            if not ds.transform.almost_equals(native.transform, precision=1e-6 * max(1.0, abs(native.transform.a))):
                self.close()
                raise RoofsegError(
                    self.path,
                    f"mask grid {tuple(ds.transform)[:6]} differs from the scene's {tuple(native.transform)[:6]}",
                )
            if ds.crs is not None and scene.crs is not None and ds.crs != scene.crs:
                self.close()
                raise RoofsegError(self.path, f"mask CRS {ds.crs} differs from the scene's {scene.crs}")
        self.nodata = ds.nodata
        if scene.ds is not scene.source:  # the scene is read resampled: so is its mask, onto the same grid
            self.ds = _onto(ds, scene)

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        try:
            data = self.ds.read(1, window=Window(col, row, width, height))
        except RasterioError as exc:
            raise RoofsegError(self.path, f"read failed at row {row}, col {col} ({first_line(exc)})") from None
        return self._roof(data)

    def instances(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """The mask's 8-connected roof regions as instances: a mask cannot tell touching buildings
        apart, but it does keep buildings apart that a gap separates. The regions are those of the
        whole mask (labelled once, on the first call), never of the window: a building that leaves
        the window and comes back is still one. Zero past the scene's edges."""
        if self._components is None:
            fd, self._components_path = tempfile.mkstemp(prefix="roofseg-components-", suffix=".npy")
            os.close(fd)
            try:
                self._components = scene_components(self.read, self.ds.height, self.ds.width, self._components_path)
            except OSError as exc:
                raise RoofsegError(
                    self._components_path,
                    f"cannot hold the regions of {self.path} ({exc.strerror or exc}); set TMPDIR to a folder with room",
                ) from None
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, self.ds.height), min(col + width, self.ds.width)
        ids = np.zeros((height, width), np.int32)
        if r1 > r0 and c1 > c0:
            ids[r0 - row : r1 - row, c0 - col : c1 - col] = self._components[r0:r1, c0:c1]
        return ids

    def overview(self, height: int, width: int) -> np.ndarray:
        """The whole mask read decimated (nearest) to ``height`` × ``width``, 1 on roof."""
        try:
            data = self.ds.read(1, out_shape=(height, width), resampling=Resampling.nearest)
        except RasterioError as exc:
            raise RoofsegError(self.path, f"read failed ({first_line(exc)})") from None
        return self._roof(data)

    def _roof(self, data: np.ndarray) -> np.ndarray:
        roof = data > 0
        if self.nodata is not None and self.nodata != 0:
            roof &= data != self.nodata
        return roof.astype(np.uint8)

    def close(self) -> None:
        self.ds.close()
        self.source.close()
        self._components = None
        if self._components_path:
            Path(self._components_path).unlink(missing_ok=True)


class VectorLabels(FootprintLabels):
    """Polygon footprints (GeoJSON, GeoPackage, Shapefile, …) burned onto the scene's grid.

    Footprints in another CRS are reprojected to the scene's; windows are burned through a
    :class:`ShapeIndex`.
    """

    def __init__(
        self, path: str | os.PathLike, scene: Scene, crs: str | None = None, ignore_non_polygons: bool = False
    ):
        self.path = os.fspath(path)
        if not scene.georeferenced or scene.crs is None:
            raise RoofsegError(scene.path, "has no CRS, so vector labels cannot be placed on it")
        geoms = read_footprints(self.path, scene.crs, crs, ignore_non_polygons)
        if not geoms:
            warnings.warn(
                f"{self.path}: holds no building: the scene {scene.path} is taken as one without buildings",
                RoofsegWarning,
                stacklevel=2,
            )
        super().__init__(geoms, scene.transform)
        left, bottom, right, top = grid_bounds(scene.transform, scene.height, scene.width)
        if geoms and not self.index.hits(left, bottom, right, top).any():
            fx0, fy0 = self.index.bboxes[:, :2].min(axis=0)
            fx1, fy1 = self.index.bboxes[:, 2:].max(axis=0)
            raise RoofsegError(
                self.path,
                f"no footprint overlaps the scene {scene.path}: the footprints lie at "
                f"{_lonlat(scene.crs, (fx0, fy0, fx1, fy1))}, "
                f"the scene at {_lonlat(scene.crs, (left, bottom, right, top))}; if the file's CRS is wrong, "
                "state the right one with --labels-crs EPSG:…",
            )


OSM_SUFFIXES = (".osm", ".pbf")


def _lonlat(crs, bounds: tuple[float, float, float, float]) -> str:
    """A box in ``crs`` as 'lon W..E, lat S..N' (degrees, WGS84), for messages a person can place."""

    try:
        w, s, e, n = transform_bounds(crs, "EPSG:4326", *bounds)
    except Exception:  # noqa: BLE001 — off the globe in that CRS: say it in its units
        return "{:.6g},{:.6g} to {:.6g},{:.6g} in {}".format(*bounds, crs)
    return f"lon {w:.5f}..{e:.5f}, lat {s:.5f}..{n:.5f}"


def _not_building_no(properties) -> bool:
    """False for a feature tagged ``building=no`` (OSM's way of saying: not a building)."""
    try:
        value = properties.get("building")
    except AttributeError:
        return True
    return not (isinstance(value, str) and value.strip().lower() == "no")


def _read_features(path: str) -> tuple[str | None, list]:
    """(the file's CRS as WKT or None, its geometries) of a vector file; of an OSM extract (.osm,
    .osm.pbf) its building polygons and multipolygons (GDAL's OSM driver, enabled in fiona)."""

    if not is_remote(path) and os.path.isfile(path) and os.path.getsize(path) == 0:
        raise RoofsegError(
            path, "is empty (0 bytes): give footprints as GeoJSON, GeoPackage, Shapefile, FlatGeobuf or an OSM extract"
        )
    try:
        if suffix_of(path) == ".osm" and not is_remote(path):  # XML: read here, negative ids included
            return "EPSG:4326", [fiona.Geometry.from_dict(mapping(g)) for g in read_osm_buildings(path)]
        if suffix_of(path) in OSM_SUFFIXES:
            fiona.drvsupport.supported_drivers["OSM"] = "r"  # fiona lists it not, GDAL has it
            with fiona.open(path, driver="OSM", layer="multipolygons") as src:
                return "EPSG:4326", [
                    f.geometry for f in src if f.geometry is not None and is_building(dict(f.properties))
                ]
        with fiona.open(path) as src:
            # a footprint tagged building=no (an OSM export) is not a building, as in OSM
            return (src.crs.to_wkt() if src.crs else None), [
                f.geometry for f in src if f.geometry is not None and _not_building_no(f.properties)
            ]
    except RoofsegError:
        raise
    except Exception as exc:  # fiona raises a zoo of driver errors
        if "Failed to open dataset" in str(exc):
            raise RoofsegError(
                path,
                "is no vector file roofseg reads: give footprints as GeoJSON, GeoPackage, Shapefile, FlatGeobuf "
                "or an OSM extract",
            ) from None
        raise RoofsegError(path, f"cannot read as vector footprints ({first_line(exc)})") from None


def read_footprints(
    path: str, to_crs, crs: str | None = None, ignore_non_polygons: bool = False, crs_option: str = "--labels-crs"
) -> list[dict]:
    """The polygons of a vector file (or an OSM extract's buildings) as GeoJSON-like dicts in
    ``to_crs`` (None: as they are). ``crs`` states the file's CRS where it has none or a wrong one
    (the command's ``crs_option``, named in the advice); a file of lines or points only is refused
    unless ``ignore_non_polygons`` (then it holds no building)."""
    file_crs, features = _read_features(path)
    geoms = [g.__geo_interface__ for g in features if g.type in POLYGONAL]
    if features and not geoms and not ignore_non_polygons:
        found = Counter(g.type for g in features)
        raise RoofsegError(
            path,
            "holds no polygon, only "
            + ", ".join(f"{n} {t}" for t, n in found.most_common())
            + "; building labels are polygons (--ignore-non-polygons takes it as an area without buildings)",
        )
    src_crs = _labels_crs(path, crs or file_crs, geoms, crs_option)
    if geoms and to_crs is not None and src_crs != to_crs:
        try:
            geoms = transform_geom(src_crs, to_crs, geoms)
        except Exception as exc:  # PROJ errors come as several types
            raise RoofsegError(
                path, f"cannot reproject the footprints from {src_crs} to {to_crs} ({first_line(exc)})"
            ) from None
    return geoms


def _labels_crs(
    path: str, crs_text: str | None, geoms: list[dict], crs_option: str = "--labels-crs"
) -> rasterio.crs.CRS | None:
    """The footprints' CRS, checked against their coordinates: degrees must lie within ±180 / ±90.

    GeoJSON without a ``crs`` member is WGS84 (RFC 7946), so projected coordinates in such a
    file mean a CRS is missing, not that the buildings lie off the globe.
    """
    if not crs_text:
        if not geoms:
            return None
        raise RoofsegError(path, f"footprints have no CRS (add one, e.g. a .prj file, or give {crs_option} EPSG:…)")
    try:
        crs = rasterio.crs.CRS.from_user_input(crs_text)
    except Exception as exc:
        raise RoofsegError(path, f"unknown CRS {crs_text!r} ({first_line(exc)})") from None
    if crs.is_geographic and geoms:
        bb = np.array([bbox(g) for g in geoms])
        x, y = bb[:, [0, 2]], bb[:, [1, 3]]
        if np.abs(x).max() > 180.0 + 1e-6 or np.abs(y).max() > 90.0 + 1e-6:
            k = int(np.argmax(np.maximum(np.abs(x).max(axis=1), np.abs(y).max(axis=1))))
            raise RoofsegError(
                path,
                f"coordinates such as ({bb[k, 0]:.6g}, {bb[k, 1]:.6g}) are not degrees, yet the file's CRS is "
                f"{crs.to_string()} (GeoJSON without a 'crs' member is WGS84 by RFC 7946); "
                f"state their CRS with {crs_option} EPSG:…",
            )
    return crs
