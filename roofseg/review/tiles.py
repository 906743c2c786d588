"""The imagery of a review as web-mercator map tiles, read by rio-tiler: from a COG's overviews
where the scene has them (a 20,000² scene opens at once), else decimated reads. Bands and the
stretch of non-uint8 imagery are roofseg's own (:class:`roofseg.raster.scene.Scene`), so the
reviewer sees the scene as the model was shown it."""

from __future__ import annotations

import threading

import numpy as np
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader

from roofseg.errors import RoofsegError
from roofseg.raster.scene import Scene

TILE = 256


class SceneTiles:
    """Map tiles of one scene (its first three bands, or its one band, as roofseg reads them)."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()  # one reader, one tile at a time: GDAL datasets are not shared across threads
        try:
            self.reader = Reader(path)
        except Exception as exc:  # noqa: BLE001 — rio-tiler's own errors and GDAL's alike
            raise RoofsegError(path, f"cannot be served as map tiles ({exc})") from None
        with Scene(path) as scene:  # the bands and stretch limits the tiler and the predictor use
            self.indexes, limits = scene.bands, scene.limits
        self.in_range = None if limits is None else tuple(zip(*(np.asarray(v, float).tolist() for v in limits)))
        self.bounds = self.reader.get_geographic_bounds("EPSG:4326")
        self.minzoom, self.maxzoom = self.reader.minzoom, self.reader.maxzoom

    def png(self, z: int, x: int, y: int) -> bytes | None:
        """The PNG of tile (z, x, y), transparent where the scene has no data; None outside it."""
        with self.lock:
            try:
                image = self.reader.tile(x, y, z, tilesize=TILE, indexes=self.indexes)
            except TileOutsideBounds:
                return None
        if self.in_range is not None:
            image.rescale(in_range=self.in_range)
        return image.render(img_format="PNG")

    def close(self) -> None:
        self.reader.close()
