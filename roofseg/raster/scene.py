"""A scene opened for window-by-window reading as uint8 RGB plus a validity mask.

This is the one raster-reading path of roofseg: the tiler, the predictor and the scene
evaluator all read imagery through :class:`Scene`, so band selection, one-band
replication, the percentile stretch and nodata handling are the same everywhere.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Sequence
from xml.sax.saxutils import escape

import cv2
import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from roofseg.errors import RoofsegError, first_line
from roofseg.raster import scaling
from roofseg.raster.ground import ground_pixel_sides, ground_pixel_size
from roofseg.scenes import is_remote
from roofseg.xyz import tile_failure

CHANNELS = 3


def open_raster(path: str, what: str = "a raster") -> rasterio.DatasetReader:
    """Open ``path`` with rasterio, or raise a one-line RoofsegError saying why not.

    A missing georeference is not an error here (the caller decides), so GDAL's warning is muted.
    """
    with warnings.catch_warnings(), remote_env(path):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            return rasterio.open(path)
        except RasterioError as exc:
            raise RoofsegError(path, f"cannot open as {what} ({first_line(exc)})") from None


def remote_env(path: str) -> contextlib.AbstractContextManager:
    """GDAL settings for opening ``path``: for a URL, no listing of its folder (a bucket may hold
    millions of files) and no search for side-car files; nothing for a local file."""
    if not is_remote(os.fspath(path)):
        return contextlib.nullcontext()
    return rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR")


#: the CRS given to an image without georeference whose pixel size is declared: a transverse
#: Mercator of scale 1 about (0°, 0°), so that pixels near its origin measure what was declared
DECLARED_CRS = "+proj=tmerc +lat_0=0 +lon_0=0 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"


def declared(ds: rasterio.DatasetReader, path: str, pixel_size: float | None, nodata: float | None) -> str | None:
    """A VRT (its XML) of an image without georeference (a PNG or JPG) with what it does not say:
    a grid of ``pixel_size`` metres, and ``nodata`` where its bands state none. None for a
    georeferenced scene, which keeps its own grid and nodata, or where nothing is declared."""
    georeferenced = ds.crs is not None or not ds.transform.is_identity
    if georeferenced or (pixel_size is None and nodata is None):
        return None
    grid = ""
    if pixel_size is not None:
        crs = escape(rasterio.crs.CRS.from_user_input(DECLARED_CRS).to_wkt())
        grid = f"<SRS>{crs}</SRS><GeoTransform>0, {pixel_size!r}, 0, 0, 0, {-pixel_size!r}</GeoTransform>"
    source = escape(os.path.abspath(path) if not is_remote(path) else path)
    bands = []
    for b in range(1, ds.count + 1):
        kind = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "float32": "Float32"}.get(ds.dtypes[b - 1])
        if kind is None:
            raise RoofsegError(
                path, f"--pixel-size and --nodata take 8/16-bit or float32 images, not {ds.dtypes[b - 1]}"
            )
        value = ds.nodatavals[b - 1] if ds.nodatavals[b - 1] is not None else nodata
        bands.append(
            f'<VRTRasterBand dataType="{kind}" band="{b}">'
            + (f"<NoDataValue>{value!r}</NoDataValue>" if value is not None else "")
            + f'<SimpleSource><SourceFilename relativeToVRT="0">{source}</SourceFilename>'
            f"<SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>"
        )
    return f'<VRTDataset rasterXSize="{ds.width}" rasterYSize="{ds.height}">{grid}{"".join(bands)}</VRTDataset>'


def native_gsd(path: str | os.PathLike) -> float | None:
    """A scene's own ground pixel size in metres (None where it has no georeference)."""
    with open_raster(os.fspath(path), "a scene") as ds:
        return ground_pixel_size(ds.crs, ds.transform, ds.height, ds.width)


def resampled_shape(ds: rasterio.DatasetReader, gsd: float, path: str) -> tuple[int, int] | None:
    """(height, width) of ``ds`` resampled to ground pixels of ``gsd`` metres, or None where it has
    that size already (within 1 %: resampling by less changes nothing a model can see)."""
    sides = ground_pixel_sides(ds.crs, ds.transform, ds.height, ds.width)
    if sides is None:
        raise RoofsegError(path, "has no CRS, so its ground pixel size is unknown and it cannot be resampled to a GSD")
    # each axis by its own ground length: a degree of longitude is shorter than one of latitude
    fx, fy = gsd / sides[0], gsd / sides[1]
    if abs(fx - 1) < 0.01 and abs(fy - 1) < 0.01:
        return None
    return max(1, round(ds.height / fy)), max(1, round(ds.width / fx))


