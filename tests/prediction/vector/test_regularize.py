"""Regular outlines: traced staircases become straight, right-angled sides where a building is
rectilinear; other shapes are only simplified; areas stay within a few percent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.features import rasterize, shapes
from shapely import affinity
from shapely.geometry import Polygon, shape

from roofseg.prediction.vector.regularize import regularize

PIXEL = 0.3


def traced(poly: Polygon, n: int = 200) -> Polygon:
    """``poly`` burnt into a raster of PIXEL m pixels and traced back: the staircase roofseg predicts."""
    t = Affine(PIXEL, 0, 0, 0, -PIXEL, n * PIXEL)
    grid = rasterize([poly], out_shape=(n, n), transform=t).astype(np.uint8)
    (found,) = [shape(g) for g, v in shapes(grid, mask=grid, connectivity=8, transform=t) if v == 1]
    return found


def corner_angles(poly: Polygon) -> list[float]:
    ring = list(poly.exterior.coords)[:-1]
    out = []
    for a, b, c in zip(ring[-1:] + ring[:-1], ring, ring[1:] + ring[:1]):
        v1, v2 = (a[0] - b[0], a[1] - b[1]), (c[0] - b[0], c[1] - b[1])
        out.append(math.degrees(math.acos((v1[0] * v2[0] + v1[1] * v2[1]) / math.hypot(*v1) / math.hypot(*v2))))
    return out


@pytest.mark.parametrize(
    "shape_name, angle, corners", [("rectangle", 25, 4), ("rectangle", 0, 4), ("L", -33, 6), ("L", 71, 6), ("U", 12, 8)]
)
def test_rectilinear_buildings_get_square_corners_and_keep_their_area(shape_name, angle, corners):
    outlines = {
        "rectangle": Polygon([(10, 10), (40, 10), (40, 28), (10, 28)]),
        "L": Polygon([(10, 10), (40, 10), (40, 20), (22, 20), (22, 40), (10, 40)]),
        "U": Polygon([(10, 10), (40, 10), (40, 35), (32, 35), (32, 20), (18, 20), (18, 35), (10, 35)]),
    }
    truth = affinity.rotate(outlines[shape_name], angle, origin="centroid")
    staircase = traced(truth)
    regular = regularize(staircase, PIXEL)
    assert regular.is_valid and regular.geom_type == "Polygon"
    assert len(regular.exterior.coords) - 1 == corners <= len(staircase.exterior.coords) - 1
    assert all(abs(a - 90) < 0.5 for a in corner_angles(regular))
    assert abs(regular.area - truth.area) < 0.03 * truth.area
    assert truth.symmetric_difference(regular).area < 0.05 * truth.area


def test_round_and_diagonal_shapes_are_simplified_not_squared():
    for truth in (shapely.Point(30, 30).buffer(12), Polygon([(10, 10), (40, 10), (25, 38)])):
        staircase = traced(truth)
        regular = regularize(staircase, PIXEL)
        assert regular.is_valid and len(regular.exterior.coords) < len(staircase.exterior.coords) / 3
        assert not all(abs(a - 90) < 1 for a in corner_angles(regular))
        assert abs(regular.area - truth.area) < 0.03 * truth.area


def test_multipolygons_are_regularized_part_by_part():
    a = traced(Polygon([(5, 5), (20, 5), (20, 15), (5, 15)]))
    b = traced(affinity.rotate(Polygon([(30, 30), (50, 30), (50, 45), (30, 45)]), 30, origin="centroid"))
    regular = regularize(shapely.MultiPolygon([a, b]), PIXEL)
    assert regular.geom_type == "MultiPolygon" and len(regular.geoms) == 2
    assert [len(p.exterior.coords) - 1 for p in regular.geoms] == [4, 4]


@pytest.mark.parametrize("angle", [0, 17, 45])
def test_buildings_of_a_few_pixels_keep_their_area(angle):
    truth = affinity.rotate(Polygon([(20, 20), (21.5, 20), (21.5, 21.2), (20, 21.2)]), angle, origin="centroid")
    staircase = traced(truth)
    regular = regularize(staircase, PIXEL)
    assert regular.is_valid and abs(regular.area - staircase.area) <= 0.08 * staircase.area


def test_a_courtyard_that_cannot_be_squared_is_kept():
    outer = Polygon([(0, 0), (30, 0), (30, 30), (0, 30)])
    courtyard = shapely.Point(15, 15).buffer(4.5)  # round: no square ring fits it
    building = traced(outer.difference(courtyard))
    assert len(building.interiors) == 1
    out = regularize(building, PIXEL)
    assert out.geom_type == "Polygon" and len(out.interiors) == 1
    assert abs(out.area - building.area) <= 0.08 * building.area


def test_split_buildings_stay_apart_after_squaring(tmp_path):
    from rasterio.features import rasterize as burn

    from roofseg.prediction.vector.instances import ContactBand
    from roofseg.prediction.vector.vectorize import polygons

    from conftest import write_tif

    n = 120
    t = Affine(PIXEL, 0, 0, 0, -PIXEL, n * PIXEL)
    # A is upright; B is turned 12° and shares its leaning wall with A. Squared in A's frame the
    # wall turns upright and crosses into B, which squares it in its own frame.
    wall = affinity.rotate(shapely.LineString([(18, -20), (18, 60)]), -12, origin=(18, 18))
    b = affinity.rotate(Polygon([(18, 4), (30, 4), (30, 30), (18, 30)]), -12, origin=(18, 18))
    left_of_wall = shapely.Polygon(list(wall.coords) + [(-20, 60), (-20, -20)])
    a = Polygon([(4, 6), (25, 6), (25, 28), (4, 28)]).intersection(left_of_wall)
    roof = burn([a, b], out_shape=(n, n), transform=t, dtype="uint8")
    contact = (burn([wall.buffer(0.5)], out_shape=(n, n), transform=t) * roof * 255).astype(np.uint8)
    write_tif(tmp_path / "binary.tif", roof, transform=t)
    write_tif(tmp_path / "pred.tif", np.stack([roof * 255, contact]).astype(np.uint8), transform=t)
    parts = [
        shape(b.geometry)
        for b in polygons(tmp_path / "binary.tif", 0.0, True, ContactBand(str(tmp_path / "pred.tif"), 2, 127))
    ]
    assert len(parts) == 2
    assert parts[0].intersection(parts[1]).area < 1e-6
