"""The tiler: shards read back equal rasterio windows, labels agree, special inputs work."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from roofseg.contracts.tile import read_records
from roofseg.tiler.tile import TileParams

from conftest import write_tif
from helpers import tile_dict as tile


def records_of(out: Path) -> list[dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    recs = []
    for split, info in manifest["splits"].items():
        for shard in info["shards"]:
            for r in read_records(str(out / shard["path"]), manifest["compression"]):
                r["split"] = split
                recs.append(r)
    return recs


def test_tiles_equal_rasterio_windows_and_carry_their_georeference(sample_scene, tmp_path):
    out = tmp_path / "tiles"
    params = TileParams(size=128, stride=96, max_nodata=1.0, shard_bytes=200_000)
    manifest = tile([str(sample_scene["image"])], out, params, progress=False)
    recs = records_of(out)
    assert manifest["tiles"] == len(recs) > 0
    assert sum(len(s["shards"]) for s in manifest["splits"].values()) > 3  # shards rotate by size
    with rasterio.open(sample_scene["image"]) as img, rasterio.open(sample_scene["mask"]) as msk:
        for r in recs:
            h, w = r["valid_height"], r["valid_width"]
            window = Window(r["col"], r["row"], w, h)
            expected = np.moveaxis(img.read(window=window), 0, -1)
            np.testing.assert_array_equal(r["image"][:h, :w], expected)
            np.testing.assert_array_equal(r["mask"][:h, :w], msk.read(1, window=window))
            assert not r["image"][h:].any() and not r["image"][:, w:].any()  # padding is zero
            assert r["padded"] == int(h < 128 or w < 128)
            # the stored transform puts the tile's pixel (0, 0) on the scene's pixel (row, col)
            t = rasterio.Affine(*r["transform"])
            assert t @ (0, 0) == pytest.approx(img.xy(r["row"], r["col"], offset="ul"), abs=1e-6)
            assert rasterio.crs.CRS.from_wkt(r["crs"]) == img.crs and r["epsg"] == 32633


def test_no_tile_is_in_two_splits_and_blocks_do_not_share_pixels(sample_scene, tmp_path):
    params = TileParams(size=64, stride=48, max_nodata=1.0, split_block=128, val=0.2, test=0.2)
    manifest = tile([str(sample_scene["image"])], tmp_path, params, progress=False)
    assert manifest["split_mode"] == "block"
    owner = np.full((512, 512), "", dtype=object)
    seen = set()
    for r in records_of(tmp_path):
        key = (r["scene_id"], r["row"], r["col"])
        assert key not in seen
        seen.add(key)
        region = owner[r["row"] : r["row"] + 64, r["col"] : r["col"] + 64]
        assert set(region.ravel()) <= {"", r["split"]}  # no pixel reaches two splits
        region[:] = r["split"]
    assert {"train", "val", "test"} <= set(owner.ravel())
    assert manifest["jobs"][0]["skipped"]["split_border"] > 0


def test_vector_labels_burn_the_same_pixels_as_the_mask(sample_scene, tmp_path):
    params = TileParams(size=128, stride=128, max_nodata=1.0)
    tile([str(sample_scene["image"])], tmp_path / "m", params, labels=[str(sample_scene["mask"])], progress=False)
    tile([str(sample_scene["image"])], tmp_path / "v", params, labels=[str(sample_scene["labels"])], progress=False)
    by_mask = {(r["row"], r["col"]): r["mask"] for r in records_of(tmp_path / "m")}
    by_vector = {(r["row"], r["col"]): r["mask"] for r in records_of(tmp_path / "v")}
    assert by_mask.keys() == by_vector.keys()
    assert sum(m.sum() for m in by_mask.values()) > 1000
    for k in by_mask:
        np.testing.assert_array_equal(by_mask[k], by_vector[k])


def test_vectors_in_another_crs_are_reprojected(sample_scene, tmp_path):
    from rasterio.warp import transform_geom

    src = json.loads(Path(sample_scene["labels"]).read_text())
    feats = [
        {**f, "geometry": transform_geom("EPSG:32633", "EPSG:4326", f["geometry"], precision=-1)}
        for f in src["features"]
    ]
    wgs84 = tmp_path / "labels_4326.geojson"
    wgs84.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    params = TileParams(size=256, stride=256, max_nodata=1.0)
    tile([str(sample_scene["image"])], tmp_path / "o", params, labels=[str(wgs84)], progress=False)
    with rasterio.open(sample_scene["mask"]) as msk:
        truth = msk.read(1)
    for r in records_of(tmp_path / "o"):
        got = r["mask"][: r["valid_height"], : r["valid_width"]]
        want = truth[r["row"] : r["row"] + r["valid_height"], r["col"] : r["col"] + r["valid_width"]]
        assert (got != want).mean() < 0.002  # only edge pixels may flip after the round trip


def test_uint16_single_band_is_stretched_and_replicated(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(300, 5000, (200, 300)).astype(np.uint16)
    data[:, :40] = 0  # nodata strip
    scene = write_tif(tmp_path / "pan.tif", data, nodata=0)
    write_tif(tmp_path / "pan_mask.tif", (data > 4000).astype(np.uint8))
    tile([str(scene)], tmp_path / "o", TileParams(size=100, stride=100, max_nodata=1.0), progress=False)
    valid = data[data > 0].astype(float)
    lo, hi = np.percentile(valid, [2, 98])
    for r in records_of(tmp_path / "o"):
        img = r["image"]
        assert img.shape == (100, 100, 3) and img.dtype == np.uint8
        assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
        raw = data[r["row"] : r["row"] + 100, r["col"] : r["col"] + 100]
        want = np.clip(np.rint((raw.astype(np.float32) - lo) * (255 / (hi - lo))), 0, 255)
        want[raw == 0] = 0
        assert np.abs(img[..., 0].astype(int) - want).max() <= 1  # percentiles of a decimated read
        assert not r["mask"][raw == 0].any()


def test_nodata_tiles_beyond_max_nodata_are_skipped(tmp_path):
    data = np.full((3, 256, 256), 120, np.uint8)
    data[:, :, :160] = 0  # columns 0-159 are nodata: tile (0,0) 100 %, tile (0,128) 25 %
    scene = write_tif(tmp_path / "s.tif", data, nodata=0)
    write_tif(tmp_path / "s_mask.tif", np.ones((256, 256), np.uint8))
    manifest = tile([str(scene)], tmp_path / "o", TileParams(size=128, stride=128, max_nodata=0.5), progress=False)
    recs = records_of(tmp_path / "o")
    assert sorted(r["col"] for r in recs) == [128, 128]
    assert manifest["jobs"][0]["skipped"]["nodata"] == 2
    for r in recs:
        assert r["nodata_fraction"] == pytest.approx(0.25)
        assert not r["mask"][:, :32].any() and r["mask"][:, 32:].all()  # labels cleared on nodata


def test_keep_empty_thins_training_tiles_without_roofs(sample_scene, tmp_path):
    kw = dict(size=64, stride=64, max_nodata=1.0, split_block=512, val=0.0, test=0.0)
    all_tiles = tile([str(sample_scene["image"])], tmp_path / "a", TileParams(**kw), progress=False)
    some = tile([str(sample_scene["image"])], tmp_path / "b", TileParams(keep_empty=0.0, **kw), progress=False)
    empty = sum(1 for r in records_of(tmp_path / "a") if not r["mask"].any())
    assert empty > 0
    assert some["splits"]["train"]["tiles"] == all_tiles["splits"]["train"]["tiles"] - empty
    assert all(r["mask"].any() for r in records_of(tmp_path / "b"))


def test_folder_pairs_are_resized_to_one_tile_each(tmp_path):
    root = tmp_path / "kaggle"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(1)
    for i, (h, w) in enumerate([(300, 200), (64, 64), (517, 611), (100, 100)]):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4 : h // 2, w // 4 : w // 2] = 255
        cv2.imwrite(str(root / "images" / f"t{i}.jpg"), img)
        cv2.imwrite(str(root / "masks" / f"t{i}.png"), mask)
    manifest = tile([str(root)], tmp_path / "o", TileParams(size=128, stride=128), progress=False)
    assert manifest["split_mode"] == "image" and manifest["tiles"] == 4
    for r in records_of(tmp_path / "o"):
        assert r["image"].shape == (128, 128, 3)
        assert set(np.unique(r["mask"])) == {0, 1}  # nearest keeps a mask binary
        src = cv2.imread(str(root / "images" / f"{r['scene_id']}.jpg"))
        shrink = 128 < min(src.shape[:2])  # area-averaged when shrinking, bilinear otherwise
        want = cv2.resize(src, (128, 128), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)[..., ::-1]
        np.testing.assert_array_equal(r["image"], want)
        assert r["mask"][32:64, 32:64].all() and not r["mask"][70:].any()


def test_rerun_skips_complete_scenes_and_overwrite_redoes_them(sample_scene, tmp_path):
    params = TileParams(size=128, stride=128)
    tile([str(sample_scene["image"])], tmp_path, params, progress=False)
    shard = next((tmp_path / "train").glob("*.tfrecord"))
    before = shard.stat().st_mtime_ns
    time.sleep(0.01)
    tile([str(sample_scene["image"])], tmp_path, params, progress=False)
    assert shard.stat().st_mtime_ns == before
    tile([str(sample_scene["image"])], tmp_path, params, overwrite=True, progress=False)
    assert shard.stat().st_mtime_ns != before
    manifest = tile([str(sample_scene["image"])], tmp_path, TileParams(size=128, stride=64), progress=False)
    # other parameters: not the same job, redone into shards of another name; the old ones go
    # once the new manifest is written
    assert not shard.exists()
    listed = {s["path"] for split in manifest["splits"].values() for s in split["shards"]}
    assert listed == {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.tfrecord")}


@pytest.mark.slow
def test_resume_after_a_killed_run(tmp_path):
    from roofseg.sample import write_sample

    scenes = []
    for seed in range(3):
        paths = write_sample(tmp_path / f"in{seed}", size=1024, seed=seed, progress=False)
        scenes.append(str(paths["image"]))
        # distinct names so the scenes are distinct jobs
        for p in paths.values():
            p.rename(p.with_name(p.name.replace("sample", f"area{seed}")))
        scenes[-1] = str(paths["image"].with_name(f"area{seed}_image.tif"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "roofseg.cli", "tile", *scenes, "-o", str(out), "--tile-size", "32", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((out / "jobs").glob("*.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p.stem for p in (out / "jobs").glob("*.json")}
    assert 1 <= len(done) < 3, "the kill should land after the first scene and before the last"
    assert not (out / "manifest.json").exists()
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*.tfrecord") if p.name.split("-")[0] in done}
    manifest = tile(scenes, out, TileParams(size=32, stride=32), progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # finished scenes were not redone
    assert not list(out.rglob("*.partial"))
    fresh = tile(scenes, tmp_path / "fresh", TileParams(size=32, stride=32), progress=False)
    assert manifest["splits"] == fresh["splits"]


@pytest.mark.slow
def test_parallel_workers_give_the_same_tiles(sample_scene, tmp_path):
    from roofseg.sample import write_sample

    scenes = []
    for seed in range(3):
        d = write_sample(tmp_path / f"s{seed}", size=256, seed=seed, progress=False)
        scenes.append(str(d["image"]))
    serial = tile(scenes, tmp_path / "a", TileParams(size=64, stride=64), labels=[], progress=False)
    parallel = tile(scenes, tmp_path / "b", TileParams(size=64, stride=64), workers=2, progress=False)
    assert serial["split_mode"] == "scene"
    assert serial["splits"] == parallel["splits"]


def test_a_failed_write_stops_the_reader_before_the_datasets_close(sample_scene, tmp_path, monkeypatch):
    """The read-ahead thread must be joined before tile_scene closes what it reads."""
    import threading

    from roofseg.tiler import tile as tile_module

    calls = {"n": 0}
    original = tile_module._SplitWriters.write

    def failing_write(self, split, record):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return original(self, split, record)

    monkeypatch.setattr(tile_module._SplitWriters, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        tile([str(sample_scene["image"])], tmp_path, TileParams(size=32, stride=32, max_nodata=1.0), progress=False)
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]
    assert not list(tmp_path.rglob("*.tfrecord")) and not list(tmp_path.rglob("*.partial"))


def test_the_percentile_stretch_is_read_once_per_scene(tmp_path, monkeypatch):
    """Planning opens each scene to check it; the decimated read happens once, when tiling."""
    data = np.random.default_rng(0).integers(300, 5000, (200, 300)).astype(np.uint16)
    scene = write_tif(tmp_path / "pan.tif", data, nodata=0)
    write_tif(tmp_path / "pan_mask.tif", (data > 4000).astype(np.uint8))
    decimated = []
    read = rasterio.io.DatasetReader.read

    def counting(self, *args, **kwargs):
        if "out_shape" in kwargs:
            decimated.append(self.name)
        return read(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", counting)
    tile([str(scene)], tmp_path / "o", TileParams(size=100, stride=100), progress=False)
    assert len(decimated) == 1


def test_a_png_without_georeference_is_tiled_at_its_declared_pixel_size_with_white_as_nodata(tmp_path, run_cli):
    import cv2

    image = np.full((128, 128, 3), 90, np.uint8)
    image[:, 64:] = 255  # the right half: no data (pure white)
    image[70:80, 10:20] = (255, 255, 0)  # a bright roof is not white: it stays
    mask = np.zeros((128, 128), np.uint8)
    mask[20:40, 20:40] = 255
    cv2.imwrite(str(tmp_path / "a.png"), image[..., ::-1])
    cv2.imwrite(str(tmp_path / "a_mask.png"), mask)
    (tmp_path / "list.txt").write_text("a.png a_mask.png\n")
    out = tmp_path / "tiles"
    result = run_cli(
        "tile", tmp_path / "list.txt", "-o", out, "--tile-size", 64, "--split-by", "scene", "--val", 0, "--test", 0,
        "--pixel-size", 2, "--nodata", 255, "--max-nodata", 0.5, "--quiet",
    )  # fmt: skip
    assert result.code == 0, result.err
    manifest = json.loads((out / "manifest.json").read_text())
    (job,) = manifest["jobs"]
    assert job["gsd_m"] == pytest.approx(2.0, rel=1e-3)
    assert manifest["splits"]["train"]["tiles"] == 2 and job["skipped"]["nodata"] == 2  # the white half


def test_labels_without_a_building_in_every_scene_are_one_line_and_no_tiles(sample_scene, tmp_path, run_cli):
    from conftest import one_error_line

    empty = tmp_path / "empty.osm"
    empty.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6"><node id="-1" lat="0" lon="0"/></osm>\n'
    )
    out = tmp_path / "t"
    line = one_error_line(run_cli("tile", sample_scene["image"], "--labels", empty, "-o", out, "--tile-size", 64))
    assert "empty.osm" in line and "holds no building" in line
    assert not (out / "manifest.json").exists() and not list(out.rglob("*.tfrecord"))


def _one_building_at(folder: Path, gsd: float) -> tuple[Path, Path]:
    """A 64 m square scene at ``gsd`` m/px with one 20 m square building in its middle."""
    from shapely.geometry import box

    from conftest import write_geojson

    n = round(64 / gsd)
    image = write_tif(
        folder / f"s{n}.tif", np.full((3, n, n), 90, np.uint8), rasterio.Affine(gsd, 0, 500_000, 0, -gsd, 5_000_064)
    )
    labels = write_geojson(folder / f"s{n}.geojson", [box(500_022, 5_000_022, 500_042, 5_000_042)])
    return image, labels


def _border_m2(out: Path) -> float:
    """The ground area (m²) the tiles' border targets cover, each pixel once (tiles do not overlap)."""
    return sum(float(r["contact"].sum()) * abs(r["transform"][0]) ** 2 for r in records_of(out))


