"""Faults as they happen in life — a full disk, a file-size limit, a read-only folder, a killed
run, bad labels — end with one line naming the file, exit 1, and nothing wrong under a final name."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import LineString, Point, mapping

from conftest import one_error_line, outputs_of, write_geojson, write_tif
from helpers import roofs_scene


def cli(*args, fsize: int | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``roofseg ARGS`` in a process of its own, with a file-size limit if given (EFBIG, as a full disk)."""

    def limit():
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes then fail with EFBIG instead of killing
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "roofseg.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
    )


def error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("roofseg: error: "), done.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def mean_keras(tmp_path_factory) -> Path:
    from helpers import mean_model

    path = tmp_path_factory.mktemp("model") / "mean.keras"
    mean_model().save(path)
    return path


# -- predict ------------------------------------------------------------------------------------


def test_predict_onto_a_file_size_limit_fails_and_leaves_nothing(tmp_path, mean_keras):
    scene, _, _ = roofs_scene(tmp_path, h=1024, w=1024)
    out = tmp_path / "out"
    out.mkdir()
    done = cli(
        "predict", mean_keras, scene, out / "p.tif", "--dtype", "float32", "--tile", "128", "--quiet", fsize=60_000
    )
    line = error_line(done)
    assert "p.tif" in line
    assert os.listdir(out) == []


def test_predict_onto_a_full_file_system_fails_and_leaves_nothing(small_fs, tmp_path):
    from roofseg.errors import RoofsegError
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.rasters.predict import predict_scene

    scene, _, _ = roofs_scene(tmp_path, h=1024, w=1024)
    with pytest.raises(RoofsegError) as err:  # the second band is noise: 4 MB of float32 that does not compress
        predict_scene(
            lambda b: b[..., 1:2], scene, small_fs / "p.tif", PredictOptions(tile=128, dtype="float32"), progress=False
        )
    assert "p.tif" in str(err.value)
    assert os.listdir(small_fs) == []


def test_predict_refuses_to_write_over_its_input(tmp_path, run_cli, mean_keras):
    scene, _, _ = roofs_scene(tmp_path)
    before = scene.read_bytes()
    link = tmp_path / "link.tif"
    link.symlink_to(scene)
    for target in (scene, link):
        line = one_error_line(run_cli("predict", mean_keras, scene, target, "--overwrite", "--quiet"))
        assert "is an input" in line
    assert scene.read_bytes() == before


def test_a_mistyped_scene_is_said_to_be_missing(tmp_path, run_cli, mean_keras):
    line = one_error_line(run_cli("predict", mean_keras, tmp_path / "scene.tiff", tmp_path / "p.tif", "--quiet"))
    assert line.endswith("scene.tiff: no such file or folder")
    assert not (tmp_path / "p.tif").exists()


def test_predict_into_a_read_only_folder(readonly_dir, tmp_path, run_cli, mean_keras):
    scene, _, _ = roofs_scene(tmp_path)
    line = one_error_line(run_cli("predict", mean_keras, scene, readonly_dir / "p.tif", "--quiet"))
    assert str(readonly_dir) in line and "not writable" in line and "Read-only file system" in line


