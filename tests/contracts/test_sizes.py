"""Tile sizes and ground resolutions: one rule, one default and one formula each."""

from __future__ import annotations

import pytest

from roofseg.contracts.sizes import (
    DEFAULT_TILE_SIZE,
    check_tile_size,
    default_overlap,
    gsd_is_off,
    model_gsd,
)
from roofseg.errors import RoofsegError


def test_one_tile_size_rule_with_one_message():
    assert check_tile_size(64) == 64 and DEFAULT_TILE_SIZE == 256
    for bad in (0, 100, -32):
        with pytest.raises(RoofsegError, match="multiple of 32") as err:
            check_tile_size(bad, "--tile-size")
        assert err.value.path == "--tile-size"
    with pytest.raises(RoofsegError, match="--tile-size 96"):
        check_tile_size(100)  # the nearest size that works is offered


def test_overlap_model_gsd_and_tolerance():
    assert default_overlap(64) == 16 and default_overlap(512) == 64
    assert model_gsd(0.3, 256, 128) == pytest.approx(0.6)  # tiles shrunk to the model's input look coarser
    assert model_gsd(0.3, 256, 256) == 0.3 and model_gsd(None, 256, 128) is None
    assert not gsd_is_off(0.36, 0.3) and gsd_is_off(0.4, 0.3) and not gsd_is_off(None, 0.3)


def test_every_command_checks_the_tile_size_by_the_one_rule(run_cli, tmp_path):
    from conftest import one_error_line

    for args in (
        ("tile", tmp_path, "-o", tmp_path / "t"),
        ("train", tmp_path / "m.json", "-o", tmp_path / "r"),
        ("export", tmp_path / "m.keras", tmp_path / "m.onnx"),
        ("evaluate", tmp_path / "m.keras", tmp_path / "m.json"),
    ):
        line = one_error_line(run_cli(*args, "--tile-size", "100"))
        assert "'--tile-size'" in line and "multiple of 32" in line and "--tile-size 96" in line, (args, line)


def test_a_scene_inside_a_range_is_read_at_its_own_gsd_and_outside_at_the_nearest_end():
    from roofseg.contracts.sizes import describe_range, off_range, reading_gsd

    span = (0.075, 0.3)
    assert reading_gsd(0.15, span) is None and reading_gsd(0.302, span) is None  # within a percent: its own
    assert reading_gsd(0.5, span) == 0.3 and reading_gsd(0.05, span) == 0.075
    assert reading_gsd(None, span) is None and reading_gsd(0.5, None) is None
    assert reading_gsd(0.31, (0.3, 0.3)) == 0.3  # a model of one GSD reads every other scene at it
    assert not off_range(0.36, span) and off_range(0.4, span) and off_range(0.055, span)
    assert describe_range(span) == "0.075-0.3 m" and describe_range((0.3, 0.3)) == "0.3 m"
