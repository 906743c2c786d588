"""Resampling to a ground pixel size: tiles at --gsd, and predictions at the model's GSD written
back on the scene's own grid."""

from __future__ import annotations

import numpy as np
import rasterio

from roofseg.prediction.predict import PredictOptions, predict_scene
from roofseg.records import read_records
from roofseg.tiler.run import tile
from roofseg.tiler.tile import TileParams


def masks_by_place(out, manifest) -> dict:
    return {(int(r["row"]), int(r["col"])): r["mask"] for split in manifest["splits"].values()
            for shard in split["shards"] for r in read_records(str(out / shard["path"]))}


def test_tiles_at_another_gsd_take_scene_and_labels_onto_one_grid(sample_scene, tmp_path):
    params = TileParams(size=64, stride=64, split_block=128, val=0.2, test=0.2, max_nodata=1.0, gsd=0.6)
    by_vector = tile([str(sample_scene["image"])], tmp_path / "v", params, labels=[str(sample_scene["labels"])], progress=False)
    by_mask = tile([str(sample_scene["image"])], tmp_path / "m", params, labels=[str(sample_scene["mask"])], progress=False)
    job = by_vector["jobs"][0]
    assert abs(job["gsd_m"] - 0.6) < 0.002 and abs(job["source_gsd_m"] - 0.3) < 0.002
    assert (job["width"], job["height"]) == (256, 256) and by_vector["tiles"] == 16  # 512 px at 0.3 m = 256 px at 0.6 m
    vector_masks, raster_masks = masks_by_place(tmp_path / "v", by_vector), masks_by_place(tmp_path / "m", by_mask)
    assert vector_masks.keys() == raster_masks.keys()
    agree = np.mean([np.mean(vector_masks[k] == raster_masks[k]) for k in vector_masks])
    assert agree > 0.97  # footprints burnt on the coarse grid and the mask resampled onto it match
    native = tile([str(sample_scene["image"])], tmp_path / "n", TileParams(size=64, stride=64, split_block=128, val=0.2,
                                                                           test=0.2, max_nodata=1.0), progress=False)
    assert abs(by_vector["roof_fraction"] - native["roof_fraction"]) < 0.02  # the same roofs, at another size


def test_a_prediction_at_the_models_gsd_lands_on_the_scenes_grid(sample_scene, tmp_path):
    def brightness(batch):
        return batch.mean(axis=-1, keepdims=True)

    opts = PredictOptions(tile=128, overlap=32, threshold=0.5)
    predict_scene(brightness, sample_scene["image"], tmp_path / "native.tif", opts, progress=False)
    for gsd in (0.15, 0.6):
        result = predict_scene(brightness, sample_scene["image"], tmp_path / f"{gsd}.tif",
                               PredictOptions(tile=128, overlap=32, threshold=0.5, gsd=gsd), progress=False)
        assert (result["width"], result["height"]) == (512, 512)
        with rasterio.open(tmp_path / "native.tif") as a, rasterio.open(tmp_path / f"{gsd}.tif") as b:
            assert (b.shape, b.transform, b.crs) == (a.shape, a.transform, a.crs)
            np.testing.assert_array_equal(b.read_masks(1), a.read_masks(1))  # the scene's own nodata
            diff = np.abs(a.read(1).astype(int) - b.read(1).astype(int))[a.read_masks(1) > 0]
            assert diff.mean() < (5 if gsd < 0.3 else 10)  # out of 255: resampling there and back blurs a little
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.15.tif", "0.15_binary.tif", "0.6.tif", "0.6_binary.tif",
                                                          "native.tif", "native_binary.tif"]  # no scratch left
