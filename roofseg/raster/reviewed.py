"""Labels from a review (``roofseg review``'s SQLite store) on a scene's pixel grid.

A mapper's decisions label only what they looked at: an accepted building is roof, a rejected
prediction is ground, and every other pixel is unknown. So beside the roof these labels say which
pixels are known (:meth:`ReviewLabels.known`); the tiler stores that mask with each tile and the
loss leaves the unknown pixels out.
"""

from __future__ import annotations

import os

import fiona
import numpy as np
from rasterio.warp import transform_geom

from roofseg.contracts.review import ACCEPT, REJECT, read_review
from roofseg.errors import RoofsegError, first_line
from roofseg.raster.scene import Scene
from roofseg.raster.shapes import POLYGONAL, FootprintLabels, ShapeIndex
from roofseg.raster.windows import grid_bounds, tile_transform


def _reviewed_shapes(files: tuple[str, ...], wanted: dict[tuple[int, int], str], to_crs) -> dict[str, list[dict]]:
    """The outlines of the ``wanted`` buildings ((pair, feature) → decision), in ``to_crs``, by decision."""
    out: dict[str, list[dict]] = {ACCEPT: [], REJECT: []}
    for k, path in enumerate(files):
        features = {i for (pair, i) in wanted if pair == k}
        if not features:
            continue
        try:
            with fiona.open(path) as src:
                crs = src.crs_wkt or "EPSG:4326"
                # enumerated as the review enumerated them: a key is the feature's position in the file
                found = [(i, f.geometry) for i, f in enumerate(src) if i in features and f.geometry is not None]
        except (fiona.errors.FionaError, OSError, ValueError) as exc:
            raise RoofsegError(path, f"the reviewed footprints cannot be read ({first_line(exc)})") from None
        for i, geometry in found:
            if geometry.type not in POLYGONAL:
                continue
            shape = transform_geom(crs, to_crs, geometry.__geo_interface__)
            out[wanted[(k, i)]].append(shape)
    return out


class ReviewLabels(FootprintLabels):
    """The accepted buildings of a review as roof, the rejected ones as known ground, the rest
    unknown: the footprints' questions (the accepted ones'), plus :meth:`known`."""

    def __init__(self, path: str | os.PathLike, scene: Scene):
        self.path = os.fspath(path)
        if not scene.georeferenced or scene.crs is None:
            raise RoofsegError(scene.path, "has no CRS, so a review's buildings cannot be placed on it")
        review = read_review(self.path)
        wanted = {key: d for d in (ACCEPT, REJECT) for key in review.keys(d)}
        if not wanted:
            raise RoofsegError(
                self.path, "holds no accepted or rejected building yet: review some first (roofseg review)"
            )
        shapes = _reviewed_shapes(review.files, wanted, scene.crs)
        super().__init__(shapes[ACCEPT], scene.transform)
        self.decided = ShapeIndex(shapes[ACCEPT] + shapes[REJECT])
        left, bottom, right, top = grid_bounds(scene.transform, scene.height, scene.width)
        if not self.decided.hits(left, bottom, right, top).any():
            raise RoofsegError(
                self.path, f"no building it decided lies on the scene {scene.path}: give the scene that was reviewed"
            )
        self.counts = {ACCEPT: len(shapes[ACCEPT]), REJECT: len(shapes[REJECT])}

    def known(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """0/1 uint8: 1 where a decision says what the pixel is (an accepted or rejected building)."""
        return self.decided.burn(tile_transform(self.transform, row, col), height, width)
