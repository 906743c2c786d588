"""Many scenes in one call (resumable, with a VRT mosaic), model replicas over several devices,
test-time augmentation in the graph, and windows cut from row strips read once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import rasterio
from affine import Affine

from roofseg.errors import RoofsegError
from roofseg.prediction.many import predict_scenes
from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.predict import _windows, pad_reflect
from roofseg.raster.scene import Scene
from roofseg.raster.windows import grid_rows, stride_for

from conftest import one_error_line, write_tif
from helpers import ROOT, red, scenes_in, tiny_keras

OPTS = PredictOptions(tile=64, overlap=16, batch=4)


def test_windows_cut_from_strips_equal_windows_read_one_by_one(tmp_path):
    data = np.random.default_rng(1).integers(1, 255, (3, 333, 517), dtype=np.uint8)
    data[:, 100:140, 200:260] = 0
    path = write_tif(tmp_path / "s.tif", data, nodata=0)
    opts = PredictOptions(tile=128, overlap=48, batch=3)
    with Scene(path) as scene:
        rows = list(grid_rows(scene.height, scene.width, 128, stride_for(128, 48)))
        got = list(_windows(scene, rows, opts))
        k = 0
        for grid_row in rows:
            for t in grid_row:
                image, valid = scene.read(t.row, t.col, t.height, t.width)
                row, tiles, batch, valids = got[k // 3]
                np.testing.assert_array_equal(batch[k % 3], pad_reflect(image, 128))
                np.testing.assert_array_equal(valids[k % 3], valid)
                assert tiles[k % 3] == t
                k += 1
    assert k == sum(len(b[1]) for b in got)


def test_many_scenes_in_one_call_resume_and_share_a_mosaic(tmp_path):
    a, b = scenes_in(tmp_path / "in", 2)
    c = scenes_in(tmp_path / "more", 3)[2]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{c}\n")
    out = tmp_path / "out"
    result = predict_scenes(red, [str(tmp_path / "in" / "*.tif"), str(listing)], out, OPTS, progress=False)
    assert (result["predicted"], result["skipped"]) == (3, 0)
    for scene in (a, b, c):
        with rasterio.open(scene) as src, rasterio.open(out / scene.name) as pred:
            assert pred.transform == src.transform and pred.shape == src.shape
            np.testing.assert_array_equal(pred.read_masks(1) > 0, src.read_masks(1) > 0)

    # the mosaic shows each scene's own prediction where it is valid, the later scene on top
    with rasterio.open(out / "mosaic.vrt") as mosaic:
        whole, mask = mosaic.read(1), mosaic.read_masks(1)
        assert mosaic.tags()["ROOFSEG_CONTENT"] == "probability"
        for scene in (a, b, c):
            with rasterio.open(out / scene.name) as pred:
                window = (
                    rasterio.windows.from_bounds(*pred.bounds, transform=mosaic.transform)
                    .round_offsets()
                    .round_lengths()
                )
                later_cover = np.zeros(pred.shape, bool)
                for later in (a, b, c)[(a, b, c).index(scene) + 1 :]:
                    with rasterio.open(out / later.name) as lp:
                        lw = (
                            rasterio.windows.from_bounds(*lp.bounds, transform=pred.transform)
                            .round_offsets()
                            .round_lengths()
                        )
                        r0, c0 = max(0, int(lw.row_off)), max(0, int(lw.col_off))
                        later_cover[r0 : r0 + lp.height, c0 : c0 + lp.width] |= True
                own = (pred.read_masks(1) > 0) & ~later_cover
                part = whole[window.toslices()]
                np.testing.assert_array_equal(part[own], pred.read(1)[own])
                assert (mask[window.toslices()][pred.read_masks(1) > 0] == 255).all()

    before = {p.name: p.stat().st_mtime_ns for p in out.glob("scene*.tif")}
    again = predict_scenes(red, [str(tmp_path / "in"), str(listing)], out, OPTS, progress=False)
    assert (again["predicted"], again["skipped"]) == (0, 3)
    assert before == {p.name: p.stat().st_mtime_ns for p in out.glob("scene*.tif")}
    (out / "scene1.tif").unlink()
    assert predict_scenes(red, [str(tmp_path / "in"), str(listing)], out, OPTS, progress=False)["predicted"] == 1


def test_a_rerun_with_other_options_is_refused(tmp_path, run_cli):
    scenes_in(tmp_path / "in", 2)
    out = tmp_path / "out"
    predict_scenes(red, [str(tmp_path / "in")], out, OPTS, progress=False)
    with pytest.raises(RoofsegError, match="another options"):
        predict_scenes(red, [str(tmp_path / "in")], out, PredictOptions(tile=64, overlap=32, batch=4), progress=False)
    assert (
        predict_scenes(
            red, [str(tmp_path / "in")], out, PredictOptions(tile=64, overlap=32), overwrite=True, progress=False
        )["predicted"]
        == 2
    )
    result = run_cli("predict", tmp_path / "in" / "scene0.tif", tmp_path / "in", tmp_path / "o.tif")
    assert result.code == 1 and "a folder" in one_error_line(result)


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from roofseg.prediction.many import predict_scenes
    from roofseg.prediction.options import PredictOptions

    def slow(batch):
        time.sleep(0.15)
        return batch[..., :1]

    predict_scenes(slow, [sys.argv[1]], sys.argv[2], PredictOptions(tile=64, overlap=16, batch=4), progress=False)
""")


