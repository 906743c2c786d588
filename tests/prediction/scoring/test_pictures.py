"""Pictures: evaluate-scene's error picture and predict's quicklook, from decimated reads."""

from __future__ import annotations

import json

import cv2
import numpy as np
import rasterio
from affine import Affine

from roofseg.prediction.scoring.pictures import FALSE_ALARM, HIT, MISS, error_picture, preview_picture

from conftest import write_tif

T = Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000)


def square(col: int, row: int, size: int) -> dict:
    x0, y0 = T @ (col, row)
    x1, y1 = T @ (col + size, row + size)
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def scene_with_errors(tmp_path):
    """A 400 px prediction: a hit at (col 200, row 40), a false alarm at (300, 40), a miss at (200, 200)
    (the legend takes the top-left corner)."""
    pred = np.zeros((1, 400, 400), np.uint8)
    pred[0, 40:80, 200:240] = 1
    pred[0, 40:80, 300:340] = 1
    path = write_tif(tmp_path / "pred.tif", pred, T)
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(ROOFSEG_CONTENT="binary")
    labels = tmp_path / "truth.geojson"
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}}
    labels.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": crs,
                "features": [
                    {"type": "Feature", "properties": {}, "geometry": square(200, 40, 40)},
                    {"type": "Feature", "properties": {}, "geometry": square(200, 200, 40)},
                ],
            }
        )
    )
    rgb = np.full((3, 400, 400), 128, np.uint8)
    scene = write_tif(tmp_path / "scene.tif", rgb, T)
    return path, labels, scene


