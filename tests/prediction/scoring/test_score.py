"""Scores that mean what they say and files that are what they claim: evaluate-scene on predict's
own outputs and on crops, one writer per tile folder, reruns that notice changed inputs, and
prediction rasters that do not grow from rewritten blocks."""

from __future__ import annotations

import time

import numpy as np
import rasterio
from affine import Affine
from rasterio.features import rasterize
from shapely.geometry import box, mapping

from roofseg.contracts.tile import read_records
from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.predict import predict_scene
from roofseg.tiler.tile import TileParams

from conftest import one_error_line, write_geojson, write_tif
from helpers import roofs_scene
from helpers import tile_dict as tile

T = Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000)


def first_channel(batch: np.ndarray) -> np.ndarray:
    """A model that costs nothing: the probability is the first band."""
    return batch[..., :1]


def test_evaluate_scene_scores_predicts_probability_and_binary_rasters_alike(tmp_path, run_cli):
    scene, roofs, mask = roofs_scene(tmp_path)
    write_geojson(tmp_path / "roofs.geojson", roofs)
    predict_scene(
        first_channel, scene, tmp_path / "p.tif", PredictOptions(tile=64, overlap=16, threshold=0.5), progress=False
    )
    for raster in ("p.tif", "p_binary.tif"):
        res = run_cli(
            "evaluate-scene",
            tmp_path / raster,
            tmp_path / "roofs.geojson",
            "--min-area",
            "1",
            "--json",
            tmp_path / f"{raster}.json",
        )
        assert res.code == 0, res.err
        import json

        scores = json.loads((tmp_path / f"{raster}.json").read_text())
        assert scores["pixel"]["iou"] == 1.0, (raster, scores["pixel"])
        assert scores["objects"]["f1"] == 1.0, (raster, scores["objects"])


def test_untagged_rasters_are_read_by_their_values(tmp_path):
    from roofseg.prediction.scoring.score import evaluate_scene

    _, roofs, mask = roofs_scene(tmp_path)
    write_tif(tmp_path / "mask01.tif", mask)  # a 0/1 mask from elsewhere
    write_tif(tmp_path / "prob.tif", (mask * 0.9).astype(np.float32))  # a 0-1 float probability
    write_tif(tmp_path / "truth.tif", mask)
    for name in ("mask01.tif", "prob.tif"):
        assert evaluate_scene(tmp_path / name, tmp_path / "truth.tif")["pixel"]["iou"] == 1.0, name


def test_object_scores_count_only_footprints_on_the_scene_and_off_its_nodata(tmp_path):
    from roofseg.prediction.scoring.score import evaluate_scene

    # footprints of a wide area; the scene is a crop of it, with a nodata strip on its left
    big = Affine(0.5, 0, 499_900, 0, -0.5, 5_000_050)
    roofs = [box(*(big @ (c, r + 12)), *(big @ (c + 20, r))) for r in range(5, 500, 30) for c in range(5, 600, 35)]
    write_geojson(tmp_path / "area.geojson", roofs)
    h, w = 200, 240
    mask = rasterize([(mapping(p), 1) for p in roofs], out_shape=(h, w), transform=T, dtype="uint8")
    valid = np.ones((h, w), bool)
    valid[:, :50] = False
    perfect = np.where(valid, mask, 0).astype(np.uint8)
    write_tif(tmp_path / "pred.tif", perfect, nodata=None)
    with rasterio.open(tmp_path / "pred.tif", "r+") as ds:
        ds.write_mask(valid.astype(np.uint8) * 255)
    scores = evaluate_scene(tmp_path / "pred.tif", tmp_path / "area.geojson", min_area=1.0)
    assert scores["pixel"]["iou"] == 1.0
    ob = scores["objects"]
    assert (ob["precision"], ob["recall"], ob["f1"]) == (1.0, 1.0, 1.0), ob
    assert ob["true"] == ob["predicted"] > 10


def test_evaluate_scene_refuses_a_raster_that_is_not_a_prediction(tmp_path, run_cli):
    scene, roofs, _ = roofs_scene(tmp_path)
    write_geojson(tmp_path / "roofs.geojson", roofs)
    line = one_error_line(run_cli("evaluate-scene", scene, tmp_path / "roofs.geojson"))
    assert "scene.tif" in line and "not a prediction raster" in line and "3 band" in line


def test_a_second_tile_run_on_the_same_folder_is_refused_and_breaks_nothing(sample_scene, tmp_path, run_cli):
    from roofseg.locks import folder_lock

    out = tmp_path / "tiles"
    tile([str(sample_scene["image"])], out, TileParams(size=128, stride=128), progress=False)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    with folder_lock(out):  # another run, alive, writing this folder
        line = one_error_line(run_cli("tile", sample_scene["image"], "-o", out, "--tile-size", "64", "--quiet"))
    assert "another roofseg run" in line and str(out) in line
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before  # nothing touched
    res = run_cli("tile", sample_scene["image"], "-o", out, "--tile-size", "64", "--quiet")  # lock released
    assert res.code == 0, res.err
    assert not (out / ".roofseg.lock").exists()


def test_a_rerun_redoes_a_scene_whose_labels_changed(tmp_path):
    rng = np.random.default_rng(2)
    scene = write_tif(tmp_path / "s.tif", rng.integers(1, 255, (3, 128, 128), dtype=np.uint8))
    labels = tmp_path / "s_mask.tif"
    write_tif(labels, np.zeros((128, 128), np.uint8))
    params = TileParams(size=64, stride=64, split_block=128, val=0, test=0)
    first = tile([str(scene)], tmp_path / "t", params, progress=False)
    assert first["roof_fraction"] == 0.0
    time.sleep(0.01)
    write_tif(labels, np.ones((128, 128), np.uint8))  # the labels were corrected
    second = tile([str(scene)], tmp_path / "t", params, progress=False)
    assert second["roof_fraction"] == 1.0
    recs = [r for s in (tmp_path / "t").rglob("*.tfrecord") for r in read_records(str(s))]
    assert len(recs) == 4 and all(r["mask"].all() for r in recs)


def test_float32_predictions_of_wide_scenes_do_not_grow_from_rewritten_blocks(tmp_path, monkeypatch):
    import roofseg.prediction.rasters.predict

    # A very wide scene, in small: GDAL's cache cannot hold a whole row of output blocks, so
    # blocks left half-written are flushed, and compressed and written again later.
    monkeypatch.setattr(
        roofseg.prediction.rasters.predict, "band_cache", lambda scene, rows: rasterio.Env(GDAL_CACHEMAX=2**20)
    )
    rng = np.random.default_rng(0)
    h, w = 600, 3000
    smooth = np.cumsum(rng.integers(0, 3, (h, w)), axis=1) % 251  # compressible, not constant
    scene = write_tif(tmp_path / "wide.tif", np.stack([smooth] * 3).astype(np.uint8))
    out = tmp_path / "p.tif"
    predict_scene(first_channel, scene, out, PredictOptions(tile=256, overlap=64, dtype="float32"), progress=False)
    with rasterio.open(out) as ds:
        data, profile = ds.read(), ds.profile
    written_whole = tmp_path / "whole.tif"
    with rasterio.open(written_whole, "w", **profile) as ds:
        ds.write(data)
    ratio = out.stat().st_size / written_whole.stat().st_size
    assert ratio < 1.05, ratio
