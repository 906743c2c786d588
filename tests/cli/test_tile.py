"""Bad input to `roofseg tile`: one line naming the file, non-zero exit, nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import fiona
import numpy as np
import pytest

from conftest import one_error_line, outputs_of, write_tif


def assert_refused(result, out: Path, *names: str) -> None:
    assert result.code != 0
    lines = [ln for ln in result.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("roofseg: error:")
    for name in names:
        assert name in lines[0], lines[0]
    leftovers = [f for f in outputs_of(out) if not f.startswith("jobs/")] if out.exists() else []
    assert leftovers == [], leftovers  # no shard, temporary or manifest


@pytest.fixture
def scene(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    path = write_tif(tmp_path / "s.tif", rng.integers(1, 255, (3, 300, 300), dtype=np.uint8), nodata=0)
    write_tif(tmp_path / "s_mask.tif", (rng.random((300, 300)) > 0.7).astype(np.uint8))
    return path


def test_corrupt_scene(tmp_path, run_cli):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00 this is not really a tiff")
    write_tif(tmp_path / "broken_mask.tif", np.zeros((10, 10), np.uint8))
    out = tmp_path / "out"
    assert_refused(run_cli("tile", bad, "-o", out, "--quiet"), out, "broken.tif", "cannot open")


def test_scene_truncated_midway_leaves_no_partial_shard(tmp_path, run_cli):
    rng = np.random.default_rng(0)
    good = write_tif(
        tmp_path / "cut.tif",
        rng.integers(1, 255, (3, 1024, 1024), dtype=np.uint8),
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )
    write_tif(tmp_path / "cut_mask.tif", np.zeros((1024, 1024), np.uint8))
    data = good.read_bytes()
    good.write_bytes(data[: len(data) * 2 // 3])  # header intact, last blocks gone
    out = tmp_path / "out"
    assert_refused(run_cli("tile", good, "-o", out, "--tile-size", "128", "--quiet"), out, "cut.tif", "read failed")


def test_mask_of_another_size(scene, tmp_path, run_cli):
    write_tif(tmp_path / "small_mask.tif", np.zeros((299, 300), np.uint8))
    out = tmp_path / "out"
    res = run_cli("tile", scene, "--labels", tmp_path / "small_mask.tif", "-o", out, "--quiet")
    assert_refused(res, out, "small_mask.tif", "300x299")


def test_mask_on_another_grid(scene, tmp_path, run_cli):
    from affine import Affine

    write_tif(
        tmp_path / "shifted_mask.tif",
        np.zeros((300, 300), np.uint8),
        transform=Affine(0.5, 0, 500_010, 0, -0.5, 5_000_000),
    )
    out = tmp_path / "out"
    assert_refused(
        run_cli("tile", scene, "--labels", tmp_path / "shifted_mask.tif", "-o", out), out, "shifted_mask.tif", "grid"
    )


def _square(x, y, d=5.0):
    return {"type": "Polygon", "coordinates": [[(x, y), (x + d, y), (x + d, y + d), (x, y + d), (x, y)]]}


def test_footprints_without_crs(scene, tmp_path, run_cli):
    shp = tmp_path / "nocrs.shp"
    schema = {"geometry": "Polygon", "properties": {"id": "int"}}
    with fiona.open(shp, "w", driver="ESRI Shapefile", schema=schema) as dst:
        dst.write({"geometry": _square(500_010, 4_999_900), "properties": {"id": 1}})
    out = tmp_path / "out"
    assert_refused(run_cli("tile", scene, "--labels", shp, "-o", out), out, "nocrs.shp", "no CRS")


def test_footprints_that_miss_the_scene(scene, tmp_path, run_cli):
    far = tmp_path / "far.geojson"
    far.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
                "features": [{"type": "Feature", "properties": {}, "geometry": _square(600_000, 4_000_000)}],
            }
        )
    )
    out = tmp_path / "out"
    assert_refused(run_cli("tile", scene, "--labels", far, "-o", out), out, "far.geojson", "no footprint overlaps")


def test_zero_tiles(tmp_path, run_cli):
    write_tif(tmp_path / "void.tif", np.zeros((3, 200, 200), np.uint8), nodata=0)
    write_tif(tmp_path / "void_mask.tif", np.zeros((200, 200), np.uint8))
    out = tmp_path / "out"
    assert_refused(run_cli("tile", tmp_path / "void.tif", "-o", out, "--quiet"), out, "void.tif", "0 tiles")


def test_empty_footprint_file_means_no_roofs(scene, tmp_path):
    from roofseg.tiler.tile import TileParams

    from helpers import tile_dict as tile

    empty = tmp_path / "empty.geojson"
    empty.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [],
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
            }
        )
    )
    # a scene without buildings goes with one that has some (alone, its tiles would teach no roof)
    other = tmp_path / "other.tif"
    other.write_bytes(scene.read_bytes())
    manifest = tile(
        [str(scene), str(other)],
        tmp_path / "out",
        TileParams(size=100, stride=100),
        labels=[str(empty), str(scene.with_name("s_mask.tif"))],
        split_by="block",
        progress=False,
    )
    empty_job = next(j for j in manifest["jobs"] if j["labels"] == str(empty))
    assert sum(empty_job["tiles"].values()) > 0 and manifest["roof_fraction"] > 0


def test_unwritable_output(scene, tmp_path, run_cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    res = run_cli("tile", scene, "-o", blocker / "tiles")
    assert res.code != 0 and "a-file" in res.err and len(res.err.strip().splitlines()) == 1


def test_scene_without_labels(tmp_path, run_cli):
    write_tif(tmp_path / "alone.tif", np.ones((3, 50, 50), np.uint8))
    out = tmp_path / "out"
    assert_refused(run_cli("tile", tmp_path / "alone.tif", "-o", out), out, "alone.tif", "no labels found")


def test_folder_image_without_mask(tmp_path, run_cli):
    import cv2

    (tmp_path / "f" / "images").mkdir(parents=True)
    (tmp_path / "f" / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "f" / "images" / "lonely.png"), np.zeros((20, 20, 3), np.uint8))
    out = tmp_path / "out"
    assert_refused(run_cli("tile", tmp_path / "f", "-o", out), out, "lonely.png", "no mask")


def test_help_lists_every_option_with_its_default(run_cli):
    res = run_cli("tile", "--help")
    assert res.code == 0
    for opt in (
        "--tile-size",
        "--stride",
        "--overlap",
        "--bands",
        "--max-nodata",
        "--keep-empty",
        "--shard-mb",
        "--compress",
        "--workers",
        "--overwrite",
        "--split-by",
    ):
        assert opt in res.out
    text = " ".join(res.out.split())
    assert "[default: 256; x>=32]" in text and "[default: 0.5;" in text and "percentiles" in text


def test_one_scene_with_empty_splits_is_said_when_tiling_and_when_training(sample_scene, tmp_path, run_cli):
    done = run_cli("tile", sample_scene["image"], "-o", tmp_path / "tiles", "--tile-size", 64, "--quiet")
    assert done.code == 0, done.err
    warnings = [ln for ln in done.err.splitlines() if ln.startswith("roofseg: warning:")]
    assert any("val split has no tiles" in ln and "--split-block" in ln for ln in warnings), done.err
    refused = run_cli(
        "train", tmp_path / "tiles" / "manifest.json", "-o", tmp_path / "run", "--encoder-weights", "none"
    )
    line = one_error_line(refused)
    assert "'val' has no tiles" in line and "--split-block" in line


def test_labels_that_miss_the_scene_empty_files_and_no_buildings_are_said_plainly(sample_scene, tmp_path, run_cli):
    from shapely.geometry import box

    from conftest import write_geojson

    far = write_geojson(
        tmp_path / "far.geojson", [box(100, 100, 120, 120)]
    )  # UTM metres read as degrees? no: a CRS that misses
    line = one_error_line(
        run_cli(
            "tile",
            sample_scene["image"],
            "--labels",
            far,
            "-o",
            tmp_path / "t1",
            "--quiet",
            "--labels-crs",
            "EPSG:3857",
        )
    )
    assert "lon " in line and "lat " in line and "--labels-crs" in line
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")
    line = one_error_line(run_cli("tile", sample_scene["image"], "--labels", empty, "-o", tmp_path / "t2", "--quiet"))
    assert "empty.geojson" in line and "is empty (0 bytes)" in line
    none = write_geojson(tmp_path / "none.geojson", [])
    line = one_error_line(
        run_cli("tile", sample_scene["image"], "--labels", none, "-o", tmp_path / "t3", "--quiet", "--tile-size", 128)
    )
    assert "none.geojson" in line and "holds no building" in line
    copy = tmp_path / "copy.tif"
    copy.write_bytes(sample_scene["image"].read_bytes())
    done = run_cli(
        "tile", sample_scene["image"], copy, "--labels", none, "--labels", sample_scene["labels"],
        "-o", tmp_path / "t4", "--quiet", "--tile-size", 128,
    )  # fmt: skip
    assert done.code == 0, done.err
    assert any(ln.startswith("roofseg: warning: ") and "holds no building" in ln for ln in done.err.splitlines())
    assert "Warning" not in done.err and ".py:" not in done.err  # no library warning raw, no source path


def test_one_vocabulary_across_commands(sample_scene, tmp_path, run_cli):
    from roofseg.training.strategy import make_strategy

    line = one_error_line(run_cli("tile", sample_scene["image"], "-o", tmp_path / "t", "--tile-size", 100, "--quiet"))
    assert "--tile-size" in line and "multiple of 32" in line
    predict_help = run_cli("predict", "--help").out
    assert "--workers" not in predict_help and "--tile-size" in predict_help
    for name in ("train", "tile", "predict", "evaluate", "evaluate-scene", "tune", "sample"):
        assert "--quiet" in run_cli(name, "--help").out, name
    for form in (["CPU:0"], ["/cpu:0"], ["/device:CPU:0"]):
        assert make_strategy("mirrored", form).num_replicas_in_sync == 1


def test_predict_chooses_an_overlap_that_fits_a_small_window(sample_scene, tmp_path, run_cli):
    from helpers import tiny_keras

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    done = run_cli(
        "predict", model, sample_scene["image"], tmp_path / "p.tif", "--tile-size", 64, "--engine", "tf", "--quiet"
    )
    assert done.code == 0, done.err


def test_the_border_band_is_in_metres_by_default_in_px_when_asked_and_never_both(sample_scene, tmp_path, run_cli):
    def manifest_of(name: str, *band) -> dict:
        out = tmp_path / name
        result = run_cli("tile", sample_scene["image"], "-o", out, "--tile-size", 128, "--quiet", *band)
        assert result.code == 0, result.err
        return json.loads((out / "manifest.json").read_text())

    default = manifest_of("default")  # the sample's 0.3 m pixels: 0.9 m is 3 px
    assert default["contact_m"] == 0.9 and default["targets"] == ["roof", "contact"]
    in_px = manifest_of("px", "--contact-px", 5)
    assert in_px["contact_m"] is None and in_px["contact_px"] == 5
    roof_only = manifest_of("roof", "--contact-px", 0)
    assert roof_only["targets"] == ["roof"] and roof_only["contact_m"] is None
    line = one_error_line(
        run_cli("tile", sample_scene["image"], "-o", tmp_path / "both", "--contact-m", 1, "--contact-px", 3)
    )
    assert "not both" in line and not (tmp_path / "both").exists()
