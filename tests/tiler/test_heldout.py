"""The held-out blocks of a tile manifest: the validation squares no training tile came from, as
scenes tune scores on."""

from __future__ import annotations

import json

import numpy as np
import rasterio
from affine import Affine
from shapely.geometry import box

from conftest import write_geojson, write_tif
from helpers import red, tiny_keras

A = Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000)  # 256 px: 128 m square
B = Affine(1.0, 0, 500_064, 0, -1.0, 5_000_000)  # 64 px at 1 m: A's top-right quarter
C = Affine(0.5, 0, 500_000, 0, -0.5, 5_004_000)  # far from both


def roofs_scene(folder, name: str, transform: Affine, size: int):
    """A scene of red 12 px roofs every 32 px on dark ground, with their footprints beside it."""
    data = np.full((3, size, size), 40, np.uint8)
    roofs = []
    for r in range(6, size - 12, 32):
        for c in range(6, size - 12, 32):
            data[0, r : r + 12, c : c + 12] = 255
            x, y = transform @ (c, r)
            roofs.append(box(x, y - 12 * transform.a, x + 12 * transform.a, y))
    image = write_tif(folder / f"{name}.tif", data, transform=transform)
    write_geojson(folder / f"{name}.geojson", roofs)
    return image


def tiled(tmp_path, run_cli, *extra) -> tuple:
    """A (256 px, 16 blocks of 64, a quarter val) and B (over A's top-right quarter, all train), tiled."""
    a = roofs_scene(tmp_path, "a", A, 256)
    b = roofs_scene(tmp_path, "b", B, 64)
    mask = np.zeros((256, 256), np.uint8)
    mask[10:30, 10:30] = 1
    c = write_tif(tmp_path / "c.tif", np.full((3, 256, 256), 90, np.uint8), transform=C)
    write_tif(tmp_path / "c_mask.tif", mask, transform=C)
    listing = tmp_path / "scenes.txt"
    listing.write_text(f"{a}\n{b}\n{c} {tmp_path / 'c_mask.tif'}\n")
    out = tmp_path / "tiles"
    args = (
        "--tile-size",
        64,
        "--split-by",
        "block",
        "--split-block",
        64,
        "--val",
        0.25,
        "--test",
        0,
        "--seed",
        1,
        "--quiet",
        *extra,
    )
    result = run_cli("tile", listing, "-o", out, *args)
    assert result.code == 0
    # one of the 8 val blocks (4 of A, 4 of C) lies under B, which trained: tile says val flatters there
    said = [line for line in result.err.splitlines() if "lie on ground another scene" in line]
    assert len(said) == 1 and "1 of the 8 val blocks" in said[0] and "a-val-r1c3 under b" in said[0]
    assert "tile --gsd 0.15,0.3" in said[0]  # the option as tile names it
    return out / "manifest.json", a


def test_held_out_blocks_are_the_val_tiles_of_ground_no_scene_trained_on(tmp_path, run_cli):
    from roofseg.contracts.manifest import read_manifest
    from roofseg.contracts.tile import read_records
    from roofseg.tiler.heldout import held_out_blocks, write_block

    manifest, a = tiled(tmp_path, run_cli)
    data = json.loads(manifest.read_text())
    val_a = set()
    for shard in data["splits"]["val"]["shards"]:
        for r in read_records(str(manifest.parent / shard["path"]), data["compression"]):
            assert r["scene_id"] != "b"  # B is one block: all train
            if r["scene_id"] == "a":
                val_a.add((r["row"], r["col"]))
    under_b = {(r, c) for r, c in val_a if r < 128 and c >= 128}
    assert val_a and under_b, "the seed must draw a val block under B for this test to mean anything"

    blocks = held_out_blocks(read_manifest(manifest))
    assert {b.image for b in blocks} == {str(a)}  # not B (no val), not C (a mask labels it)
    assert {(int(b.window.row_off), int(b.window.col_off)) for b in blocks} == val_a - under_b
    assert all((b.window.height, b.window.width) == (64, 64) for b in blocks)

    crop = write_block(blocks[0], tmp_path)
    with rasterio.open(a) as src, rasterio.open(crop) as out:
        assert out.crs == src.crs and out.transform == src.window_transform(blocks[0].window)
        assert np.array_equal(out.read(), src.read(window=blocks[0].window))


