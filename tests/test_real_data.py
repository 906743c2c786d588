"""Real data from ../shared/data (skipped where absent)."""

from __future__ import annotations

import json

import numpy as np
import rasterio

from roofseg.records import read_records
from roofseg.tiler.run import tile
from roofseg.tiler.tile import TileParams


def test_spacenet_uint16_pan_chip_with_footprints(spacenet, tmp_path):
    """The 1-band uint16 chip with its GeoJSON tiles onto exactly the footprint mask's pixels."""
    image = spacenet / "sample_geotiff.tif"
    manifest = tile([str(image)], tmp_path, TileParams(size=256, stride=256, max_nodata=1.0),
                    labels=[str(spacenet / "geotiff_labels.geojson")], progress=False)
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
                mosaic[r["row"]:r["row"] + h, r["col"]:r["col"] + w] = r["mask"][:h, :w]
                assert r["image"].shape == (256, 256, 3) and r["epsg"] == 32616
                assert rasterio.Affine(*r["transform"]) @ (0, 0) == transform @ (r["col"], r["row"])
    np.testing.assert_array_equal(mosaic.astype(bool), truth & valid)
    roof = manifest["roof_fraction"] * manifest["tiles"] * 256 * 256 / truth.size
    assert abs(roof - (truth & valid).mean()) < 1e-9
    assert abs((truth & valid).mean() - 0.0418) < 0.002  # the README's 4.18 %