def test_a_rerun_of_a_killed_predict_removes_its_stale_temporaries_only(tmp_path, mean_keras):
    from roofseg.sample import write_sample

    paths = write_sample(tmp_path / "s", size=1536, seed=2, progress=False)
    out = tmp_path / "out"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        live = out / f".p.tif.{sleeper.pid}.partial"  # another run, still alive, writing the same name
        live.write_bytes(b"live")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "roofseg.cli",
                "predict",
                str(mean_keras),
                str(paths["image"]),
                str(out / "p.tif"),
                "--tile",
                "64",
                "--overlap",
                "0",
                "--batch",
                "1",
                "--threshold",
                "0.5",
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        # until both of the run's outputs are being written (not counting a write probe of the moment)
        while (
            len([p for p in out.glob(".*.partial") if p != live and not p.name.startswith(".write-probe.")]) < 2
            and proc.poll() is None
            and time.time() < deadline
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stale = [p for p in out.glob(".*.partial") if p != live]
        assert len(stale) == 2, os.listdir(out)  # the killed run's probability and binary temporaries
        done = cli("predict", mean_keras, paths["image"], out / "p.tif", "--tile", "256", "--quiet")
        assert done.returncode == 0, done.stderr[-2000:]
        assert sorted(os.listdir(out)) == sorted(["p.tif", "p.qml", live.name])  # stale ones gone, the live one kept
    finally:
        sleeper.kill()
        sleeper.wait()


# -- tile ---------------------------------------------------------------------------------------


def test_tile_onto_a_full_disk_fails_with_one_line_and_no_shard(sample_scene, small_fs):
    done = cli("tile", sample_scene["image"], "-o", small_fs / "tiles", "--tile-size", "64", "--quiet")
    line = error_line(done)
    assert ".tfrecord" in line and ("No space left" in line or "writing" in line)
    leftovers = [f for f in outputs_of(small_fs / "tiles") if not f.startswith("jobs/")]
    assert leftovers == []


def test_tile_onto_a_file_size_limit_fails_with_one_line_and_no_shard(sample_scene, tmp_path):
    done = cli("tile", sample_scene["image"], "-o", tmp_path / "tiles", "--tile-size", "64", "--quiet", fsize=100_000)
    line = error_line(done)
    assert ".tfrecord" in line
    assert [f for f in outputs_of(tmp_path / "tiles") if not f.startswith("jobs/")] == []


def test_a_failing_rerun_leaves_the_complete_folder_as_it_was(sample_scene, tmp_path, run_cli):
    out = tmp_path / "tiles"
    res = run_cli("tile", sample_scene["image"], "-o", out, "--tile-size", "128", "--quiet")
    assert res.code == 0, res.err
    manifest = (out / "manifest.json").read_text()
    shards = {p: p.read_bytes() for p in out.rglob("*.tfrecord")}
    # a rerun whose every tile is skipped: 1024 px tiles on a 512 px scene are mostly padding
    line = one_error_line(
        run_cli("tile", sample_scene["image"], "-o", out, "--tile-size", "1024", "--max-nodata", "0.1", "--quiet")
    )
    assert "0 tiles produced" in line
    assert (out / "manifest.json").read_text() == manifest
    assert {p: p.read_bytes() for p in out.rglob("*.tfrecord")} == shards


def test_labels_of_lines_and_points_only_are_refused_unless_asked(tmp_path, run_cli):
    rng = np.random.default_rng(0)
    scene = write_tif(tmp_path / "s.tif", rng.integers(1, 255, (3, 128, 128), dtype=np.uint8))
    x, y = 500_010, 4_999_990
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "EPSG:32633"}},
        "features": [
            {"type": "Feature", "properties": {}, "geometry": mapping(g)}
            for g in (LineString([(x, y), (x + 5, y - 5)]), Point(x, y), Point(x + 1, y))
        ],
    }
    (tmp_path / "s.geojson").write_text(json.dumps(doc))
    out = tmp_path / "tiles"
    line = one_error_line(run_cli("tile", scene, "-o", out, "--tile-size", "64", "--quiet"))
    assert "s.geojson" in line and "no polygon" in line and "2 Point" in line and "1 LineString" in line
    assert not (out / "manifest.json").exists()
    # taken as an area without buildings: alone, that is no training set
    line = one_error_line(run_cli("tile", scene, "-o", out, "--tile-size", "64", "--ignore-non-polygons", "--quiet"))
    assert "s.geojson" in line and "holds no building" in line


def test_projected_geojson_without_crs_gets_one_line_and_labels_crs_fixes_it(tmp_path, run_cli):
    scene, roofs, _ = roofs_scene(tmp_path)
    write_geojson(tmp_path / "scene.geojson", roofs, crs=None)  # UTM metres, but no crs member
    out = tmp_path / "tiles"
    line = one_error_line(run_cli("tile", scene, "-o", out, "--tile-size", "64", "--quiet"))
    assert "scene.geojson" in line and "not degrees" in line and "--labels-crs" in line
    res = run_cli("tile", scene, "-o", out, "--tile-size", "64", "--labels-crs", "EPSG:32633", "--quiet")
    assert res.code == 0, res.err
    write_tif(tmp_path / "pred.tif", np.zeros((200, 240), np.uint8))
    line = one_error_line(run_cli("evaluate-scene", tmp_path / "pred.tif", tmp_path / "scene.geojson"))
    assert "not degrees" in line
    res = run_cli("evaluate-scene", tmp_path / "pred.tif", tmp_path / "scene.geojson", "--labels-crs", "EPSG:32633")
    assert res.code == 0, res.err


# -- usage --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, names",
    [
        (("evaluate", "model.keras", "missing.json"), ["missing.json"]),
        (("tile", "x.tif", "-o", "{file}"), ["is a file"]),
        (("predict", "m.keras", "s.tif", "o.tif", "--vector", "roofs.txt"), ["--vector"]),
        (("train",), ["MANIFEST"]),
    ],
)
def test_usage_errors_are_one_line_and_exit_1(tmp_path, run_cli, args, names):
    (tmp_path / "file").write_text("")
    args = [a.replace("{file}", str(tmp_path / "file")) for a in args]
    line = one_error_line(run_cli(*args))
    for name in names:
        assert name in line