def test_a_killed_many_scene_run_resumes_where_it_stopped(tmp_path):
    scenes_in(tmp_path / "in", 4, size=128)
    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "in"), str(out)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not (out / "scene0.tif").exists():
            assert child.poll() is None and time.monotonic() < deadline, "the child ended before its first scene"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    finished = sorted(p.name for p in out.glob("scene*.tif"))
    assert "scene3.tif" not in finished  # killed mid-way
    kept = {name: (out / name).stat().st_ino for name in finished}

    result = predict_scenes(red, [str(tmp_path / "in")], out, OPTS, progress=False)
    assert result["skipped"] == len(finished) and result["predicted"] == 4 - len(finished)
    assert kept == {name: (out / name).stat().st_ino for name in finished}  # finished scenes untouched
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # the killed run's partial is gone
    predict_scenes(red, [str(tmp_path / "in")], tmp_path / "clean", OPTS, progress=False)
    for i in range(4):
        with rasterio.open(out / f"scene{i}.tif") as got, rasterio.open(tmp_path / "clean" / f"scene{i}.tif") as want:
            np.testing.assert_array_equal(got.read(), want.read())


def test_tta_in_the_graph_equals_the_mean_of_four_flipped_predictions():
    from roofseg.prediction.rasters.inference import Inference, flips_average

    model = tiny_keras()
    batch = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    got = Inference(model, tta=True)(batch)
    want = flips_average(lambda x: model(x.astype(np.float32) / 255.0).numpy(), batch)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.allclose(got, Inference(model)(batch), atol=1e-4)  # the flips change something


def test_cli_predicts_a_folder_with_vectors_and_mosaics(tmp_path, run_cli):
    scenes_in(tmp_path / "in", 2)
    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    out = tmp_path / "out"
    result = run_cli(
        "predict",
        model,
        tmp_path / "in",
        out,
        "--tile",
        64,
        "--overlap",
        16,
        "--vector",
        "gpkg",
        "--min-area",
        0,
        "--quiet",
    )
    assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == [  # --vector alone keeps no binary raster; QGIS styles beside
        "mosaic.vrt",
        "predict.json",
        "scene0.gpkg",
        "scene0.qml",
        "scene0.tif",
        "scene1.gpkg",
        "scene1.qml",
        "scene1.tif",
    ]
    assert "2 predicted, 0 already done" in result.out
    assert (
        "0 predicted, 2 already done"
        in run_cli(
            "predict",
            model,
            tmp_path / "in",
            out,
            "--tile",
            64,
            "--overlap",
            16,
            "--vector",
            "gpkg",
            "--min-area",
            0,
            "--quiet",
        ).out
    )


