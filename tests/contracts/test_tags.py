"""The tags that say what a prediction raster holds."""

from __future__ import annotations

import numpy as np
import rasterio

from roofseg.contracts.tags import RasterTags, read_tags


def test_tags_round_trip_through_a_geotiff(tmp_path):
    written = {"p.tif": RasterTags.probability("uint8", 2, run="abc"), "b.tif": RasterTags.binary(0.45)}
    for name, tags in written.items():
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as ds:
            ds.write(np.zeros((1, 4, 4), np.uint8))
            ds.update_tags(**tags.to_gdal())
        with rasterio.open(tmp_path / name) as ds:
            assert read_tags(ds) == tags
    assert written["p.tif"].bands == ("roof", "contact") and written["p.tif"].scale == 255
    assert RasterTags.probability("float32", 1).scale == 1.0


def test_a_raster_from_elsewhere_has_no_roofseg_tags(tmp_path):
    with rasterio.open(tmp_path / "x.tif", "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as ds:
        ds.write(np.zeros((1, 4, 4), np.uint8))
    with rasterio.open(tmp_path / "x.tif") as ds:
        assert read_tags(ds) is None
