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


def test_a_preview_written_over_its_manifest_is_refused_and_the_manifest_kept(manifest, tmp_path, run_cli):
    import shutil

    from conftest import one_error_line

    copy = tmp_path / "manifest.json"
    shutil.copy(manifest, copy)
    before = copy.read_bytes()
    line = one_error_line(run_cli("augment-preview", copy, copy))
    assert "is an input of this run" in line and copy.read_bytes() == before
