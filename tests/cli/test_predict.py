"""``roofseg predict``."""

from __future__ import annotations

import rasterio


def test_predict_makes_the_folders_of_its_outputs(sample_scene, tmp_path, run_cli):
    from helpers import blank_keras

    model = tmp_path / "m.keras"
    blank_keras().save(model)
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


def test_mapped_buildings_in_an_unstated_crs_are_said_before_predicting_with_predicts_own_option(
    sample_scene, tmp_path, run_cli
):
    import json

    from conftest import one_error_line
    from helpers import blank_keras

    model = tmp_path / "m.keras"
    blank_keras().save(model)
    doc = json.loads(open(sample_scene["labels"]).read())
    doc.pop("crs", None)  # UTM metres in a GeoJSON that says nothing: RFC 7946 reads it as degrees
    (tmp_path / "mapped.geojson").write_text(json.dumps(doc))
    args = (model, sample_scene["image"], tmp_path / "p.tif", "--vector", tmp_path / "p.gpkg", "--engine", "tf")
    line = one_error_line(run_cli("predict", *args, "--existing", tmp_path / "mapped.geojson", "--quiet"))
    assert "mapped.geojson" in line and "--existing-crs" in line and "--labels-crs" not in line
    assert not (tmp_path / "p.tif").exists()
    done = run_cli(
        "predict", *args, "--existing", tmp_path / "mapped.geojson", "--existing-crs", "EPSG:32633", "--quiet"
    )
    assert done.code == 0, done.err
    line = one_error_line(run_cli("predict", *args, "--existing", tmp_path / "missing.geojson", "--overwrite"))
    assert "missing.geojson" in line and "does not exist" in line
