"""--existing: buildings already mapped leave out the predictions they cover, and only those."""

from __future__ import annotations

import fiona
import numpy as np
import pytest
from affine import Affine
from shapely.geometry import box, shape

from conftest import write_geojson, write_tif

T = Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000)


def mask_of(tmp_path, boxes_px):
    """A 0/1 mask GeoTIFF with the given (row, col, height, width) rectangles of roof."""
    data = np.zeros((200, 200), np.uint8)
    for r, c, h, w in boxes_px:
        data[r : r + h, c : c + w] = 1
    return write_tif(tmp_path / "mask.tif", data, transform=T)


def ground_box(r, c, h, w):
    """The rectangle of pixels (row, col, height, width) in the scene's CRS."""
    x, y = T @ (c, r)
    return box(x, y - h * 0.5, x + w * 0.5, y)


def written(path):
    with fiona.open(path) as src:
        return [(shape(f["geometry"]), dict(f["properties"])) for f in src]


@pytest.mark.parametrize("keep", [False, True])
def test_a_small_mapped_shed_never_hides_the_large_new_building_around_it(tmp_path, keep):
    from roofseg.prediction.vector.existing import ExistingBuildings
    from roofseg.prediction.vector.vectorize import write_polygons

    mask = mask_of(tmp_path, [(20, 20, 40, 40)])  # a new 400 m² building
    mapped = write_geojson(tmp_path / "mapped.geojson", [ground_box(30, 30, 2, 2)])  # a 1 m² shed inside it
    known = ExistingBuildings(mapped, "EPSG:32633")
    assert write_polygons(mask, tmp_path / "new.gpkg", existing=known, keep_existing=keep) == 1
    ((geom, props),) = written(tmp_path / "new.gpkg")
    assert geom.area == pytest.approx(400, rel=0.01) and props.get("status", "new") == "new"


def test_a_mapped_house_traced_with_its_new_annex_leaves_the_annex(tmp_path):
    from roofseg.prediction.vector.existing import ExistingBuildings
    from roofseg.prediction.vector.vectorize import write_polygons

    mask = mask_of(tmp_path, [(20, 20, 40, 40), (20, 60, 40, 16), (120, 20, 30, 30)])  # house + annex; another house
    mapped = write_geojson(
        tmp_path / "mapped.geojson",
        # the house and the other house as mapped, half a metre off the imagery as OSM often is
        [ground_box(21, 21, 40, 40), ground_box(121, 20, 30, 30)],
    )
    known = ExistingBuildings(mapped, "EPSG:32633")
    assert write_polygons(mask, tmp_path / "new.gpkg", existing=known, min_area=5) == 1
    ((geom, _),) = written(tmp_path / "new.gpkg")
    annex = ground_box(20, 60, 40, 16)
    assert geom.intersection(annex).area / geom.union(annex).area > 0.85, geom.bounds  # the annex alone
    assert write_polygons(mask, tmp_path / "all.gpkg", existing=known, keep_existing=True, min_area=5) == 2
    assert sorted(p["status"] for _, p in written(tmp_path / "all.gpkg")) == ["extends", "mapped"]


def test_existing_buildings_are_read_once_for_many_scenes(tmp_path, monkeypatch):
    from roofseg.prediction.many import predict_scenes
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.vector import existing
    from roofseg.prediction.vector.vectorize import VectorOptions

    from helpers import red, scenes_in

    scenes_in(tmp_path / "in", 3)
    mapped = write_geojson(tmp_path / "mapped.geojson", [ground_box(10, 10, 4, 4)])
    reads = []
    real = existing.read_footprints
    monkeypatch.setattr(existing, "read_footprints", lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    vectors = VectorOptions(".gpkg", existing=str(mapped))
    options = PredictOptions(tile=64, overlap=16, threshold=0.5)
    predict_scenes(red, [str(tmp_path / "in")], tmp_path / "out", options, vectors, progress=False)
    assert reads == [str(mapped)]


def test_a_new_hall_traced_with_the_mapped_house_beside_it_leaves_the_hall_alone(tmp_path):
    """The mapped house covers a quarter of the prediction, below --existing-overlap: the hall is
    new, and the house is not written again over the map."""
    from roofseg.prediction.vector.existing import ExistingBuildings
    from roofseg.prediction.vector.vectorize import write_polygons

    mask = mask_of(tmp_path, [(20, 20, 40, 20), (20, 40, 40, 62)])  # a 200 m² house and a 620 m² hall, one region
    mapped = write_geojson(tmp_path / "mapped.geojson", [ground_box(20, 20, 40, 20)])
    known = ExistingBuildings(mapped, "EPSG:32633")
    assert write_polygons(mask, tmp_path / "new.gpkg", existing=known, min_area=5) == 1
    ((geom, _),) = written(tmp_path / "new.gpkg")
    hall = ground_box(20, 40, 40, 62)
    assert geom.area == pytest.approx(620, rel=0.02) and geom.intersection(hall).area / geom.area > 0.98
    assert write_polygons(mask, tmp_path / "all.gpkg", existing=known, keep_existing=True, min_area=5) == 1
    assert [p["status"] for _, p in written(tmp_path / "all.gpkg")] == ["new"]
