"""The imagery of a review as web-mercator map tiles, read by rio-tiler: from a COG's overviews
where the scene has them (a 20,000² scene opens at once), else decimated reads. Bands and the
stretch of non-uint8 imagery are roofseg's own (:class:`roofseg.raster.scene.Scene`), so the
reviewer sees the scene as the model was shown it."""

from __future__ import annotations

import os
import queue

import numpy as np
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader

from roofseg.errors import RoofsegError
from roofseg.raster.scene import Scene

TILE = 256


class SceneTiles:
    """Map tiles of one scene (its first three bands, or its one band, as roofseg reads them)."""

    def __init__(self, path: str, readers: int | None = None):
        self.path = path
        try:
            self.reader = Reader(path)
        except Exception as exc:  # noqa: BLE001 — rio-tiler's own errors and GDAL's alike
            raise RoofsegError(path, f"cannot be served as map tiles ({exc})") from None
        # a GDAL dataset serves one thread at a time: a reader per core (a browser asks at most six
        # tiles of a host at once), so a view's tiles render side by side, each reader lent to one
        # request at a time; all opened here, and closed by the thread that opened them (rasterio's rule)
        count = readers or min(6, max(1, os.cpu_count() or 1))
        self.readers: list[Reader] = [self.reader] + [Reader(path) for _ in range(count - 1)]
        self.idle: queue.Queue[Reader] = queue.Queue()
        for reader in self.readers:
            self.idle.put(reader)
        with Scene(path) as scene:  # the bands and stretch limits the tiler and the predictor use
            self.indexes, limits = scene.bands, scene.limits
        self.in_range = None if limits is None else tuple(zip(*(np.asarray(v, float).tolist() for v in limits)))
        self.bounds = self.reader.get_geographic_bounds("EPSG:4326")
        self.minzoom, self.maxzoom = self.reader.minzoom, self.reader.maxzoom

    def png(self, z: int, x: int, y: int) -> bytes | None:
        """The PNG of tile (z, x, y), transparent where the scene has no data; None outside it."""
        reader = self.idle.get()
        try:
            image = self._render(reader, x, y, z)
        except TileOutsideBounds:
            return None
        finally:
            self.idle.put(reader)
        if self.in_range is not None:
            image.rescale(in_range=self.in_range)
        return image.render(img_format="PNG")

    def _render(self, reader: Reader, x: int, y: int, z: int):
        return reader.tile(x, y, z, tilesize=TILE, indexes=self.indexes)

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
