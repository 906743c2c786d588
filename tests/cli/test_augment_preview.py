"""``roofseg augment-preview``."""

from __future__ import annotations


def test_a_missing_manifest_is_one_line(tmp_path, run_cli):
    from conftest import one_error_line

    line = one_error_line(run_cli("augment-preview", tmp_path / "none.json", tmp_path / "p.png"))
    assert "none.json" in line and "does not exist" in line and not (tmp_path / "p.png").exists()


def test_the_preview_draws_a_png(manifest, tmp_path, run_cli):
    done = run_cli("augment-preview", manifest, tmp_path / "p.png", "--count", 2, "--quiet")
    assert done.code == 0, done.err
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
