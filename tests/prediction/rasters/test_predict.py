"""Whole-scene prediction: seamless, on the scene's grid, streamed, and strict about bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from affine import Affine

from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.predict import predict_scene
from roofseg.prediction.rasters.stitch import BandAccumulator, taper

from conftest import outputs_of, write_tif
from helpers import mean_model, tiny_keras


@pytest.fixture(scope="module")
def model():
    return mean_model()


def scene_of(tmp_path, h: int, w: int, nodata_cols: int = 0, seed: int = 0, **kw):
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 255, (3, h, w), dtype=np.uint8)
    data[:, :, :nodata_cols] = 0
    return write_tif(tmp_path / f"scene_{h}x{w}.tif", data, nodata=0, **kw), data


@pytest.mark.parametrize(
    "h,w,tile,overlap",
    [
        (256, 256, 128, 0),
        (300, 517, 128, 32),
        (200, 333, 64, 16),
        (40, 50, 64, 16),
        (512, 384, 96, 0),
    ],
)
def test_stitched_output_is_the_function_of_the_whole_scene(model, tmp_path, h, w, tile, overlap):
    path, data = scene_of(tmp_path, h, w)
    out = tmp_path / "pred.tif"
    predict_scene(
        model, path, out, PredictOptions(tile=tile, overlap=overlap, batch=3, dtype="float32"), progress=False
    )
    with rasterio.open(out) as pred, rasterio.open(path) as src:
        got = pred.read(1)
        assert (pred.width, pred.height) == (src.width, src.height)
        assert pred.crs == src.crs and pred.transform == src.transform
        assert pred.block_shapes[0] == (256, 256) and pred.compression.name == "deflate"
    np.testing.assert_allclose(got, data.astype(np.float32).mean(axis=0) / 255, atol=2e-6)


def test_blending_weights_sum_to_one_where_windows_overlap():
    t = taper(64, 16)
    assert t.min() > 0 and t.max() == 1
    np.testing.assert_allclose(t[-16:] + t[:16], 1.0, atol=1e-6)  # sin² + cos² across an overlap
    acc = BandAccumulator(40, 100, 64, 16, channels=2)
    ones = np.ones((64, 64, 2), np.float32)
    for col in (0, 48):
        acc.add(0, col, ones * [col + 1, 2 * (col + 1)], np.ones((40, min(64, 100 - col)), bool))
    ((_, band, valid),) = acc.advance(40)
    assert valid.all() and band.shape == (40, 100, 2)
    assert band[0, 0, 0] == 1 and band[0, 99, 0] == 49 and 1 < band[0, 56, 0] < 49  # a smooth hand-over
    np.testing.assert_allclose(band[..., 1], 2 * band[..., 0], rtol=1e-6)  # every channel blended alike


def test_uint8_output_nodata_mask_and_binary(model, tmp_path):
    path, data = scene_of(tmp_path, 200, 300, nodata_cols=70)
    out = tmp_path / "p.tif"
    predict_scene(model, path, out, PredictOptions(tile=64, overlap=16, threshold=0.5), progress=False)
    want = data.astype(np.float32).mean(axis=0) / 255
    with rasterio.open(out) as pred, rasterio.open(tmp_path / "p_binary.tif") as binary:
        assert pred.dtypes[0] == "uint8"
        valid = pred.read_masks(1) > 0
        np.testing.assert_array_equal(valid, (data != 0).any(axis=0))
        got = pred.read(1)
        assert np.abs(got[valid].astype(int) - np.rint(want[valid] * 255)).max() <= 1
        assert binary.transform == pred.transform
        np.testing.assert_array_equal(binary.read(1)[valid], (want[valid] >= 0.5).astype(np.uint8))
        assert (binary.read_masks(1) > 0).sum() == valid.sum()


def test_tta_of_a_pointwise_model_changes_nothing(model, tmp_path):
    path, _ = scene_of(tmp_path, 100, 130)
    opts = dict(tile=64, overlap=16, dtype="float32")
    predict_scene(model, path, tmp_path / "a.tif", PredictOptions(**opts), progress=False)
    predict_scene(model, path, tmp_path / "b.tif", PredictOptions(tta=True, **opts), progress=False)
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        np.testing.assert_allclose(a.read(1), b.read(1), atol=1e-6)


def test_cog_output_is_valid(model, tmp_path):
    from rio_cogeo.cogeo import cog_validate

    path, _ = scene_of(tmp_path, 600, 700)
    out = tmp_path / "cog.tif"
    predict_scene(model, path, out, PredictOptions(tile=128, overlap=32, cog=True, threshold=0.5), progress=False)
    for p in (out, tmp_path / "cog_binary.tif"):
        valid, errors, _ = cog_validate(str(p))
        assert valid, errors
        with rasterio.open(p) as ds:
            assert ds.overviews(1)


def test_vector_polygons_land_on_the_right_map_coordinates(tmp_path, run_cli):
    import fiona
    import pyproj
    import shapely
    import shapely.ops
    from shapely.geometry import box, shape

    data = np.full((3, 128, 160), 20, np.uint8)
    data[:, 32:64, 48:96] = 240  # one bright 48 x 32 px "roof" at rows 32-63, cols 48-95
    transform = Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000)
    scene = write_tif(tmp_path / "roof.tif", data, transform=transform)
    mean_model().save(tmp_path / "mean.keras")
    left, top = transform @ (48, 32)
    right, bottom = transform @ (96, 64)
    roof = box(left, bottom, right, top)
    for i, (name, epsg) in enumerate((("roofs.gpkg", 32633), ("roofs.geojson", 4326))):
        vec = tmp_path / name
        res = run_cli(
            "predict",
            tmp_path / "mean.keras",
            scene,
            tmp_path / f"p{i}.tif",
            "--tile",
            "64",
            "--overlap",
            "16",
            "--vector",
            vec,
            "--min-area",
            "1",
            "--quiet",
        )
        assert res.code == 0, res.err
        with fiona.open(vec) as src:
            assert src.crs.to_epsg() == epsg  # GeoPackage keeps the scene's CRS; GeoJSON is RFC 7946 lon/lat
            assert src.name == "roofs" and src.schema["geometry"] in ("MultiPolygon", "Polygon", "Unknown")
            feats = list(src)
        assert len(feats) == 1
        poly = shape(feats[0]["geometry"])
        if epsg == 4326:
            doc = json.loads(vec.read_text())
            assert "crs" not in doc and doc["name"] == "roofs"
            ring = doc["features"][0]["geometry"]["coordinates"][0]
            assert shapely.LinearRing(ring).is_ccw  # right-hand rule: exteriors counter-clockwise
            to_utm = pyproj.Transformer.from_crs(4326, 32633, always_xy=True)
            poly = shapely.ops.transform(to_utm.transform, poly)
        assert poly.symmetric_difference(roof).area < 0.002 * roof.area
        # ground area: 24 x 16 m in UTM units, / 0.9996² (UTM's scale on its central meridian)
        assert feats[0]["properties"]["area_m2"] == pytest.approx(24 * 16 / 0.9996**2, rel=1e-4)


def test_evaluate_scene_scores_a_perfect_and_a_shifted_prediction(sample_scene, tmp_path, run_cli):
    with rasterio.open(sample_scene["mask"]) as m:
        truth, profile = m.read(1), m.profile
    perfect = tmp_path / "perfect.tif"
    with rasterio.open(perfect, "w", **{**profile, "dtype": "uint8"}) as dst:
        dst.write(truth * 255, 1)
    res = run_cli("evaluate-scene", perfect, sample_scene["labels"], "--min-area", "0", "--json", tmp_path / "s.json")
    assert res.code == 0, res.err
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["pixel"]["iou"] == 1.0 and scores["objects"]["f1"] == 1.0
    assert scores["objects"]["matched"] == scores["objects"]["true"] > 10
    shifted = tmp_path / "shifted.tif"
    with rasterio.open(shifted, "w", **{**profile, "dtype": "uint8"}) as dst:
        dst.write(np.roll(truth, 12, axis=1) * 255, 1)
    res = run_cli("evaluate-scene", shifted, sample_scene["labels"], "--json", tmp_path / "t.json")
    scores = json.loads((tmp_path / "t.json").read_text())
    assert 0.2 < scores["pixel"]["iou"] < 0.9 and scores["objects"]["f1"] < 1.0


def test_peak_memory_does_not_grow_with_the_scene(tmp_path):
    """Python allocations of predicting a 4x larger scene (tracemalloc) stay about the same."""
    code = f"""