def test_tune_on_held_out_blocks_records_them_and_refuses_a_manifest_without_any(tmp_path, run_cli):
    from roofseg.contracts.card import read_card
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.scoring.tune import tune

    manifest, _ = tiled(tmp_path, run_cli)
    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    options = PredictOptions(tile=64, overlap=16)
    table = tune(model, [], tmp_path / "t.keras", options=options, progress=False, infer=red, held_out=manifest)
    scenes = read_card(tmp_path / "t.keras").postprocess.scenes
    assert scenes and all(s.startswith("a-val-r") for s in scenes) and set(table["scenes"]) == set(scenes)
    assert table["pooled"]["chosen"]["object_f1"] == 1.0

    whole = tmp_path / "whole"
    assert (
        run_cli("tile", tmp_path / "a.tif", "-o", whole, "--tile-size", 64, "--split-by", "scene", "--quiet").code == 0
    )
    result = run_cli("tune", model, "--held-out", whole / "manifest.json", "-o", tmp_path / "u.keras")
    assert result.code == 1 and "no val block to score on" in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "u.keras").exists()
    result = run_cli("tune", model, "-o", tmp_path / "u.keras")
    assert result.code == 1 and "--held-out" in result.err and len(result.err.strip().splitlines()) == 1


def test_scenes_split_whole_are_held_out_whole_unless_another_file_trained_on_their_ground(tmp_path, run_cli):
    from roofseg.contracts.manifest import read_manifest
    from roofseg.tiler.heldout import held_out_blocks, split_blocks

    far = [Affine(0.5, 0, 500_000 + 1000 * k, 0, -0.5, 5_000_000) for k in range(6)]
    scenes = [roofs_scene(tmp_path, f"s{k}", t, 128) for k, t in enumerate(far)]
    twin = roofs_scene(tmp_path, "twin", Affine(1.0, 0, 502_000, 0, -1.0, 5_000_000), 64)  # s2 at 1 m
    out = tmp_path / "tiles"
    args = ("--tile-size", 64, "--split-by", "scene", "--val", 0.3, "--test", 0, "--quiet")
    result = run_cli("tile", *scenes, twin, "-o", out, *args)
    assert result.code == 0 and "1 of the 2 val blocks" in result.err and "s2-val under twin" in result.err
    manifest = read_manifest(out / "manifest.json")
    assert {j.id for j in manifest.jobs if j.split == "val"} == {"s2", "s4"}  # seed 0 draws these; twin trains
    assert {b.block.name: b.under for b in split_blocks(manifest)} == {"s2-val": "twin", "s4-val": None}
    (held,) = held_out_blocks(manifest)
    assert held.name == "s4-val" and (held.window.width, held.window.height) == (128, 128)


def test_a_scene_tiled_at_two_gsds_gives_each_held_out_block_once(tmp_path, run_cli):
    from roofseg.contracts.manifest import read_manifest
    from roofseg.tiler.heldout import held_out_blocks, split_blocks

    a = roofs_scene(tmp_path, "a", A, 256)
    out = tmp_path / "tiles"
    args = ("--tile-size", 32, "--split-by", "block", "--split-block", 64, "--val", 0.25, "--test", 0, "--seed", 1)
    assert run_cli("tile", a, "-o", out, "--gsd", "0.5,1", *args, "--quiet").code == 0
    manifest = read_manifest(out / "manifest.json")
    assert all(j.tiles_in("val") for j in manifest.jobs) and len(manifest.jobs) == 2
    assert len(split_blocks(manifest)) == 8  # a job per GSD, the same four blocks each (64 px of 0.5 m)
    blocks = held_out_blocks(manifest)
    assert sorted((int(b.window.row_off), int(b.window.col_off)) for b in blocks) == [
        (0, 64), (64, 192), (128, 128), (192, 0)
    ]  # fmt: skip
