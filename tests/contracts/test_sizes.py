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