import sys, tracemalloc, numpy as np
sys.path.insert(0, {str(tmp_path.parent)!r})
from roofseg.sample import write_sample
from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.predict import predict_scene
from roofseg._tf import keras
inp = keras.Input((None, None, 3)); model = keras.Model(inp, keras.layers.Conv2D(1, 1)(inp))
peaks = []
for size in (512, 2048):
    paths = write_sample({str(tmp_path)!r} + f"/s{{size}}", size=size, progress=False)
    tracemalloc.start()
    options = PredictOptions(tile=128, overlap=32)
    predict_scene(model, paths["image"], {str(tmp_path)!r} + f"/p{{size}}.tif", options, progress=False)
    peaks.append(tracemalloc.get_traced_memory()[1]); tracemalloc.stop()
print(peaks[0], peaks[1])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    small, big = map(int, out.stdout.split()[-2:])
    # 16x the pixels; memory follows the width (4x), not the area: a band of 128 rows is ~2 MB
    assert big < small * 4.5 and big < 16 * 2**20, (small, big)


def test_bad_inputs(model, tmp_path, run_cli):
    mean_model().save(tmp_path / "m.keras")
    path, _ = scene_of(tmp_path, 64, 64)
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    two = write_tif(tmp_path / "two.tif", np.ones((2, 64, 64), np.uint8))
    (tmp_path / "exists.tif").write_bytes(b"keep me")
    cases = [
        (("predict", tmp_path / "m.keras", broken, tmp_path / "o1.tif"), "broken.tif"),
        (("predict", tmp_path / "m.keras", two, tmp_path / "o2.tif"), "2 bands"),
        (("predict", tmp_path / "m.keras", path, tmp_path / "exists.tif"), "--overwrite"),
        (("predict", tmp_path / "missing.keras", path, tmp_path / "o3.tif"), "missing.keras"),
        (("predict", tmp_path / "m.keras", path, tmp_path / "o4.tif", "--tile", "100"), "multiple of 32"),
    ]
    for args, needle in cases:
        res = run_cli(*args, "--quiet")
        assert res.code != 0, args
        lines = res.err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, res.err)
    assert (tmp_path / "exists.tif").read_bytes() == b"keep me"
    assert not [f for f in outputs_of(tmp_path) if f.startswith(("o1", "o2", "o3", "o4", ".o"))]


