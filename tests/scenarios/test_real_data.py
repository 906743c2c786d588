"""Real data from ../shared/data (skipped where absent)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from roofseg.contracts.tile import read_records
from roofseg.tiler.tile import TileParams

from conftest import SHARED
from helpers import tile_dict as tile


def test_spacenet_uint16_pan_chip_with_footprints(spacenet, tmp_path):
    """The 1-band uint16 chip with its GeoJSON tiles onto exactly the footprint mask's pixels."""
    image = spacenet / "sample_geotiff.tif"
    manifest = tile(
        [str(image)],
        tmp_path,
        TileParams(size=256, stride=256, max_nodata=1.0),
        labels=[str(spacenet / "geotiff_labels.geojson")],
        progress=False,
    )
    with rasterio.open(spacenet / "sample_fp_mask.tif") as ds:
        truth = ds.read(1) > 0
    with rasterio.open(image) as ds:
        valid = ds.read(1) != ds.nodata
        transform = ds.transform
    mosaic = np.zeros(truth.shape, np.uint8)
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            for r in read_records(str(tmp_path / shard["path"])):
                h, w = r["valid_height"], r["valid_width"]
                mosaic[r["row"] : r["row"] + h, r["col"] : r["col"] + w] = r["mask"][:h, :w]
                assert r["image"].shape == (256, 256, 3) and r["epsg"] == 32616
                assert rasterio.Affine(*r["transform"]) @ (0, 0) == transform @ (r["col"], r["row"])
    np.testing.assert_array_equal(mosaic.astype(bool), truth & valid)
    roof = manifest["roof_fraction"] * manifest["tiles"] * 256 * 256 / truth.size
    assert abs(roof - (truth & valid).mean()) < 1e-9
    assert abs((truth & valid).mean() - 0.0418) < 0.002  # the README's 4.18 %


KAMPALA = SHARED / "hotosm-ramp-sample" / "kampala-chips"
MASSACHUSETTS = SHARED / "massachusetts-buildings-sample"


def test_kampala_chips_footprints_burn_onto_their_masks(tmp_path):
    """Real RGB chips in EPSG:4326 with per-chip GeoJSON: tiles' masks equal the shipped masks."""
    if not (KAMPALA / "chips").is_dir():
        pytest.skip(f"real data not present at {KAMPALA}")
    chips = sorted((KAMPALA / "chips").glob("*.tif"))[:6]
    labels = [str(KAMPALA / "labels" / "2" / f"{c.stem}.geojson") for c in chips]
    manifest = tile(
        [str(c) for c in chips],
        tmp_path,
        TileParams(size=256, stride=256, max_nodata=1.0),
        labels=labels,
        progress=False,
    )
    assert manifest["split_mode"] == "scene" and manifest["tiles"] == len(chips)
    roof = 0
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            for r in read_records(str(tmp_path / shard["path"])):
                with rasterio.open(KAMPALA / "binarymasks" / f"{r['scene_id']}.mask.tif") as m:
                    np.testing.assert_array_equal(r["mask"], m.read(1))
                with rasterio.open(KAMPALA / "chips" / f"{r['scene_id']}.tif") as c:
                    np.testing.assert_array_equal(r["image"], np.moveaxis(c.read(), 0, -1))
                assert r["epsg"] == 4326
                roof += int(r["mask"].sum())
    assert roof > 0


def test_massachusetts_folder_of_pngs(tmp_path):
    """The real images/ + masks/ layout (1500² PNGs, 0/255 masks) through the folder mode."""
    if not (MASSACHUSETTS / "images").is_dir():
        pytest.skip(f"real data not present at {MASSACHUSETTS}")
    manifest = tile([str(MASSACHUSETTS)], tmp_path, TileParams(size=256, stride=256), progress=False)
    n = len(list((MASSACHUSETTS / "images").glob("*.png")))
    assert manifest["split_mode"] == "image" and manifest["tiles"] == n == 24
    assert all(manifest["splits"][s]["tiles"] > 0 for s in ("train", "val", "test"))
    assert 0.03 < manifest["roof_fraction"] < 0.25  # the README gives 3.7–25 % per tile