def test_a_border_band_in_metres_covers_the_same_ground_at_every_gsd(tmp_path):
    (tmp_path / "scenes").mkdir()
    fine, coarse = _one_building_at(tmp_path / "scenes", 0.25), _one_building_at(tmp_path / "scenes", 0.5)
    area = {}
    for name, (image, labels) in {"fine": fine, "coarse": coarse}.items():
        for band in ("px", "m"):
            width = {"contact_px": 2, "contact_m": None} if band == "px" else {"contact_px": None, "contact_m": 1.0}
            params = TileParams(size=64, stride=64, max_nodata=1.0, val=0, test=0, contact_kind="outline", **width)
            out = tmp_path / f"{name}-{band}"
            manifest = tile([str(image)], out, params, labels=[str(labels)], progress=False)
            area[name, band] = _border_m2(out)
    # 1 m inside a 20 m square's edge: 20² - 18² = 76 m² (the disk's corners take a little)
    assert area["fine", "m"] == pytest.approx(76, rel=0.1) and area["coarse", "m"] == pytest.approx(76, rel=0.1)
    assert area["fine", "px"] == pytest.approx(area["coarse", "px"] / 2, rel=0.1)  # 2 px: half the ground when finer
    assert manifest["contact_m"] == 1.0 and manifest["contact_px"] == 0 and manifest["targets"] == ["roof", "contact"]


