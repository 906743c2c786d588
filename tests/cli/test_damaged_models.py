"""A damaged model archive, in every command that takes a model: one line naming it, nothing written."""

from __future__ import annotations

import zipfile

import pytest

from roofseg.contracts.card import ModelCard, write_card

from conftest import one_error_line
from helpers import tiny_keras


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A whole model, and the same cut short, without its configuration, and with a flipped byte."""
    folder = tmp_path_factory.mktemp("models")
    whole = folder / "whole.keras"
    tiny_keras().save(whole)
    write_card(whole, ModelCard(gsd_m=0.3, tile_size=64))
    data = whole.read_bytes()
    (folder / "cut.keras").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(whole) as src, zipfile.ZipFile(folder / "noconfig.keras", "w") as dst:
        for info in src.infolist():
            if info.filename != "config.json":
                dst.writestr(info, src.read(info))
    with zipfile.ZipFile(whole) as src:
        info = src.getinfo("model.weights.h5")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    flipped = bytearray(data)
    flipped[start] ^= 0xFF
    (folder / "flipped.keras").write_bytes(bytes(flipped))
    return folder


COMMANDS = {
    "predict": lambda m, s, o: ["predict", m, s["image"], o / "p.tif"],
    "ship-base": lambda m, s, o: ["ship-base", m, o / "b.keras"],
    "export": lambda m, s, o: ["export", m, o / "m.onnx"],
    "adapt": lambda m, s, o: ["adapt", m, s["image"], "-o", o / "a.keras"],
    "tune": lambda m, s, o: ["tune", m, s["image"], "--labels", s["labels"], "-o", o / "t.keras"],
}


@pytest.mark.parametrize("damage", ["cut", "noconfig", "flipped"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_damaged_model_is_one_line_naming_it(models, sample_scene, tmp_path, run_cli, command, damage):
    model = models / f"{damage}.keras"
    out = tmp_path / "out"
    line = one_error_line(run_cli(*COMMANDS[command](model, sample_scene, out)))
    assert f"{damage}.keras" in line, line
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]