def test_scene_without_georeference_is_predicted_with_a_warning(model, tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (3, 70, 90), dtype=np.uint8)
    path = write_tif(tmp_path / "plain.tif", data, transform=Affine.identity(), crs=None)
    with pytest.warns(UserWarning, match="no georeference"):
        predict_scene(model, path, tmp_path / "p.tif", PredictOptions(tile=64, overlap=0), progress=False)
    with rasterio.open(tmp_path / "p.tif") as p:
        assert p.crs is None and p.shape == (70, 90)


def test_ctrl_c_while_writing_vectors_leaves_no_output_and_a_rerun_completes(
    sample_scene, tmp_path, run_cli, monkeypatch
):
    import roofseg.prediction.vector.vectorize as vectorize

    from helpers import tiny_keras

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    out = tmp_path / "out.tif"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vectorize, "write_buildings", interrupted)
    args = (
        "predict",
        model,
        sample_scene["image"],
        out,
        "--tile",
        128,
        "--overlap",
        32,
        "--vector",
        tmp_path / "out.gpkg",
        "--quiet",
    )
    assert run_cli(*args).code == 130
    names = sorted(
        p.name for p in tmp_path.iterdir() if p.name != ".roofseg-cache"
    )  # the engine's ONNX export may be kept
    assert names == ["m.keras"]  # nothing under a final name, no temporaries
    monkeypatch.undo()
    done = run_cli(*args)
    assert done.code == 0, done.err
    assert {p.name for p in tmp_path.iterdir()} - {".roofseg-cache"} == {"m.keras", "out.tif", "out.qml", "out.gpkg"}


