"""STAC inputs: a Catalog (local and HTTP assets) to tile, an ItemCollection to predict; item ids name the scenes."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
import rasterio

from roofseg.prediction.many import predict_scenes
from roofseg.prediction.options import PredictOptions
from roofseg.tiler.tile import TileParams

from helpers import tile_dict as tile

PARAMS = TileParams(size=64, stride=64, split_block=128, val=0.2, test=0.2)


def item(item_id: str, image: str, labels: str | None, key: str = "visual") -> pystac.Item:
    with rasterio.open(image if "://" not in image else image.replace("http://", "/vsicurl/http://")) as ds:
        left, bottom, right, top = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    geometry = {
        "type": "Polygon",
        "coordinates": [[[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]],
    }
    it = pystac.Item(item_id, geometry, [left, bottom, right, top], datetime(2024, 1, 1, tzinfo=UTC), {})
    it.add_asset(key, pystac.Asset(image, media_type=pystac.MediaType.COG, roles=["data"]))
    if labels:
        it.add_asset("buildings", pystac.Asset(labels, media_type=pystac.MediaType.GEOJSON, roles=["labels"]))
    return it


def test_a_catalog_with_local_and_served_assets_tiles_like_its_files(sample_scene, http_folder, tmp_path):
    folder, server = http_folder
    shutil.copy(sample_scene["image"], folder / "b.tif")
    shutil.copy(sample_scene["labels"], folder / "b.geojson")
    catalog = pystac.Catalog("city", "scenes of one city")
    catalog.add_item(item("north", str(sample_scene["image"]), str(sample_scene["labels"])))
    catalog.add_item(item("south", f"{server.url}/b.tif", f"{server.url}/b.geojson"))
    catalog.normalize_and_save(str(tmp_path / "stac"), catalog_type=pystac.CatalogType.SELF_CONTAINED)

    manifest = tile([str(tmp_path / "stac" / "catalog.json")], tmp_path / "tiles", PARAMS, progress=False)
    direct = tile(
        [str(sample_scene["image"])], tmp_path / "direct", PARAMS, labels=[str(sample_scene["labels"])], progress=False
    )
    jobs = {j["id"]: j["tiles"] for j in manifest["jobs"]}
    assert set(jobs) == {"north", "south"}
    assert (
        jobs["north"] == jobs["south"] == direct["jobs"][0]["tiles"]
    )  # the same scene, read from a file and over HTTP
    assert any(r[1] == "/b.tif" and r[2] for r in server.requests)


def test_an_item_collection_predicts_one_raster_per_item(sample_scene, tmp_path):
    for name in ("a", "b"):
        shutil.copy(sample_scene["image"], tmp_path / f"{name}.tif")
    collection = pystac.ItemCollection(
        [
            item("tile-a", str(tmp_path / "a.tif"), None, key="image"),
            item("tile-b", str(tmp_path / "b.tif"), None, key="image"),
        ]
    )
    (tmp_path / "items.json").write_text(json.dumps(collection.to_dict()))
    result = predict_scenes(
        lambda b: b[..., :1],
        [str(tmp_path / "items.json")],
        tmp_path / "out",
        PredictOptions(tile=128, overlap=32),
        progress=False,
    )
    assert result["predicted"] == 2
    with rasterio.open(tmp_path / "out" / "tile-a.tif") as a, rasterio.open(tmp_path / "out" / "tile-b.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_relative_assets_of_an_item_collection_are_relative_to_its_file(sample_scene, tmp_path, monkeypatch):
    from roofseg.stac import stac_scenes

    folder = tmp_path / "catalog"
    folder.mkdir()
    shutil.copy(sample_scene["image"], folder / "a.tif")
    it = item("tile-a", str(folder / "a.tif"), None, key="image")
    it.assets["image"].href = "a.tif"
    collection = pystac.ItemCollection([it])
    (folder / "items.json").write_text(json.dumps(collection.to_dict(transform_hrefs=False)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.tif").write_bytes(b"a decoy of the same name")
    monkeypatch.chdir(elsewhere)
    (scene,) = stac_scenes(str(folder / "items.json"))
    assert Path(scene.image) == folder / "a.tif"
