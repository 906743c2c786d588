"""``roofseg tune``."""

from __future__ import annotations


def test_a_scene_without_labels_is_one_line_and_writes_no_model(sample_scene, tmp_path, run_cli):
    import shutil

    from conftest import one_error_line
    from helpers import tiny_keras

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    scene = tmp_path / "alone.tif"
    shutil.copy(sample_scene["image"], scene)
    line = one_error_line(run_cli("tune", model, scene, "-o", tmp_path / "tuned.keras", "--quiet"))
    assert "alone.tif" in line and not (tmp_path / "tuned.keras").exists()


def test_tune_makes_its_output_folder_and_refuses_labels_without_a_building(tmp_path, run_cli):
    from roofseg.sample import write_sample

    from conftest import one_error_line
    from helpers import blank_keras

    sample_scene = write_sample(tmp_path / "sample", size=256, seed=1, progress=False)  # two buildings
    model = tmp_path / "m.keras"
    blank_keras().save(model)
    args = ("--labels", sample_scene["labels"], "--quiet")
    done = run_cli("tune", model, sample_scene["image"], "-o", tmp_path / "new" / "dir" / "t.keras", *args)
    assert done.code == 0, done.err
    empty = tmp_path / "none.osm"
    empty.write_text('<?xml version="1.0"?><osm version="0.6"></osm>')
    args = ("--labels", empty, "-o", tmp_path / "t.keras", "--quiet")
    line = one_error_line(run_cli("tune", model, sample_scene["image"], *args))
    assert "none.osm" in line and "no building" in line and not (tmp_path / "t.keras").exists()


def test_an_archive_that_is_no_model_is_one_line_in_every_command(sample_scene, manifest, tmp_path, run_cli):
    import zipfile

    from conftest import one_error_line

    archive = tmp_path / "labels.keras"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(sample_scene["labels"], "labels.geojson")
    for args in (
        ("tune", archive, sample_scene["image"], "-o", tmp_path / "t.keras", "--quiet"),
        ("export", archive, tmp_path / "m.onnx"),
        ("predict", archive, sample_scene["image"], tmp_path / "p.tif", "--engine", "tf", "--quiet"),
        ("train", manifest, "-o", tmp_path / "run", "--init-from", archive, "--batch", 4, "--epochs", 1, "--quiet"),
    ):
        line = one_error_line(run_cli(*args))
        assert "labels.keras" in line and "no Keras model" in line, (args[0], line)