def test_binary_rasters_only_when_asked_with_their_threshold_and_qgis_styles_beside(sample_scene, tmp_path, run_cli):
    import xml.etree.ElementTree as ET

    from helpers import tiny_keras

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    common = ("--tile-size", 128, "--overlap", 32, "--quiet")
    assert (
        run_cli(
            "predict", model, sample_scene["image"], tmp_path / "a.tif", "--vector", tmp_path / "a.gpkg", *common
        ).code
        == 0
    )
    assert not (tmp_path / "a_binary.tif").exists()  # --vector alone: polygons, no binary raster
    assert run_cli("predict", model, sample_scene["image"], tmp_path / "b.tif", "--threshold", 0.3, *common).code == 0
    with rasterio.open(tmp_path / "b_binary.tif") as ds:
        assert float(ds.tags()["ROOFSEG_THRESHOLD"]) == 0.3
    style = ET.parse(tmp_path / "b.qml").getroot()
    renderer = style.find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor" and renderer.get("band") == "1"  # roof only, contact off
    shader = renderer.find("rastershader/colorrampshader")
    assert shader.get("clip") == "1" and float(shader.get("minimumValue")) == pytest.approx(
        0.3 * 255
    )  # transparent below
    binary = ET.parse(tmp_path / "b_binary.qml").getroot().find("pipe/rasterrenderer")
    entries = {e.get("value"): e.get("alpha") for e in binary.iter("paletteEntry")}
    assert entries == {"0": "0", "1": "255"}


def test_every_building_carries_the_mean_probability_of_its_pixels(tmp_path):
    import fiona
    from rasterio.features import rasterize
    from shapely.geometry import shape

    from roofseg.prediction.vector.vectorize import ProbabilityBand, write_polygons

    transform = Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000)
    probs = np.zeros((64, 64), np.uint8)
    rng = np.random.default_rng(0)
    probs[5:20, 5:25] = rng.integers(150, 250, (15, 20))  # a confident building
    probs[30:50, 30:45] = rng.integers(128, 160, (20, 15))  # a doubtful one
    write_tif(tmp_path / "p.tif", probs, transform=transform)
    write_tif(tmp_path / "b.tif", (probs >= 128).astype(np.uint8), transform=transform)
    band = ProbabilityBand(str(tmp_path / "p.tif"), 1, 255.0)
    assert write_polygons(tmp_path / "b.tif", tmp_path / "all.gpkg", probability=band) == 2
    with fiona.open(tmp_path / "all.gpkg") as src:
        for f in src:
            inside = rasterize([shape(f["geometry"])], out_shape=probs.shape, transform=transform) > 0
            assert f["properties"]["confidence"] == pytest.approx(probs[inside].mean() / 255, abs=1e-4)
    assert write_polygons(tmp_path / "b.tif", tmp_path / "sure.gpkg", probability=band, min_confidence=0.7) == 1


def test_average_precision_ranks_buildings_by_confidence():
    from shapely.geometry import box

    from roofseg.prediction.scoring.score import average_precision, precision_recall

    truth = [box(0, 0, 10, 10), box(20, 0, 30, 10)]
    predicted = [box(0, 0, 10, 10), box(50, 50, 60, 60), box(20, 0, 30, 9)]
    confidence, precision, recall = precision_recall(predicted, [0.9, 0.8, 0.7], truth)
    np.testing.assert_allclose(precision, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(recall, [0.5, 0.5, 1])
    assert average_precision(precision, recall) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    _, p, r = precision_recall(predicted, [0.7, 0.9, 0.8], truth)  # the false alarm ranked first costs
    assert average_precision(p, r) < 0.8


def test_a_long_output_name_with_dots_is_written_when_the_scene_is_read_at_another_gsd(tmp_path, run_cli):
    """Read at the model's GSD, predict writes a temporary on the model's grid; its name once
    repeated every dotted part of the output's, past 255 bytes ("File name too long")."""
    from roofseg.contracts.card import ModelCard, write_card

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    write_card(model, ModelCard(gsd_m=0.25, gsd_range_m=(0.25, 0.25), tile_size=64))
    scene = write_tif(tmp_path / "s.tif", np.full((3, 96, 96), 120, np.uint8))  # 0.5 m: read at 0.25 m
    out = tmp_path / ("run-gsd0.148-contact-px6-" + "x" * 150 + "_lr0.0003_block1.tif")
    result = run_cli("predict", model, scene, out, "--quiet")
    assert result.code == 0, result.err
    with rasterio.open(out) as ds:
        assert ds.shape == (96, 96)
