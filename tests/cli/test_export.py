"""``roofseg export``."""

from __future__ import annotations


def test_a_tile_size_for_roofsegs_own_layout_is_refused(tmp_path, run_cli):
    from conftest import one_error_line
    from helpers import tiny_keras

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    line = one_error_line(run_cli("export", model, tmp_path / "m.onnx", "--tile-size", 64))
    assert "--tile-size" in line and "deepness" in line and not (tmp_path / "m.onnx").exists()
