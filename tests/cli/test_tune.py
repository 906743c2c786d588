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