def resampled(
    ds: rasterio.DatasetReader, gsd: float, coarser: Resampling, finer: Resampling, path: str
) -> rasterio.DatasetReader:
    """``ds`` as a warped VRT with ground pixels of ``gsd`` metres, or ``ds`` itself when it has
    that size already (within 1 %: resampling by less changes nothing a model can see)."""

    shape = resampled_shape(ds, gsd, path)
    if shape is None:
        return ds
    height, width = shape
    transform = ds.transform @ Affine.scale(ds.width / width, ds.height / height)
    # An internal mask band is not warped by itself (nodata values and alpha bands are): carried
    # as an alpha band of the VRT, masked areas stay nodata at the new GSD.
    flags = ds.mask_flag_enums[0]
    mask_band = MaskFlags.per_dataset in flags and MaskFlags.alpha not in flags and MaskFlags.nodata not in flags
    return WarpedVRT(
        ds,
        crs=ds.crs,
        transform=transform,
        width=width,
        height=height,
        resampling=coarser if height * width < ds.height * ds.width else finer,
        add_alpha=mask_band,
    )


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """Parse ``--bands`` ("3,2,1" → (3, 2, 1)); None or "" means the default choice."""
    if not text:
        return None
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise ValueError(f"--bands takes 1-based band numbers separated by commas, got {text!r}") from None
    if len(bands) not in (1, 3) or min(bands) < 1:
        raise ValueError(f"--bands takes 1 or 3 band numbers (1-based), got {text!r}")
    return bands


