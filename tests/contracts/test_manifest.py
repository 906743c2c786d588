"""The tiling manifest: typed, versioned, one read and one write."""

from __future__ import annotations

import json

import pytest

from roofseg.contracts.manifest import Job, Manifest, Shard, Split, read_manifest, write_manifest
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
        jobs=(Job("s0", bands=(1, 2, 3), tiles={"train": 3}, gsd_m=0.3, review={"accept": 2}),),
        params={"size": 64},
    )
    write_manifest(tmp_path / "manifest.json", manifest)
    assert read_manifest(tmp_path / "manifest.json") == manifest
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["format"] == "roofseg-tiles/2" and data["splits"]["train"]["shards"][0] == {
        "path": "train/a.tfrecord",
        "tiles": 3,
    }
    assert manifest.bands == [(1, 2, 3)] and manifest.has_contact and manifest.shard_paths() == ["train/a.tfrecord"]


def test_a_missing_split_a_newer_format_and_a_broken_file_are_one_line(tmp_path):
    path = tmp_path / "manifest.json"
    write_manifest(path, Manifest(splits={"train": Split()}))
    with pytest.raises(RoofsegError, match="has no split 'val'"):
        read_manifest(path).split("val", path)
    path.write_text(json.dumps({"format": "roofseg-tiles/99", "splits": {}}))
    with pytest.raises(RoofsegError, match="newer roofseg"):
        read_manifest(path)
    path.write_text("{")
    with pytest.raises(RoofsegError, match="cannot read the manifest"):
        read_manifest(path)
    with pytest.raises(RoofsegError, match="cannot read the manifest"):
        read_manifest(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "job, place",
    [
        ({"id": "hot_data2_z20_block1@0.15m"}, "hot_data2"),
        ({"id": "banepa_z20_block0"}, "banepa"),
        ({"id": "OAM-1238448-1046528-21"}, "OAM"),  # tile numbers and zoom
        ({"id": "23129065_15", "image": "/d/massachusetts/images/23129065_15.png"}, "massachusetts"),
        ({"id": "x_block3", "place": "Nairobi"}, "Nairobi"),  # a place stated wins
    ],
)
def test_a_jobs_place_is_its_name_without_zoom_block_tile_numbers_and_gsd(job, place):
    from roofseg.contracts.manifest import place_of

    assert place_of(Job.from_dict(job)) == place


def test_shards_group_by_place_and_gsd():
    from roofseg.contracts.manifest import Manifest, Shard, Split

    shards = (Shard("train/a_z20_block0-00000.tfrecord", 5), Shard("train/a_z19_block0-00000.tfrecord", 2))
    shards += (Shard("train/b-1-2-00000.tfrecord", 1), Shard("train/b-1-3-00000.tfrecord", 1))
    jobs = (Job("a_z20_block0", gsd_m=0.15), Job("a_z19_block0", gsd_m=0.3), Job("b-1-2", gsd_m=0.3))
    jobs += (Job("b-1-3", gsd_m=0.3),)
    groups = Manifest({"train": Split(9, 0.1, shards)}, jobs=jobs).groups()
    assert {g: [s.tiles for s in v] for g, v in groups.items()} == {"a@0.15m": [5], "a@0.30m": [2], "b@0.30m": [1, 1]}


def test_a_manifest_of_tiles_1_reads_its_jobs_as_typed_records_and_keeps_unknown_keys(tmp_path):
    old = {
        "format": "roofseg-tiles/1",
        "splits": {"train": {"tiles": 2, "shards": [{"path": "train/s-00000.tfrecord", "tiles": 2}]}},
        "jobs": [
            {"id": "s", "image": "/d/s.tif", "bands": [3, 2, 1], "gsd_m": 0.3, "tiles": {"train": 2}, "note": "x"},
            {"id": "folder-0", "images": ["/d/a.png"], "split": "image", "tiles": {"val": 1}},
        ],
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(old))
    manifest = read_manifest(path)
    scene, folder = manifest.jobs
    assert scene.bands == (3, 2, 1) and scene.tiles_in("train") == 2 and scene.review is None
    assert scene.extra == {"note": "x"} and not manifest.known
    assert folder.images == ("/d/a.png",) and folder.tiles_in("train") == 0
    assert manifest.training_scenes == ["s"] and manifest.gsd_range == (0.3, 0.3)
    write_manifest(path, manifest)
    again = json.loads(path.read_text())
    assert again["jobs"][0]["note"] == "x" and again["format"] == "roofseg-tiles/2"
    assert read_manifest(path) == manifest
