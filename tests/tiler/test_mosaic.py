"""roofseg mosaic: dense settlements pasted from the roofs of a labelled scene."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import shapely.ops
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Polygon, box, shape
from shapely.ops import unary_union

from roofseg.tiler.inputs import find_labels
from roofseg.tiler.mosaic import write_mosaics

from conftest import UTM, one_error_line, write_geojson, write_tif

PIXEL = 0.1  # metres: the source scene's pixels
ORIGIN = (500_000.0, 5_000_000.0)


def red_roofs_scene(tmp_path, roofs: list[Polygon], crs: str | None = None):
    """A 240×240 px scene of green ground with ``roofs`` (local metres) painted red, and their
    footprints (in the scene's CRS, or in ``crs``)."""
    image = np.zeros((3, 240, 240), np.uint8)
    image[:] = np.array([70, 110, 60], np.uint8)[:, None, None]
    footprints = []
    for roof in roofs:
        x0, y0, x1, y1 = (round(v / PIXEL) for v in roof.bounds)
        image[:, y0:y1, x0:x1] = np.array([200, 40, 40], np.uint8)[:, None, None]
        x0, y0, x1, y1 = ORIGIN[0] + x0 * PIXEL, ORIGIN[1] - y1 * PIXEL, ORIGIN[0] + x1 * PIXEL, ORIGIN[1] - y0 * PIXEL
        footprints.append(box(x0, y0, x1, y1))
    scene = write_tif(tmp_path / "town_image.tif", image, Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1]))
    if crs:
        to_crs = Transformer.from_crs(UTM, crs, always_xy=True).transform
        footprints = [shapely.ops.transform(to_crs, f) for f in footprints]
    labels = write_geojson(tmp_path / "town_labels.geojson", footprints, **({"crs": crs} if crs else {}))
    return scene, labels


def houses(tmp_path, seed=0, crs=None):
    roofs = [box(2 + 6 * i, 2 + 8 * j, 5 + 6 * i, 7 + 8 * j) for i in range(3) for j in range(2)]
    scene, labels = red_roofs_scene(tmp_path, roofs, crs)
    (image,) = write_mosaics([(scene, labels)], tmp_path / f"mosaic{seed}", count=1, size=128, seed=seed)
    return image


@pytest.mark.parametrize("crs", [None, "EPSG:4326"])
def test_every_house_is_a_pasted_roof_and_neighbours_share_walls(tmp_path, crs):
    image = houses(tmp_path, crs=crs)  # footprints in the scene's CRS, or in degrees
    labels = find_labels(image, "vector")  # tile finds them beside the image
    feats = json.loads(open(labels).read())["features"]
    polygons = [shape(f["geometry"]) for f in feats]
    assert len(polygons) > 5
    assert all(abs(p.area - p.envelope.area) < 1e-6 for p in polygons)  # lots are rectangles
    union = unary_union(polygons)
    assert abs(union.area - sum(p.area for p in polygons)) < 1e-6  # no two overlap
    shared = sum(a.intersection(b).length > 0 for i, a in enumerate(polygons) for b in polygons[i + 1 :])
    assert shared >= len(polygons) // 2  # houses touch: walls shared
    with rasterio.open(image) as ds:
        assert ds.crs is not None and ds.count == 3
        pixels = ds.read()
        inside = 0
        for p in polygons:
            minx, miny, maxx, maxy = p.bounds
            (r0, c0), (r1, c1) = ds.index(minx, maxy), ds.index(maxx, miny)
            block = pixels[:, r0 + 2 : r1 - 2, c0 + 2 : c1 - 2]
            if block.shape[1] > 1 and block.shape[2] > 1:
                red, green = block[0].mean(), block[1].mean()
                assert red > green + 60, (p.bounds, red, green)  # a red roof, never the green ground
                inside += 1
        assert inside >= 3
        assert box(*ds.bounds).contains(union)


def test_the_same_seed_gives_the_same_scene_and_another_seed_another(tmp_path):
    def read(path):
        with rasterio.open(path) as ds:
            return ds.read()

    a, b, c = houses(tmp_path, 0), houses(tmp_path, 0), houses(tmp_path, 1)
    assert np.array_equal(read(a), read(b))
    assert not np.array_equal(read(a), read(c))


def test_a_scene_without_footprints_or_without_one_roof_is_one_line(tmp_path, run_cli):
    scene, _ = red_roofs_scene(tmp_path, [box(2, 2, 5, 7)])
    (tmp_path / "town_labels.geojson").unlink()
    line = one_error_line(run_cli("mosaic", scene, "-o", tmp_path / "out", "--quiet"))
    assert "town_image.tif" in line and "no labels found" in line and "--labels" not in line  # mosaic has none
    write_tif(tmp_path / "town_mask.tif", np.zeros((240, 240), np.uint8))
    line = one_error_line(run_cli("mosaic", scene, "-o", tmp_path / "out", "--quiet"))
    assert "town_image.tif" in line and "mask" in line
    # footprints that are no roof to paste (an L-shape, not a rectangle)
    (tmp_path / "town_mask.tif").unlink()
    ell = [(0, 0), (4, 0), (4, 1), (1, 1), (1, 4), (0, 4)]  # metres from the scene's corner
    write_geojson(tmp_path / "town_labels.geojson", [Polygon([(ORIGIN[0] + x, ORIGIN[1] - y) for x, y in ell])])
    line = one_error_line(run_cli("mosaic", scene, "-o", tmp_path / "out", "--quiet"))
    assert "no roof to paste" in line
    assert not list((tmp_path / "out").glob("*_image.tif"))
