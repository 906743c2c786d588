"""Figures and files that are right where real scenes differ from the easy case: rotated and
south-up grids, web-mercator and US-feet CRSs, NaN nodata, resized folder pairs, scene crops."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from affine import Affine
from rasterio.features import rasterize
from shapely.geometry import Polygon, box, mapping

from roofseg.contracts.tile import read_records
from roofseg.tiler.tile import TileParams

from conftest import write_geojson, write_tif
from helpers import tile_dict as tile


def mosaic_masks(out, size: int, height: int, width: int) -> np.ndarray:
    """The scene-sized mask put together from every tile of every split."""
    mask = np.zeros((height + size, width + size), np.uint8)
    for shard in out.rglob("*.tfrecord"):
        for r in read_records(str(shard)):
            mask[r["row"] : r["row"] + size, r["col"] : r["col"] + size] = r["mask"]
    return mask[:height, :width]


@pytest.mark.parametrize("angle", [30, 60, 180])  # 180: south-up
def test_rotated_and_south_up_scenes_burn_every_footprint(tmp_path, angle):
    rng = np.random.default_rng(angle)
    transform = Affine.translation(500_000, 5_000_000) * Affine.rotation(angle) * Affine.scale(0.5, -0.5)
    h = w = 192
    scene = write_tif(tmp_path / "rot.tif", rng.integers(1, 255, (3, h, w), dtype=np.uint8), transform=transform)
    roofs = []
    for _ in range(12):  # footprints placed in pixel space, so all lie on the scene
        c, r = rng.uniform(10, w - 30), rng.uniform(10, h - 30)
        roofs.append(Polygon([transform @ xy for xy in ((c, r), (c + 15, r), (c + 15, r + 10), (c, r + 10))]))
    write_geojson(tmp_path / "rot.geojson", roofs)
    want = rasterize([(mapping(p), 1) for p in roofs], out_shape=(h, w), transform=transform, dtype="uint8")
    assert want.sum() > 500
    out = tmp_path / "tiles"
    tile(
        [str(scene)],
        out,
        TileParams(size=64, stride=64, max_nodata=1.0, split_block=64),
        labels=[str(tmp_path / "rot.geojson")],
        progress=False,
    )
    np.testing.assert_array_equal(mosaic_masks(out, 64, h, w), want)


def test_ground_areas_in_web_mercator_us_feet_and_degrees():
    from pyproj import Transformer

    from roofseg.raster.ground import GroundArea

    # a 20 m x 10 m building at 60° N, 10° E, expressed in each CRS
    lon, lat = 10.0, 60.0
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32632", always_xy=True)
    x0, y0 = to_utm.transform(lon, lat)
    ground = box(x0, y0, x0 + 20, y0 + 10)
    assert GroundArea("EPSG:32632")(ground) == pytest.approx(200, rel=2e-3)
    for crs, factor in (("EPSG:3857", 4.0), ("EPSG:4326", None)):
        t = Transformer.from_crs("EPSG:32632", crs, always_xy=True)
        from shapely.ops import transform as reproject

        poly = reproject(lambda x, y: t.transform(x, y), ground.segmentize(1.0))
        if factor:
            assert poly.area == pytest.approx(200 * factor, rel=0.02)  # CRS units lie: 4x at 60°
        assert GroundArea(crs)(poly) == pytest.approx(200, rel=5e-3)
    # US survey feet (New York Long Island): 1 m² is ~10.76 ft²
    t = Transformer.from_crs("EPSG:4326", "EPSG:2263", always_xy=True)
    fx, fy = t.transform(-73.9, 40.7)
    ft = 1200 / 3937
    poly = box(fx, fy, fx + 20 / ft, fy + 10 / ft)
    assert poly.area == pytest.approx(200 * 10.7639, rel=1e-3)
    assert GroundArea("EPSG:2263")(poly) == pytest.approx(200, rel=5e-3)


def test_predicted_footprint_areas_and_min_area_are_ground_square_metres(tmp_path):
    from roofseg.prediction.vector.vectorize import polygons

    # EPSG:3857 pixels of 0.6 units at 60° N are 0.3 m on the ground: 40 x 20 px = 12 m x 6 m = 72 m²
    x, y = 1_113_194.9, 8_399_737.9  # 10° E, 60° N
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 10:50] = 1
    binary = write_tif(tmp_path / "b.tif", mask, transform=Affine(0.6, 0, x, 0, -0.6, y), crs="EPSG:3857")
    ((geom, area, _),) = list(polygons(binary))
    assert area == pytest.approx(72, rel=0.01)
    assert list(polygons(binary, min_area=80)) == []  # 288 "m²" in CRS units, but 72 on the ground


def test_vector_polygons_are_valid_where_pixels_touch_at_corners(tmp_path):
    from shapely.geometry import shape

    from roofseg.prediction.vector.vectorize import polygons

    mask = np.zeros((12, 12), np.uint8)
    mask[2:5, 2:5] = 1
    mask[5:8, 5:8] = 1  # touches the first square at one corner: one 8-connected region
    mask[1:10, 9] = 1
    mask[9, 9:11] = 1
    mask[8, 10] = 1  # a ring closing on itself diagonally
    binary = write_tif(tmp_path / "b.tif", mask)
    found = [shape(b.geometry) for b in polygons(binary)]
    assert found and all(p.is_valid for p in found)
    assert sum(p.area for p in found) == pytest.approx(mask.sum() * 0.25)


def test_float_scene_with_nodata_value_and_nan_is_not_black(tmp_path):
    rng = np.random.default_rng(5)
    data = rng.uniform(100, 3000, (3, 128, 128)).astype(np.float32)
    data[:, :, :20] = -9999.0  # declared nodata
    data[:, 40:60, 40:60] = np.nan  # NaN as well, as many float products carry
    scene = write_tif(tmp_path / "f.tif", data, nodata=-9999.0)
    mask = np.zeros((128, 128), np.uint8)
    mask[30:90, 30:90] = 1
    write_tif(tmp_path / "f_mask.tif", mask)
    out = tmp_path / "tiles"
    tile(
        [str(scene)],
        out,
        TileParams(size=64, stride=64, max_nodata=1.0, split_block=128, val=0, test=0),
        progress=False,
    )
    recs = [r for s in out.rglob("*.tfrecord") for r in read_records(str(s))]
    assert len(recs) == 4
    image = np.zeros((128, 128, 3), np.uint8)
    labels = np.zeros((128, 128), np.uint8)
    for r in recs:
        image[r["row"] : r["row"] + 64, r["col"] : r["col"] + 64] = r["image"]
        labels[r["row"] : r["row"] + 64, r["col"] : r["col"] + 64] = r["mask"]
    valid = np.ones((128, 128), bool)
    valid[:, :20] = False
    valid[40:60, 40:60] = False
    assert image[valid].mean() > 60  # stretched imagery, not black
    assert not image[~valid].any() and not labels[~valid].any()  # NaN is nodata: no roof label there
    assert labels[valid & (mask > 0)].all()


def test_folder_mode_mask_lands_on_the_image_grid(tmp_path):
    root = tmp_path / "pairs"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(3)
    for i, (h, w) in enumerate([(1500, 1500), (517, 611), (100, 90)]):
        mask = np.zeros((h, w), np.uint8)
        for _ in range(25):  # rectangles with edges anywhere
            r, c = rng.integers(0, h - 10), rng.integers(0, w - 10)
            mask[r : r + rng.integers(5, h // 3), c : c + rng.integers(5, w // 3)] = 255
        cv2.imwrite(str(root / "images" / f"m{i}.png"), np.dstack([mask] * 3))  # the image is the mask
        cv2.imwrite(str(root / "masks" / f"m{i}.png"), mask)
    out = tmp_path / "tiles"
    tile([str(root)], out, TileParams(size=256, stride=256), progress=False)
    recs = [r for s in out.rglob("*.tfrecord") for r in read_records(str(s))]
    assert len(recs) == 3
    for r in recs:
        image_says = r["image"][..., 0] >= 128
        disagree = np.count_nonzero(image_says != (r["mask"] > 0))
        assert disagree <= 2, (r["scene_id"], disagree)  # only pixels at exactly one half may differ


@pytest.mark.parametrize(
    "crs, unit_pixel, ground",
    [
        ("EPSG:32633", 0.3, 0.3),  # UTM metres
        ("EPSG:3857", 0.6, 0.3),  # web-mercator units at 60° N are twice the ground metres
        ("EPSG:4326", 0.3 / 111_320, 0.3),  # degrees at the equator
    ],
)
def test_the_manifest_records_each_scenes_ground_pixel_size(tmp_path, crs, unit_pixel, ground):
    import math

    y = {"EPSG:3857": 6378137 * math.log(math.tan(math.pi / 4 + math.radians(60) / 2)), "EPSG:4326": 0.001}.get(
        crs, 5_000_000
    )
    transform = Affine(unit_pixel, 0, 0 if crs == "EPSG:4326" else 500_000, 0, -unit_pixel, y)
    rng = np.random.default_rng(0)
    image = write_tif(tmp_path / "g.tif", rng.integers(1, 255, (3, 128, 128), dtype=np.uint8), transform, crs=crs)
    write_tif(tmp_path / "g_mask.tif", (rng.random((128, 128)) > 0.5).astype(np.uint8), transform, crs=crs)
    manifest = tile(
        [str(image)],
        tmp_path / "out",
        TileParams(size=64, stride=64, split_block=64, val=0.0, test=0.0),
        progress=False,
    )
    assert abs(manifest["jobs"][0]["gsd_m"] - ground) < 0.003
    assert abs(manifest["gsd_m"] - ground) < 0.003
