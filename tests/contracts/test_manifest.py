"""The tiling manifest: typed, versioned, one read and one write."""

from __future__ import annotations

import json

import pytest

from roofseg.contracts.manifest import Manifest, Shard, Split, read_manifest, write_manifest
from roofseg.errors import RoofsegError


def test_a_manifest_reads_back_equal_and_keeps_its_json_form(tmp_path):
    manifest = Manifest(
        splits={"train": Split(3, 0.2, (Shard("train/a.tfrecord", 3),)), "val": Split()},
        tile_size=64,
        compression="GZIP",
        split_mode="block",
        tiles=3,
        roof_fraction=0.2,
        gsd_m=0.3,
        targets=("roof", "contact"),
        contact_px=3,
        jobs=({"id": "s0", "bands": [1, 2, 3], "tiles": {"train": 3}},),
        params={"size": 64},
    )
    write_manifest(tmp_path / "manifest.json", manifest)
    assert read_manifest(tmp_path / "manifest.json") == manifest
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["format"] == "roofseg-tiles/1" and data["splits"]["train"]["shards"][0] == {
        "path": "train/a.tfrecord",
        "tiles": 3,
    }
    assert manifest.bands == [(1, 2, 3)] and manifest.has_contact and manifest.shard_paths() == ["train/a.tfrecord"]


def test_a_missing_split_a_newer_format_and_a_broken_file_are_one_line(tmp_path):
    path = tmp_path / "manifest.json"
    write_manifest(path, Manifest(splits={"train": Split()}))
    with pytest.raises(RoofsegError, match="has no split 'val'"):
        read_manifest(path).split("val", path)
    path.write_text(json.dumps({"format": "roofseg-tiles/2", "splits": {}}))
    with pytest.raises(RoofsegError, match="newer roofseg"):
        read_manifest(path)
    path.write_text("{")
    with pytest.raises(RoofsegError, match="cannot read the manifest"):
        read_manifest(path)
    with pytest.raises(RoofsegError, match="cannot read the manifest"):
        read_manifest(tmp_path / "missing.json")