def test_a_border_band_in_metres_on_a_scene_without_ground_pixel_size_is_one_line_before_any_tile(
    sample_scene, tmp_path, run_cli
):
    from conftest import one_error_line

    write_tif(tmp_path / "plain.tif", np.full((3, 64, 64), 90, np.uint8), crs=None)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 1
    write_tif(tmp_path / "plain_mask.tif", mask, crs=None)
    out = tmp_path / "t"
    line = one_error_line(
        run_cli("tile", sample_scene["image"], tmp_path / "plain.tif", "-o", out, "--tile-size", 64,
                "--contact-m", 0.9, "--quiet")
    )  # fmt: skip
    assert "plain.tif" in line and "ground pixel size" in line and "--contact-px" in line
    # refused while the scenes are checked: the georeferenced scene before it wrote nothing either
    assert not (out / "manifest.json").exists() and not list(out.rglob("*.tfrecord"))


def test_what_a_scenes_labels_warn_of_is_said_once(sample_scene, tmp_path, run_cli):
    empty = tmp_path / "empty.osm"
    empty.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6"><node id="-1" lat="0" lon="0"/></osm>\n'
    )
    (tmp_path / "list.txt").write_text(
        f"{sample_scene['image']} {sample_scene['labels']}\n{sample_scene['image']} {empty}\n"
    )
    result = run_cli("tile", tmp_path / "list.txt", "-o", tmp_path / "t", "--tile-size", 128, "--quiet")
    assert result.code == 0, result.err
    said = [ln for ln in result.err.splitlines() if "holds no building" in ln]
    assert len(said) == 1 and said[0].startswith("roofseg: warning: "), result.err


