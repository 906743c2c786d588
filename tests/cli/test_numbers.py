"""Numeric options: what is not a finite, sensible number is one line naming the option."""

from __future__ import annotations

import pytest

from conftest import one_error_line


@pytest.mark.parametrize("value", ["nan", "inf", "1e-9", "-0.3", "0.15,nan"])
def test_tile_gsd_that_is_no_ground_pixel_size_is_one_line(sample_scene, tmp_path, run_cli, value):
    line = one_error_line(run_cli("tile", sample_scene["image"], "-o", tmp_path / "t", "--gsd", value))
    assert "--gsd" in line and not (tmp_path / "t" / "manifest.json").exists()


@pytest.mark.parametrize(
    "command, option",
    [
        (["augment-preview"], "--scale"),
        (["augment-preview"], "--brightness"),
        (["train", "-o", "RUN"], "--lr"),
        (["tile", "-o", "RUN"], "--nodata"),
        (["tile", "-o", "RUN"], "--pixel-size"),
    ],
)
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_number_that_is_not_finite_is_one_line_naming_its_option(manifest, tmp_path, run_cli, command, option, value):
    name, *rest = command
    source = manifest if name != "tile" else manifest.parent
    args = [a if a != "RUN" else tmp_path / "out" for a in rest]
    result = run_cli(name, source, *args, option, value)
    line = one_error_line(result)
    assert option in line and ("finite" in line or "range" in line), line
    assert not (tmp_path / "out").exists()