class Scene:
    """An open GeoTIFF (or any GDAL raster) read as uint8 ``(h, w, 3)`` tiles.

    ``bands`` picks and orders bands (1-based); by default the first three, or the only
    one, replicated to three channels. See :data:`roofseg.raster.scaling.SCALING_RULE`.

    ``pixel_size`` (metres) gives an image without georeference a grid (a PNG of known ground
    resolution); ``nodata`` names the no-data value of bands that state none (every band at it).

    ``gsd`` (metres): read the scene resampled to that ground pixel size, through a warped VRT
    (same CRS and origin; area average when coarsening, bilinear when refining), still window by
    window. Every grid property (size, transform) is then the resampled grid's.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        bands: Sequence[int] | None = None,
        gsd: float | None = None,
        pixel_size: float | None = None,
        nodata: float | None = None,
    ):
        self.path = os.fspath(path)
        self.ds = self.source = open_raster(self.path)
        try:
            vrt = declared(self.source, self.path, pixel_size, nodata)
            if vrt is not None:  # what the file does not say, declared (tile --pixel-size, --nodata)
                self.source.close()
                self.ds = self.source = open_raster(vrt, "a scene with a declared grid or nodata")
            if gsd:
                self.ds = resampled(self.source, gsd, Resampling.average, Resampling.bilinear, self.path)
            self.bands = self._choose_bands(bands)
            self._valid_from = self._validity_source()
        except BaseException:
            self.close()
            raise

    # -- metadata -------------------------------------------------------------------------
    @property
    def height(self) -> int:
        return self.ds.height

    @property
    def width(self) -> int:
        return self.ds.width

    @property
    def crs(self):
        return self.ds.crs

    @property
    def transform(self):
        return self.ds.transform

    @property
    def dtype(self) -> str:
        return self.ds.dtypes[self.bands[0] - 1]

    @property
    def georeferenced(self) -> bool:
        return self.ds.crs is not None or not self.ds.transform.is_identity

    def _choose_bands(self, bands: Sequence[int] | None) -> tuple[int, ...]:
        count = self.source.count  # a resampled scene's VRT may add an alpha band
        if bands is None:
            if count >= 3:
                return (1, 2, 3)
            if count == 1:
                return (1,)
            raise RoofsegError(self.path, f"has {count} bands; pick 1 or 3 of them with --bands")
        bad = [b for b in bands if not 1 <= b <= count]
        if bad:
            raise RoofsegError(self.path, f"has {count} bands, no band {bad[0]} (--bands)")
        if len({self.ds.dtypes[b - 1] for b in bands}) > 1:
            raise RoofsegError(self.path, "the chosen bands have different data types")
        return tuple(bands)

    def _validity_source(self) -> str:
        flags = [self.ds.mask_flag_enums[b - 1] for b in self.bands]
        if all(MaskFlags.nodata in f for f in flags):
            return "nodata"
        if all(MaskFlags.all_valid in f for f in flags):
            return "all"
        return "mask"  # an internal mask band or an alpha band

    @functools.cached_property
    def limits(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-band (low, high) of the percentile stretch; None for uint8 (used as it is).

        Computed on the first read, not on opening: opening a scene to check it or to take its
        grid (the tiler's planning, evaluate-scene) then costs no extra read.
        """
        if self.dtype == "uint8":
            return None
        h, w = scaling.decimation(self.height, self.width)
        try:
            data = self.ds.read(self.bands, out_shape=(len(self.bands), h, w), resampling=Resampling.nearest)
            valid = self._valid(data, None, (h, w))
            return scaling.stretch_limits(data, valid)
        except RasterioError as exc:
            raise RoofsegError(self.path, f"read failed ({first_line(exc)})") from None
        except ValueError as exc:
            raise RoofsegError(self.path, str(exc)) from None

    @functools.cached_property
    def _zero_at_nodata(self) -> bool:
        """Whether nodata pixels are read as 0 already (uint8 bands whose nodata value is 0, every
        band of a nodata pixel being nodata), so zeroing them again is a pass for nothing."""
        return self._valid_from == "nodata" and self.limits is None and self.ds.nodatavals[self.bands[0] - 1] == 0

    def _valid(self, data: np.ndarray, window: Window | None, shape: tuple[int, int]) -> np.ndarray:
        if self._valid_from == "all":
            valid = np.ones(shape, bool)
        elif self._valid_from == "mask":
            masks = self.ds.read_masks(self.bands[0], window=window, out_shape=shape, resampling=Resampling.nearest)
            valid = masks > 0
        else:
            nodata = self.ds.nodatavals[self.bands[0] - 1]
            invalid = np.isnan(data) if np.isnan(nodata) else data == nodata
            # GDAL's rule for per-band nodata: a pixel is nodata only where every band is.
            valid = ~invalid.all(axis=0)
        if data.dtype.kind == "f":
            # NaN is no measurement whatever the nodata value says: a pixel with any NaN band is nodata.
            valid &= ~np.isnan(data).any(axis=0)
        return valid

    # -- reading --------------------------------------------------------------------------
    def read(self, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Read scene pixels [row:row+height, col:col+width] as uint8 (h, w, 3) and valid (h, w).

        Nodata pixels are 0 in the image and False in ``valid``.
        """
        window = Window(col, row, width, height)
        try:
            data = self.ds.read(self.bands, window=window)
        except RasterioError as exc:
            tile = tile_failure(exc, self.source.tags())
            if tile:
                raise RoofsegError(self.path, tile) from None
            raise RoofsegError(self.path, f"read failed at row {row}, col {col} ({first_line(exc)})") from None
        return self._rgb(data, self._valid(data, window, (height, width)))

    def overview(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The whole scene read decimated (area average) to ``height`` × ``width``, as :meth:`read` gives it."""
        try:
            data = self.ds.read(self.bands, out_shape=(len(self.bands), height, width), resampling=Resampling.average)
        except RasterioError as exc:
            raise RoofsegError(self.path, f"read failed ({first_line(exc)})") from None
        return self._rgb(data, self._valid(data, None, (height, width)))

    def _rgb(self, data: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bands as read → uint8 (h, w, 3) (stretched, one band replicated), nodata zeroed; and ``valid``."""
        if self.limits is not None:
            data = scaling.stretch_to_uint8(data, *self.limits)
        # cv2.merge interleaves bands into (h, w, 3) far faster than numpy's strided copy
        planes = [data[0]] * CHANNELS if len(self.bands) == 1 else list(data)
        image = cv2.merge(planes)
        if not self._zero_at_nodata and not valid.all():  # nodata to 0: OpenCV's one pass, not a masked assignment
            image = cv2.bitwise_and(image, image, mask=valid.view(np.uint8))
        return image, valid

    def close(self) -> None:
        self.ds.close()
        self.source.close()

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


MIN_CACHE_BYTES = 64 * 2**20


def band_cache(scene: Scene, rows: int) -> rasterio.Env:
    """A rasterio.Env whose GDAL block cache holds two bands of ``rows`` rows of the scene.

    Windows are read once each, row band by row band, so caching more buys nothing; GDAL's
    default (5 % of RAM) would instead keep every block read, and memory would grow with the
    scene's area. Sized by the scene's width, the cache stays bounded whatever its height.
    """
    itemsize = np.dtype(scene.ds.dtypes[0]).itemsize
    # a band of windows spans up to two rows of the file's blocks (512 px in a COG): each must stay
    # cached until every window over it is read, or a remote scene is fetched once per row of windows
    block_rows = max(scene.source.block_shapes[0][0], 1) if scene.ds is scene.source else rows
    band_bytes = (rows + 2 * block_rows) * scene.width * scene.source.count * itemsize
    return rasterio.Env(GDAL_CACHEMAX=max(MIN_CACHE_BYTES, 2 * band_bytes))
