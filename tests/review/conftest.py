"""Fixtures of the review's tests: a scene with three footprints, and a review served on 127.0.0.1."""

from __future__ import annotations

import pytest
from shapely.geometry import box

from helpers import review_pair


@pytest.fixture
def pair(tmp_path):
    """A scene and three footprints with confidences (0.9, 0.2, 0.6) in its CRS."""
    x0, y0 = 500_000, 5_000_000
    boxes = [
        box(x0 + 10, y0 - 30, x0 + 25, y0 - 15),
        box(x0 + 40, y0 - 30, x0 + 50, y0 - 22),
        box(x0 + 60, y0 - 60, x0 + 80, y0 - 40),
    ]
    return review_pair(tmp_path, boxes, (0.9, 0.2, 0.6))


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