DEVICES = textwrap.dedent("""
    import roofseg._env  # noqa: F401
    import tensorflow as tf
    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                               [tf.config.LogicalDeviceConfiguration()] * 2)
    import sys
    import numpy as np, rasterio
    sys.path.insert(0, "tests")  # helpers
    from helpers import tiny_keras
    from roofseg.devices import visible_devices
    from roofseg.prediction.rasters.inference import Inference
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.rasters.predict import predict_scene

    devices = visible_devices("CPU:0,CPU:1")
    model = tiny_keras()
    split = Inference(model, devices)
    print("replicas", [r.weights[0].device.split("device:")[-1] for r in split.replicas])
    batch = np.random.default_rng(0).integers(0, 255, (5, 64, 64, 3), dtype=np.uint8)
    print("batch diff", float(np.abs(split(batch) - Inference(model)(batch)).max()))
    out = []
    for devs in (None, tuple(devices)):
        path = sys.argv[2] + f"/{len(devs or ())}.tif"
        options = PredictOptions(tile=64, overlap=16, batch=5, dtype="float32", devices=devs)
        predict_scene(model, sys.argv[1], path, options, progress=False)
        with rasterio.open(path) as ds:
            out.append(ds.read(1))
    print("scene diff", float(np.abs(out[0] - out[1]).max()))
""")


