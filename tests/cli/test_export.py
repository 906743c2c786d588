"""``roofseg export``."""

from __future__ import annotations


def test_a_tile_size_for_roofsegs_own_layout_is_refused(tmp_path, run_cli):
    from conftest import one_error_line
    from helpers import tiny_keras

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    line = one_error_line(run_cli("export", model, tmp_path / "m.onnx", "--tile-size", 64))
    assert "--tile-size" in line and "deepness" in line and not (tmp_path / "m.onnx").exists()


def test_a_model_of_16_bit_imagery_is_not_exported_for_deepness(tmp_path, run_cli):
    from conftest import one_error_line
    from helpers import tiny_keras, write_card_dict

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    write_card_dict(model, {"format": "roofseg-model/2", "gsd_m": 0.5, "tile_size": 64, "dtypes": ["uint16"]})
    line = one_error_line(run_cli("export", model, tmp_path / "m.onnx", "--layout", "deepness"))
    assert "m.keras" in line and "uint16" in line and "roofseg predict" in line and not (tmp_path / "m.onnx").exists()
