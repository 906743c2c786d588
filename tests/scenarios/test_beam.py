"""Apache Beam runs the same tiling and prediction as the local runner: same tiles, same rasters."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from roofseg.contracts.tile import read_records
from roofseg.sample import write_sample
from roofseg.tiler import beam as tiler_beam
from roofseg.tiler.tile import TileParams

from conftest import one_error_line, write_tif
from helpers import tile_dict as tile

requires_beam = pytest.mark.skipif(
    importlib.util.find_spec("apache_beam") is None, reason="apache-beam is not installed"
)

# in one process, threads: the pipeline's structure is the same, and the test needs no worker start-up
THREADS = "--runner=DirectRunner --direct_running_mode=multi_threading --direct_num_workers=2"


@pytest.fixture(scope="module")
def three_scenes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("three")
    for i in range(3):
        paths = write_sample(folder / f"s{i}", size=320, seed=10 + i, progress=False)
        paths["image"].rename(folder / f"scene{i}.tif")
        paths["labels"].rename(folder / f"scene{i}.geojson")
    return folder


def tiles_of(out: Path, manifest: dict) -> dict:
    """split → {(scene, row, col): digest of image, mask and metadata} over every shard."""
    found = {}
    for split, info in manifest["splits"].items():
        tiles = {}
        for shard in info["shards"]:
            for r in read_records(str(out / shard["path"]), manifest["compression"]):
                key = (r["scene_id"], int(r["row"]), int(r["col"]))
                assert key not in tiles
                tiles[key] = hashlib.sha1(
                    r["image"].tobytes() + r["mask"].tobytes() + repr(r["transform"]).encode() + r["crs"].encode()
                ).hexdigest()
        found[split] = tiles
    return found


@requires_beam
@pytest.mark.parametrize("split_by", ["scene", "block"])
def test_beam_and_local_runners_write_the_same_tiles(three_scenes, tmp_path, monkeypatch, split_by):
    monkeypatch.setattr(tiler_beam, "PART_ROWS", 2)  # 5 grid rows a scene: 3 parts each, over the workers
    params = TileParams(size=64, stride=64, split_block=128, shard_bytes=60_000, keep_empty=0.5)
    local = tile([str(three_scenes)], tmp_path / "local", params, split_by=split_by, progress=False)
    beam = tile(
        [str(three_scenes)],
        tmp_path / "beam",
        params,
        split_by=split_by,
        progress=False,
        runner="beam",
        beam_options=THREADS,
    )
    assert tiles_of(tmp_path / "local", local) == tiles_of(tmp_path / "beam", beam)
    for key in ("tiles", "roof_fraction", "split_mode", "params", "tile_size"):
        assert local[key] == beam[key]
    strip = lambda jobs: [{k: v for k, v in j.items()} for j in jobs]  # noqa: E731
    assert strip(local["jobs"]) == strip(beam["jobs"])  # per-scene counts, skips, grids
    for split in local["splits"]:
        assert local["splits"][split]["tiles"] == beam["splits"][split]["tiles"]
        assert sum(s["tiles"] for s in beam["splits"][split]["shards"]) == beam["splits"][split]["tiles"]
    assert not (tmp_path / "beam" / tiler_beam.PARTS_DIR).exists()
    # a rerun finds every job done, as after a local run
    again = tile(
        [str(three_scenes)],
        tmp_path / "beam",
        params,
        split_by=split_by,
        progress=False,
        runner="beam",
        beam_options=THREADS,
    )
    assert again["splits"] == beam["splits"]


@requires_beam
def test_beam_predicts_many_scenes_as_the_local_runner_does(three_scenes, tmp_path, run_cli):
    from roofseg._tf import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    keras.Model(inp, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inp)).save(tmp_path / "m.keras")
    common = ["--tile", 64, "--overlap", 16, "--threshold", 0.5, "--quiet"]
    local = run_cli("predict", tmp_path / "m.keras", three_scenes, tmp_path / "local", *common)
    beam = run_cli(
        "predict",
        tmp_path / "m.keras",
        three_scenes,
        tmp_path / "beam",
        *common,
        "--runner",
        "beam",
        "--beam-options",
        THREADS,
    )
    assert local.code == 0 and beam.code == 0, beam.err
    assert "3 predicted" in beam.out
    for i in range(3):
        for name in (f"scene{i}.tif", f"scene{i}_binary.tif"):
            with rasterio.open(tmp_path / "local" / name) as a, rasterio.open(tmp_path / "beam" / name) as b:
                np.testing.assert_array_equal(a.read(), b.read())
                np.testing.assert_array_equal(a.read_masks(1), b.read_masks(1))
    assert (tmp_path / "beam" / "mosaic.vrt").exists()


@requires_beam
def test_a_failing_part_ends_the_beam_run_in_one_line_with_no_manifest(tmp_path, run_cli):
    rng = np.random.default_rng(0)
    cut = write_tif(
        tmp_path / "cut.tif",
        rng.integers(1, 255, (3, 512, 512), dtype=np.uint8),
        tiled=True,
        blockxsize=128,
        blockysize=128,
    )
    write_tif(tmp_path / "cut_mask.tif", np.zeros((512, 512), np.uint8))
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])  # the header opens; the last blocks are gone
    result = run_cli(
        "tile", cut, "-o", tmp_path / "out", "--tile-size", 64, "--quiet", "--runner", "beam", "--beam-options", THREADS
    )
    line = one_error_line(result)
    assert result.code == 1 and "cut.tif" in line and "read failed" in line
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert not [p for p in (tmp_path / "out").rglob("*.tfrecord*") if not p.name.startswith(".")]


def test_without_beam_the_beam_runner_is_refused_in_one_line(sample_scene, tmp_path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "apache_beam.options.pipeline_options", None)  # as if not installed
    result = run_cli("tile", sample_scene["image"], "-o", tmp_path / "out", "--runner", "beam", "--quiet")
    assert result.code == 1 and "pip install 'roofseg[beam]'" in one_error_line(result)