def test_batches_are_split_over_two_logical_cpu_devices(tmp_path):
    scene = scenes_in(tmp_path / "in", 1, size=150)[0]
    proc = subprocess.run(
        [sys.executable, "-c", DEVICES, str(scene), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(
        line.split(" ", 1) for line in proc.stdout.splitlines() if line.startswith(("replicas", "batch", "scene"))
    )
    assert lines["replicas"] == "['CPU:0', 'CPU:1']"
    assert float(lines["batch"].split()[-1]) < 1e-5
    assert float(lines["scene"].split()[-1]) < 1e-5


def test_progress_bars_on_a_real_stderr_are_not_taken_for_gdal_errors(tmp_path):
    """GDAL's messages are caught on file descriptor 2 while rasters are written; the progress bars
    (one scene, and one over many) must still reach the terminal, not the catch."""
    scenes_in(tmp_path / "in", 2, size=256)
    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    for args in ([tmp_path / "in" / "scene0.tif", tmp_path / "one.tif"], [tmp_path / "in", tmp_path / "many"]):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "roofseg.cli",
                "predict",
                str(model),
                *map(str, args),
                "--tile",
                "64",
                "--overlap",
                "16",
                "--batch",
                "2",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-1500:]
        assert "predicting" in proc.stderr and "100%" in proc.stderr  # the bar, on the real stderr


class StopsAfter:
    """``red``, then Ctrl-C once ``calls`` batches were predicted: a run killed part way."""

    def __init__(self, calls: int):
        self.left = calls

    def __call__(self, batch):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return red(batch)


def test_a_resumed_overwrite_redoes_the_scenes_of_the_old_run(tmp_path):
    scenes_in(tmp_path / "in", 3)
    out = tmp_path / "out"
    predict_scenes(red, [str(tmp_path / "in")], out, OPTS, progress=False)
    as_float = PredictOptions(tile=64, overlap=16, batch=4, dtype="float32")
    with pytest.raises(KeyboardInterrupt):  # killed after the first scene's 4 windows
        predict_scenes(StopsAfter(1), [str(tmp_path / "in")], out, as_float, overwrite=True, progress=False)
    again = predict_scenes(red, [str(tmp_path / "in")], out, as_float, progress=False)
    assert again["predicted"] == 3  # the old run's scenes are not this run's
    for name in ("scene0", "scene1", "scene2", "mosaic"):
        suffix = ".vrt" if name == "mosaic" else ".tif"
        with rasterio.open(out / f"{name}{suffix}") as ds:
            assert ds.dtypes[0] == "float32", name


def test_a_broken_scene_costs_only_itself(tmp_path, run_cli):
    scenes = scenes_in(tmp_path / "in", 3)
    whole = scenes[1].read_bytes()
    scenes[1].write_bytes(whole[: len(whole) // 3])  # truncated
    out = tmp_path / "out"
    with pytest.raises(RoofsegError) as caught:
        predict_scenes(red, [str(tmp_path / "in")], out, OPTS, progress=False)
    assert caught.value.failures[0].startswith(str(scenes[1]))
    assert (out / "scene0.tif").exists() and (out / "scene2.tif").exists() and not (out / "scene1.tif").exists()
    import json

    assert [f["id"] for f in json.loads((out / "failed.json").read_text())] == ["scene1"]
    with rasterio.open(out / "mosaic.vrt") as mosaic:
        assert mosaic.width > 0

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    result = run_cli("predict", model, tmp_path / "in", tmp_path / "cli", "--tile-size", 64, "--overlap", 16, "--quiet")
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert (
        len(lines) == 2 and lines[0].startswith(f"roofseg: error: {scenes[1]}: ") and "1 of 3 scenes failed" in lines[1]
    )
    assert "Traceback" not in result.err
    scenes[1].write_bytes(whole)  # mended: a rerun retries only it
    rerun = predict_scenes(red, [str(tmp_path / "in")], out, OPTS, progress=False)
    assert (rerun["predicted"], rerun["skipped"]) == (1, 2) and not (out / "failed.json").exists()


def test_a_glob_over_the_output_folder_never_predicts_the_predictions(tmp_path):
    scenes_in(tmp_path / "area" / "a", 2)
    pattern = str(tmp_path / "area" / "**" / "*.tif")
    out = tmp_path / "area" / "preds"
    first = predict_scenes(red, [pattern], out, OPTS, progress=False)
    second = predict_scenes(red, [pattern], out, OPTS, progress=False)
    assert first["scenes"] == second["scenes"] == 2 and second["predicted"] == 0
    import shutil

    shutil.copy(out / "scene0.tif", tmp_path / "area" / "copied_prediction.tif")  # roofseg's own output, elsewhere
    assert predict_scenes(red, [pattern], out, OPTS, progress=False)["scenes"] == 2


def test_scenes_in_one_crs_written_two_ways_share_one_mosaic(tmp_path):
    from roofseg.prediction.rasters.mosaic import write_mosaics

    data = np.full((1, 64, 64), 100, np.uint8)
    ways = ["EPSG:32633", "+proj=utm +zone=33 +ellps=WGS84 +towgs84=0,0,0 +units=m +no_defs", "EPSG:32634"]
    paths = [
        write_tif(tmp_path / f"p{i}.tif", data, Affine(0.5, 0, 500_000 + 20 * i, 0, -0.5, 5_000_000), crs=crs)
        for i, crs in enumerate(ways)
    ]
    written = write_mosaics(paths, tmp_path / "mosaic")
    assert sorted(p.name for p in written) == ["mosaic_epsg32633.vrt", "mosaic_epsg32634.vrt"]
    assert (tmp_path / "mosaic_epsg32633.vrt").read_text().count("p0.tif") == 2  # data and mask
    assert (tmp_path / "mosaic_epsg32633.vrt").read_text().count("p1.tif") == 2


def test_evaluate_scene_reads_a_mosaic_like_a_prediction(sample_scene, tmp_path, run_cli):
    from helpers import RoofAndContact

    out = tmp_path / "out"
    predict_scenes(
        RoofAndContact(), [str(sample_scene["image"])], out, PredictOptions(tile=128, overlap=32), progress=False
    )
    with rasterio.open(out / "mosaic.vrt") as mosaic, rasterio.open(out / "sample.tif") as single:
        assert mosaic.count == single.count == 2 and mosaic.tags()["ROOFSEG_BANDS"] == "roof,contact"
        np.testing.assert_array_equal(mosaic.read(), single.read())
    a = run_cli("evaluate-scene", out / "mosaic.vrt", sample_scene["labels"])
    b = run_cli("evaluate-scene", out / "sample.tif", sample_scene["labels"])
    assert a.code == 0, a.err
    assert a.out == b.out


def test_a_rerun_of_a_glob_over_the_output_folder_is_a_no_op_whatever_the_folders_are_called(tmp_path, run_cli):
    # the scenes' folder sorts after the output folder, so their predictions come first in the glob
    scenes_in(tmp_path / "area" / "scenes", 2)
    pattern = str(tmp_path / "area" / "**" / "*.tif")
    out = tmp_path / "area" / "preds"
    first = predict_scenes(red, [pattern], out, OPTS, progress=False)
    second = predict_scenes(red, [pattern], out, OPTS, progress=False)
    assert first["predicted"] == 2 and second["predicted"] == 0 and second["skipped"] == 2, second
    assert sorted(p.name for p in out.glob("*.tif")) == ["scene0.tif", "scene1.tif"]


def test_a_folder_records_the_gsd_range_and_colour_matching_it_was_predicted_with():
    from roofseg.prediction.many import run_record
    from roofseg.prediction.options import PredictOptions

    plain = run_record(PredictOptions(), None, None).options
    assert "gsd_range" not in plain and "match_colours" not in plain  # earlier folders' records stay valid
    matched = run_record(PredictOptions(gsd_range=(0.1, 0.3), colour_reference=((0.0, 1.0),)), None, None).options
    assert matched["gsd_range"] == [0.1, 0.3] and matched["match_colours"] is True
