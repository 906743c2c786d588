"""Fixtures of the review's tests: a scene with three footprints, and a review served on 127.0.0.1."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

from conftest import write_tif


@pytest.fixture
def pair(tmp_path):
    """A scene and three footprints with confidences (0.9, 0.2, 0.6) in its CRS."""
    import fiona

    rng = np.random.default_rng(0)
    scene = write_tif(tmp_path / "city.tif", rng.integers(30, 220, (3, 256, 256), dtype=np.uint8))
    x0, y0 = 500_000, 5_000_000
    boxes = [
        box(x0 + 10, y0 - 30, x0 + 25, y0 - 15),
        box(x0 + 40, y0 - 30, x0 + 50, y0 - 22),
        box(x0 + 60, y0 - 60, x0 + 80, y0 - 40),
    ]
    schema = {"geometry": "Polygon", "properties": {"id": "int", "area_m2": "float", "confidence": "float"}}
    path = tmp_path / "city.gpkg"
    with fiona.open(path, "w", driver="GPKG", schema=schema, crs="EPSG:32633", SPATIAL_INDEX="NO") as dst:
        for i, (b, c) in enumerate(zip(boxes, (0.9, 0.2, 0.6)), 1):
            dst.write({"geometry": b.__geo_interface__, "properties": {"id": i, "area_m2": b.area, "confidence": c}})
    return scene, path


@pytest.fixture
def served(pair, tmp_path):
    from roofseg.review.queue import Pair
    from roofseg.review.server import Review, ReviewServer

    servers = []

    def start(store=tmp_path / "review.sqlite", **kw):
        server = ReviewServer(Review([Pair(str(pair[0]), str(pair[1]))], store, **kw))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