def test_the_error_picture_colours_hits_false_alarms_and_misses(tmp_path):
    pred, labels, scene = scene_with_errors(tmp_path)
    out = error_picture(pred, labels, tmp_path / "errors.png", scene=scene, longest=200)  # decimated by 2
    image = cv2.imread(str(out))
    assert image.shape[1] == 200 and image.shape[0] > 200  # the scene, then its legend below
    image = image[:200]

    def colour_at(col, row):  # the middle of a 40 px square, in the half-size picture
        return image[(row + 20) // 2, (col + 20) // 2].astype(int)

    for (col, row), expected in (((200, 40), HIT), ((300, 40), FALSE_ALARM), ((200, 200), MISS)):
        got = colour_at(col, row)
        blended = 0.55 * np.array(expected) + 0.45 * 128
        assert np.abs(got - blended).max() <= 2, (col, row, got, blended)
    assert np.abs(colour_at(300, 300) - 128).max() <= 1  # nothing there: the scene itself
    edge = image[19:22, 102:118].reshape(-1, 3).astype(int)  # the hit's top side, in the picture
    assert ((edge[:, 0] < 100) & (edge[:, 1] > 180) & (edge[:, 2] > 180)).any()  # outlined in yellow


def test_the_preview_shows_the_probability_over_the_scene(tmp_path):
    _, _, scene = scene_with_errors(tmp_path)
    prob = np.zeros((1, 400, 400), np.uint8)
    prob[0, 200:300, 200:300] = 255
    pred = write_tif(tmp_path / "prob.tif", prob, T)
    with rasterio.open(pred, "r+") as ds:
        ds.update_tags(ROOFSEG_CONTENT="probability", ROOFSEG_PROBABILITY_SCALE="255")
    out = preview_picture(pred, scene, tmp_path / "preview.png", longest=100)
    image = cv2.imread(str(out)).astype(int)
    assert image.shape[1] == 100 and image.shape[0] > 100  # the quicklook, its legend below
    roof, ground = image[62, 62], image[90, 90]
    assert roof[2] > 200 and roof[0] < 80  # red over the roof
    assert np.abs(ground - 128).max() <= 1  # the scene elsewhere


def test_predict_regularize_and_preview_then_evaluate_scene_picture(tmp_path, run_cli):
    """End to end: bright rotated roofs on dark ground, a model that predicts brightness."""
    import fiona
    from rasterio.features import rasterize
    from shapely import affinity
    from shapely.geometry import Polygon, mapping, shape

    from helpers import mean_model

    roofs = [
        affinity.rotate(
            Polygon([(x, 4_999_900), (x + 20, 4_999_900), (x + 20, 4_999_888), (x, 4_999_888)]), a, origin="centroid"
        )
        for x, a in ((500_010, 20), (500_050, -35), (500_090, 60))
    ]
    grid = rasterize(roofs, out_shape=(300, 300), transform=T)
    scene = write_tif(tmp_path / "roofs.tif", np.where(grid, 230, 30).astype(np.uint8)[None].repeat(3, 0), T)
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}}
    (tmp_path / "roofs.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": crs,
                "features": [{"type": "Feature", "properties": {}, "geometry": mapping(r)} for r in roofs],
            }
        )
    )
    model = tmp_path / "mean.keras"
    mean_model().save(model)

    for name, extra in (("plain", []), ("regular", ["--regularize"])):
        result = run_cli(
            "predict",
            model,
            scene,
            tmp_path / f"{name}.tif",
            "--tile",
            128,
            "--overlap",
            32,
            "--vector",
            tmp_path / f"{name}.gpkg",
            "--min-area",
            10,
            "--preview",
            tmp_path / f"{name}.png",
            "--quiet",
            *extra,
        )
        assert result.code == 0, result.err
        height, width, _ = cv2.imread(str(tmp_path / f"{name}.png")).shape
        assert width == 300 and height > 300  # the quicklook, its legend below
    with fiona.open(tmp_path / "plain.gpkg") as plain, fiona.open(tmp_path / "regular.gpkg") as regular:
        plain_polys = [shape(f["geometry"]).geoms[0] for f in plain]  # a GeoPackage holds MultiPolygons
        regular_polys = [shape(f["geometry"]).geoms[0] for f in regular]
    assert len(plain_polys) == len(regular_polys) == 3
    assert all(len(p.exterior.coords) - 1 == 4 for p in regular_polys)
    assert all(len(p.exterior.coords) - 1 > 10 for p in plain_polys)
    for roof in roofs:
        best = max(regular_polys, key=lambda p: p.intersection(roof).area)
        assert best.intersection(roof).area / best.union(roof).area > 0.9

    result = run_cli(
        "evaluate-scene",
        tmp_path / "regular.tif",
        tmp_path / "roofs.geojson",
        "--picture",
        tmp_path / "errors.png",
        "--scene",
        scene,
    )
    assert result.code == 0 and "picture:" in result.out
    assert cv2.imread(str(tmp_path / "errors.png")).shape[1] == 300


def test_legends_sit_on_an_opaque_box_in_colours_told_apart_from_grass(tmp_path):
    from roofseg.prediction.scoring.pictures import LEGEND_BOX, OUTLINE, _legend

    grass = np.full((200, 300, 3), (40, 160, 40), np.uint8)
    image = _legend(
        grass.copy(), [("hit", HIT), ("false alarm", FALSE_ALARM), ("miss", MISS), ("true footprint", OUTLINE)]
    )
    np.testing.assert_array_equal(image[:200], grass)  # nothing of the picture hidden
    strip = image[200:]
    assert len(strip) >= 22 and (strip == LEGEND_BOX).all(axis=-1).mean() > 0.5  # an opaque box behind the words
    for colour in (HIT, FALSE_ALARM, MISS):  # none of them is a green
        b, g, r = colour
        assert not (g > r and g > b), colour
        assert (strip == colour).all(axis=-1).any()


def test_samples_show_tiles_that_hold_roofs(manifest, monkeypatch, tmp_path):
    from roofseg.training import reports, train
    from roofseg.training.model import build_model

    drawn = {}
    monkeypatch.setattr(reports, "plot_samples", lambda images, masks, probs, out: drawn.update(masks=masks))
    model, _ = build_model(None, outputs=2)
    train._write_samples(model, str(manifest), 64, 3, tmp_path / "samples.png", contact=True)
    assert len(drawn["masks"]) == 3 and all(m[..., 0].any() for m in drawn["masks"])
