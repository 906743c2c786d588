"""Outputs in an object store (S3 here, a moto server on 127.0.0.1): predictions, mosaic and tile
shards appear as whole objects, and a rerun resumes from what is there."""

from __future__ import annotations

import importlib.util
import json

import fsspec
import numpy as np
import pytest
import rasterio

from roofseg.prediction.many import predict_scenes
from roofseg.prediction.options import PredictOptions
from roofseg.tiler.tile import TileParams

from helpers import red, scenes_in
from helpers import tile_dict as tile


def test_predictions_and_their_mosaic_go_to_a_bucket_and_a_rerun_resumes(tmp_path, s3_bucket):
    scenes_in(tmp_path / "in", 2)
    url = f"{s3_bucket}/preds"
    result = predict_scenes(
        red, [str(tmp_path / "in")], url, PredictOptions(tile=64, overlap=16, threshold=0.5), progress=False
    )
    assert result["predicted"] == 2 and result["folder"] == url
    fs = fsspec.filesystem("s3")
    names = sorted(p.rsplit("/", 1)[1] for p in fs.find(url))
    assert names == [
        "mosaic.vrt",
        "mosaic_binary.vrt",
        "predict.json",
        "scene0.qml",
        "scene0.tif",
        "scene0_binary.qml",
        "scene0_binary.tif",
        "scene1.qml",
        "scene1.tif",
        "scene1_binary.qml",
        "scene1_binary.tif",
    ]
    predict_scenes(
        red,
        [str(tmp_path / "in")],
        tmp_path / "local",
        PredictOptions(tile=64, overlap=16, threshold=0.5),
        progress=False,
    )
    with rasterio.open(f"{url}/scene1.tif") as remote, rasterio.open(tmp_path / "local" / "scene1.tif") as local:
        np.testing.assert_array_equal(remote.read(), local.read())
    with rasterio.open(f"{url}/mosaic.vrt") as mosaic:
        assert mosaic.read(1).any()  # the VRT finds its sources beside it in the bucket

    fs.rm_file(f"{url}/scene0_binary.tif")  # as if killed before that object was uploaded
    again = predict_scenes(
        red, [str(tmp_path / "in")], url, PredictOptions(tile=64, overlap=16, threshold=0.5), progress=False
    )
    assert (again["predicted"], again["skipped"]) == (1, 1)
    assert fs.exists(f"{url}/scene0_binary.tif")


def test_a_shapefile_goes_to_a_bucket_with_every_part(tmp_path, s3_bucket):
    from roofseg.prediction.vector.vectorize import VectorOptions

    scenes_in(tmp_path / "in", 1)
    url = f"{s3_bucket}/shp"
    opts = PredictOptions(tile=64, overlap=16, threshold=0.5)
    predict_scenes(red, [str(tmp_path / "in")], url, opts, VectorOptions(".shp", min_area=0), progress=False)
    fs = fsspec.filesystem("s3")
    names = {p.rsplit("/", 1)[1] for p in fs.find(url)}
    assert {"scene0.shp", "scene0.shx", "scene0.dbf", "scene0.prj"} <= names
    fs.rm_file(f"{url}/scene0.dbf")  # a part missing: the scene is not done
    again = predict_scenes(red, [str(tmp_path / "in")], url, opts, VectorOptions(".shp", min_area=0), progress=False)
    assert again["predicted"] == 1 and fs.exists(f"{url}/scene0.dbf")


def test_tiles_go_to_a_bucket_manifest_last(sample_scene, tmp_path, s3_bucket):
    url = f"{s3_bucket}/tiles"
    params = TileParams(size=64, stride=64, split_block=128, val=0.2, test=0.2)
    manifest = tile([str(sample_scene["image"])], url, params, progress=False)
    fs = fsspec.filesystem("s3")
    stored = json.loads(fs.cat_file(f"{url}/manifest.json"))
    assert stored == json.loads(json.dumps(manifest))
    for split in stored["splits"].values():
        for shard in split["shards"]:
            assert fs.size(f"{url}/{shard['path']}") > 0
    local = tile([str(sample_scene["image"])], tmp_path / "local", params, progress=False)
    for split, info in local["splits"].items():
        remote_bytes = b"".join(fs.cat_file(f"{url}/{s['path']}") for s in stored["splits"][split]["shards"])
        local_bytes = b"".join((tmp_path / "local" / s["path"]).read_bytes() for s in info["shards"])
        assert remote_bytes == local_bytes


@pytest.mark.skipif(importlib.util.find_spec("apache_beam") is None, reason="apache-beam is not installed")
def test_beam_workers_upload_their_parts_and_the_driver_the_manifest(sample_scene, tmp_path, s3_bucket, monkeypatch):
    from roofseg.tiler import beam as tiler_beam

    monkeypatch.setattr(tiler_beam, "PART_ROWS", 2)
    url = f"{s3_bucket}/beam-tiles"
    params = TileParams(size=64, stride=64, split_block=128, val=0.2, test=0.2)
    manifest = tile(
        [str(sample_scene["image"])],
        url,
        params,
        progress=False,
        runner="beam",
        beam_options="--runner=DirectRunner --direct_running_mode=multi_threading --direct_num_workers=2",
    )
    fs = fsspec.filesystem("s3")
    names = {p.split("/beam-tiles/", 1)[1] for p in fs.find(url)}
    listed = {s["path"] for split in manifest["splits"].values() for s in split["shards"]}
    assert names == listed | {"manifest.json"}  # every shard listed is there; no part results left behind
    assert len(listed) >= 4  # 8 grid rows in parts of 2: shards from several parts