def test_a_border_band_in_metres_on_a_folder_without_pixel_size_is_refused(tmp_path):
    from roofseg.errors import RoofsegError

    root = tmp_path / "kaggle"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(2):
        mask = np.zeros((64, 64), np.uint8)
        mask[16:32, 16:32] = 255
        cv2.imwrite(str(root / "images" / f"t{i}.png"), np.full((64, 64, 3), 90, np.uint8))
        cv2.imwrite(str(root / "masks" / f"t{i}.png"), mask)
    params = TileParams(size=64, stride=64, val=0, test=0, contact_px=None, contact_m=0.9)
    with pytest.raises(RoofsegError, match="ground pixel size"):
        tile([str(root)], tmp_path / "o", params, progress=False)
    assert not list((tmp_path / "o").rglob("*.tfrecord"))


def test_graded_borders_are_read_back_as_fractions_and_other_kinds_as_zero_or_one(tmp_path):
    from roofseg.pipeline.dataset import make_dataset

    (tmp_path / "scenes").mkdir()
    image, labels = _one_building_at(tmp_path / "scenes", 0.25)
    read = {}
    for kind in ("outline", "distance", "relative"):
        params = TileParams(size=64, stride=64, max_nodata=1.0, val=0, test=0, contact_kind=kind, contact_m=1.0)
        manifest = tile([str(image)], tmp_path / kind, params, labels=[str(labels)], progress=False)
        assert manifest["contact_kind"] == kind
        _, masks = next(
            iter(make_dataset(tmp_path / kind / "manifest.json", "train", 64, contact=True, training=False))
        )
        read[kind] = masks.numpy()[..., 1]
    outline, distance = read["outline"], read["distance"]
    assert set(np.unique(outline)) == {0.0, 1.0}
    grades = np.unique(distance)
    assert grades.min() == 0 and grades.max() == 1 and len(grades) > 4  # 1 m band at 0.25 m: 8 grades
    assert (distance[outline == 1] >= 0.49).all()  # the outline band lies in the graded band's upper half
    assert len(np.unique(read["relative"])) > 4 and (read["relative"] <= distance + 1 / 255).all()
