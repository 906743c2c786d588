"""``roofseg evaluate``."""

from __future__ import annotations


def test_a_model_file_that_is_no_model_is_one_line(manifest, tmp_path, run_cli):
    from conftest import one_error_line

    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    line = one_error_line(run_cli("evaluate", junk, manifest, "--quiet"))
    assert str(junk) in line and "not a Keras model file" in line
