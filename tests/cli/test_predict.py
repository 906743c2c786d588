"""``roofseg predict``."""

from __future__ import annotations

import rasterio


def test_predict_makes_the_folders_of_its_outputs(sample_scene, tmp_path, run_cli):
    from helpers import tiny_keras

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    out = tmp_path / "new" / "dir" / "p.tif"
    done = run_cli(
        "predict",
        model,
        sample_scene["image"],
        out,
        "--tile-size",
        64,
        "--engine",
        "tf",
        "--vector",
        tmp_path / "other" / "roofs.gpkg",
        "--quiet",
    )
    assert done.code == 0, done.err
    with rasterio.open(out) as ds:
        assert ds.tags()["ROOFSEG_CONTENT"] == "probability"
    assert out.with_suffix(".qml").exists() and (tmp_path / "other" / "roofs.gpkg").exists()


def test_an_overlap_as_large_as_the_window_is_one_usage_line(sample_scene, tmp_path, run_cli):
    from conftest import one_error_line

    model = tmp_path / "m.keras"
    model.write_bytes(b"")
    line = one_error_line(
        run_cli("predict", model, sample_scene["image"], tmp_path / "p.tif", "--tile-size", 64, "--overlap", 64)
    )
    assert "--overlap" in line and "smaller than --tile-size (64)" in line
