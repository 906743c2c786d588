"""Scenes and labels read from URLs, window by window with HTTP range requests, never whole."""

from __future__ import annotations

import shutil
import socket

import numpy as np
import rasterio

from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.predict import predict_scene
from roofseg.tiler.tile import TileParams

from conftest import one_error_line
from helpers import tile_dict as tile

OPTS = PredictOptions(tile=128, overlap=32, batch=4)


def red(batch):
    return batch[..., :1]


def test_predict_reads_a_served_scene_in_ranges_and_writes_what_the_file_gives(sample_scene, http_folder, tmp_path):
    folder, server = http_folder
    shutil.copy(sample_scene["image"], folder / "scene.tif")
    size = (folder / "scene.tif").stat().st_size
    predict_scene(red, f"{server.url}/scene.tif", tmp_path / "remote.tif", OPTS, progress=False)
    predict_scene(red, sample_scene["image"], tmp_path / "local.tif", OPTS, progress=False)
    with rasterio.open(tmp_path / "remote.tif") as a, rasterio.open(tmp_path / "local.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.transform == b.transform and a.crs == b.crs
    gets = [r for r in server.requests if r[0] == "GET"]
    assert all(r[1] == "/scene.tif" for r in gets)  # no listing of the folder
    assert len(gets) > 1 and all(r[2] for r in gets)  # every read a range request
    assert max(r[3] for r in gets) < size  # none fetched the scene whole
    assert sum(r[3] for r in gets) < 1.5 * size  # and the ranges were not fetched again and again


def shard_bytes(manifest_dir):
    import json

    manifest = json.loads((manifest_dir / "manifest.json").read_text())
    return {
        name: b"".join((manifest_dir / s["path"]).read_bytes() for s in split["shards"])
        for name, split in manifest["splits"].items()
    }, manifest


def test_tile_reads_scene_and_labels_from_urls_as_from_files(sample_scene, http_folder, tmp_path):
    folder, server = http_folder
    shutil.copy(sample_scene["image"], folder / "sample.tif")
    shutil.copy(sample_scene["labels"], folder / "sample.geojson")
    params = TileParams(size=64, stride=64, split_block=128, val=0.2, test=0.2)
    listing = tmp_path / "remote.txt"
    listing.write_text(f"{server.url}/sample.tif {server.url}/sample.geojson\n")
    tile([str(listing)], tmp_path / "remote", params, progress=False)
    tile(
        [str(folder / "sample.tif")],
        tmp_path / "local",
        params,
        labels=[str(folder / "sample.geojson")],
        progress=False,
    )
    remote, rm = shard_bytes(tmp_path / "remote")
    local, lm = shard_bytes(tmp_path / "local")
    assert remote == local  # the same records, in the same order
    assert {k: v["tiles"] for k, v in rm["splits"].items()} == {k: v["tiles"] for k, v in lm["splits"].items()}
    scene_gets = [r for r in server.requests if r[0] == "GET" and r[1] == "/sample.tif"]
    assert all(r[2] for r in scene_gets) and max(r[3] for r in scene_gets) < (folder / "sample.tif").stat().st_size


def test_missing_and_unreachable_urls_end_in_one_line(sample_scene, http_folder, tmp_path, run_cli):
    folder, server = http_folder
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens there once the socket closes
    for url in (f"{server.url}/nothing.tif", f"http://127.0.0.1:{closed}/scene.tif"):
        result = run_cli("tile", url, "--labels", sample_scene["labels"], "-o", tmp_path / "tiles", "--quiet")
        line = one_error_line(result)
        assert result.code == 1 and url in line and "cannot open" in line
    assert not (tmp_path / "tiles" / "manifest.json").exists()


def test_a_served_cog_with_large_blocks_is_fetched_about_once(tmp_path, http_folder):
    from rasterio.shutil import copy

    from conftest import write_tif

    folder, server = http_folder
    rng = np.random.default_rng(0)
    data = rng.integers(1, 255, (3, 1024, 1024), dtype=np.uint8)  # noise: every block must be fetched
    write_tif(tmp_path / "plain.tif", data)
    copy(str(tmp_path / "plain.tif"), str(folder / "cog.tif"), driver="COG", compress="DEFLATE", blocksize=512)
    mask = np.zeros((1024, 1024), np.uint8)
    mask[100:300, 100:300] = 1
    write_tif(tmp_path / "mask.tif", mask)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{server.url}/cog.tif {tmp_path / 'mask.tif'}\n")
    tile(
        [str(listing)],
        tmp_path / "tiles",
        TileParams(size=128, stride=128, split_block=512, max_nodata=1.0),
        progress=False,
    )
    fetched = sum(r[3] for r in server.requests if r[0] == "GET" and r[1] == "/cog.tif")
    assert fetched <= 1.2 * (folder / "cog.tif").stat().st_size, fetched
