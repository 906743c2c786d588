"""Resampling to a ground pixel size: tiles at --gsd, and predictions at the model's GSD written
back on the scene's own grid."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from roofseg.contracts.tile import read_records
from roofseg.prediction.options import PredictOptions
from roofseg.prediction.rasters.predict import predict_scene
from roofseg.tiler.tile import TileParams

from helpers import tile_dict as tile


def masks_by_place(out, manifest) -> dict:
    return {
        (int(r["row"]), int(r["col"])): r["mask"]
        for split in manifest["splits"].values()
        for shard in split["shards"]
        for r in read_records(str(out / shard["path"]))
    }


def test_tiles_at_another_gsd_take_scene_and_labels_onto_one_grid(sample_scene, tmp_path):
    params = TileParams(size=64, stride=64, split_block=128, val=0.2, test=0.2, max_nodata=1.0, gsd=0.6)
    by_vector = tile(
        [str(sample_scene["image"])], tmp_path / "v", params, labels=[str(sample_scene["labels"])], progress=False
    )
    by_mask = tile(
        [str(sample_scene["image"])], tmp_path / "m", params, labels=[str(sample_scene["mask"])], progress=False
    )
    job = by_vector["jobs"][0]
    assert abs(job["gsd_m"] - 0.6) < 0.002 and abs(job["source_gsd_m"] - 0.3) < 0.002
    assert (job["width"], job["height"]) == (256, 256) and by_vector["tiles"] == 16  # 512 px at 0.3 m = 256 px at 0.6 m
    vector_masks, raster_masks = masks_by_place(tmp_path / "v", by_vector), masks_by_place(tmp_path / "m", by_mask)
    assert vector_masks.keys() == raster_masks.keys()
    agree = np.mean([np.mean(vector_masks[k] == raster_masks[k]) for k in vector_masks])
    assert agree > 0.97  # footprints burnt on the coarse grid and the mask resampled onto it match
    native = tile(
        [str(sample_scene["image"])],
        tmp_path / "n",
        TileParams(size=64, stride=64, split_block=128, val=0.2, test=0.2, max_nodata=1.0),
        progress=False,
    )
    assert abs(by_vector["roof_fraction"] - native["roof_fraction"]) < 0.02  # the same roofs, at another size


def test_a_prediction_at_the_models_gsd_lands_on_the_scenes_grid(sample_scene, tmp_path):
    def brightness(batch):
        return batch.mean(axis=-1, keepdims=True)

    opts = PredictOptions(tile=128, overlap=32, threshold=0.5)
    predict_scene(brightness, sample_scene["image"], tmp_path / "native.tif", opts, progress=False)
    for gsd in (0.15, 0.6):
        result = predict_scene(
            brightness,
            sample_scene["image"],
            tmp_path / f"{gsd}.tif",
            PredictOptions(tile=128, overlap=32, threshold=0.5, gsd=gsd),
            progress=False,
        )
        assert (result["width"], result["height"]) == (512, 512)
        with rasterio.open(tmp_path / "native.tif") as a, rasterio.open(tmp_path / f"{gsd}.tif") as b:
            assert (b.shape, b.transform, b.crs) == (a.shape, a.transform, a.crs)
            np.testing.assert_array_equal(b.read_masks(1), a.read_masks(1))  # the scene's own nodata
            diff = np.abs(a.read(1).astype(int) - b.read(1).astype(int))[a.read_masks(1) > 0]
            assert diff.mean() < (5 if gsd < 0.3 else 10)  # out of 255: resampling there and back blurs a little
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0.15.tif",
        "0.15_binary.tif",
        "0.6.tif",
        "0.6_binary.tif",
        "native.tif",
        "native_binary.tif",
    ]  # no scratch left


def test_a_mask_band_stays_nodata_at_a_gsd(tmp_path):
    from affine import Affine

    from roofseg.raster.scene import Scene

    path = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=256,
            height=256,
            count=3,
            dtype="uint8",
            crs="EPSG:32633",
            transform=Affine(0.15, 0, 500_000, 0, -0.15, 5_000_000),
        ) as ds:
            ds.write(np.full((3, 256, 256), 120, np.uint8))
            mask = np.zeros((256, 256), np.uint8)
            mask[:, :128] = 255
            ds.write_mask(mask)
    for gsd in (None, 0.3):
        with Scene(path, gsd=gsd) as scene:
            image, valid = scene.read(0, 0, scene.height, scene.width)
        assert abs(valid.mean() - 0.5) < 0.02, (gsd, valid.mean())
        assert (image[~valid] == 0).all()


def test_a_mask_with_nodata_zero_keeps_its_roof_share_when_coarsened(tmp_path):
    from affine import Affine

    from roofseg.raster.labels import MaskLabels
    from roofseg.raster.scene import Scene

    from conftest import write_tif

    t = Affine(0.15, 0, 500_000, 0, -0.15, 5_000_000)
    write_tif(tmp_path / "scene.tif", np.full((3, 256, 256), 90, np.uint8), transform=t)
    roof = np.zeros((256, 256), np.uint8)
    for r in range(9, 256, 24):
        for c in range(9, 256, 24):
            roof[r : r + 13, c : c + 13] = 255  # 13 px squares every 24 px: 0.29 of the mask
    write_tif(tmp_path / "mask.tif", roof, transform=t, nodata=0)
    with Scene(tmp_path / "scene.tif", gsd=0.6) as scene:
        labels = MaskLabels(tmp_path / "mask.tif", scene)
        coarse = labels.read(0, 0, scene.height, scene.width)
        labels.close()
    assert abs(coarse.mean() - (roof > 0).mean()) < 0.06, coarse.mean()  # 0.43 when zeros were skipped


def test_degrees_at_high_latitude_give_square_ground_pixels(tmp_path):
    from affine import Affine

    from roofseg.raster.ground import ground_pixel_sides
    from roofseg.raster.scene import Scene

    from conftest import write_tif

    # 0.3 m pixels at 60° N: 5.4e-6° of longitude across, 2.7e-6° of latitude down
    t = Affine(5.4e-6, 0, 10.0, 0, -2.7e-6, 60.0)
    write_tif(tmp_path / "north.tif", np.full((3, 200, 200), 80, np.uint8), transform=t, crs="EPSG:4326")
    with Scene(tmp_path / "north.tif", gsd=0.6) as scene:
        across, down = ground_pixel_sides(scene.crs, scene.transform, scene.height, scene.width)
    assert abs(across - 0.6) < 0.02 and abs(down - 0.6) < 0.02, (across, down)


def test_the_model_card_gives_the_gsd_of_resized_tiles(tmp_path):
    import json

    from roofseg.training.train import TrainConfig, model_card

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"gsd_m": 0.3, "tile_size": 512, "jobs": [{"bands": [1, 2, 3]}]}))
    assert model_card(TrainConfig(str(manifest), str(tmp_path / "run"), tile_size=256)).gsd_m == 0.6
    assert model_card(TrainConfig(str(manifest), str(tmp_path / "run"))).gsd_m == 0.3


def test_tiles_at_several_gsds_keep_each_gsd_and_one_place_in_one_split(sample_scene, tmp_path):
    params = TileParams(size=64, stride=64, split_block=128, val=0.25, test=0.25, max_nodata=1.0, gsds=(0.3, 0.6))
    manifest = tile(
        [str(sample_scene["image"])], tmp_path / "t", params, labels=[str(sample_scene["labels"])], progress=False
    )
    jobs = {j["id"]: j for j in manifest["jobs"]}
    fine, coarse = sorted(jobs.values(), key=lambda j: j["gsd_m"])
    assert sorted(jobs) == [f"{fine['id'].split('@')[0]}@{g}m" for g in ("0.3", "0.6")]
    assert abs(fine["gsd_m"] - 0.3) < 0.002 and abs(coarse["gsd_m"] - 0.6) < 0.002
    for split in ("train", "val", "test"):  # a 0.6 m tile covers four 0.3 m tiles of the same split
        assert fine["tiles"].get(split, 0) == 4 * coarse["tiles"].get(split, 0)
    from roofseg.contracts.manifest import read_manifest

    m = read_manifest(tmp_path / "t" / "manifest.json")
    assert m.gsd_range == (fine["gsd_m"], coarse["gsd_m"])
    by_place = {}
    for split, info in manifest["splits"].items():
        for shard in info["shards"]:
            for r in read_records(str(tmp_path / "t" / shard["path"])):
                t = r["transform"]
                by_place.setdefault((round(t[2]), round(t[5])), set()).add(split)
    assert all(len(s) == 1 for s in by_place.values())  # tiles starting at one place share a split


def test_predict_reads_a_scene_inside_the_models_range_at_its_own_gsd_and_outside_at_the_nearest_end(tmp_path, run_cli):
    from roofseg.contracts.card import ModelCard, write_card
    from roofseg.sample import write_sample

    from helpers import tiny_keras

    model = tmp_path / "m.keras"
    tiny_keras().save(model)
    write_card(model, ModelCard(gsd_m=0.3, tile_size=64, gsd_range_m=(0.2, 0.4)))
    inside = write_sample(tmp_path / "in", size=128, pixel=0.3, seed=5, progress=False)["image"]
    result = run_cli("predict", model, inside, tmp_path / "a.tif", "--overlap", 16, "--quiet")
    assert result.code == 0 and "predicted at" not in result.out, result.out + result.err
    coarse = write_sample(tmp_path / "coarse", size=128, pixel=0.6, seed=5, progress=False)["image"]
    result = run_cli("predict", model, coarse, tmp_path / "b.tif", "--overlap", 16, "--quiet")
    assert result.code == 0 and "predicted at 0.4 m" in result.out, result.out + result.err
    result = run_cli("predict", model, coarse, tmp_path / "c.tif", "--overlap", 16, "--native", "--quiet")
    assert "trained at 0.2-0.4 m" in result.err and "1.5x" in result.err


def test_a_base_takes_tiles_within_a_quarter_of_its_range_and_refuses_others(tmp_path):
    import pytest

    from roofseg.contracts.card import ModelCard
    from roofseg.contracts.manifest import Job, Manifest
    from roofseg.errors import RoofsegError
    from roofseg.training.finetune import Base, check_base

    base = Base("base.keras", "0" * 64, ModelCard(gsd_m=0.15, gsd_range_m=(0.075, 0.3)))

    def tiles(*gsds):
        jobs = tuple(Job(str(g), gsd_m=g, tiles={"train": 1}) for g in gsds)
        return Manifest(splits={}, gsd_m=gsds[0], jobs=jobs)

    check_base(base, tiles(0.1, 0.3), "m.json", 0.1)
    check_base(base, tiles(0.36), "m.json", 0.36)  # 20% beyond the coarse end
    with pytest.raises(RoofsegError, match=r"trained at 0.075-0.3 m, the tiles are 0.5 m.*--gsd 0.3"):
        check_base(base, tiles(0.15, 0.5), "m.json", 0.15)
    with pytest.raises(RoofsegError, match="--gsd 0.075"):
        check_base(base, tiles(0.05), "m.json", 0.05)


@pytest.mark.parametrize("gsds", [(0.15, 0.25), (0.15, 0.4)])
def test_no_ground_lies_in_two_splits_across_gsds(tmp_path, gsds):
    """Tiled at GSDs whose block grids round differently (a 512 px scene in blocks of 64 px is 8 × 8
    at 0.15 m; at 0.25 m, 307 px in blocks of 38 px, 9 × 9), every piece of ground is in one split
    at every GSD."""
    from roofseg.sample import write_sample

    scene = write_sample(tmp_path / "s", size=512, pixel=0.15, seed=2, progress=False)
    params = TileParams(size=16, stride=16, split_block=64, val=0.25, test=0.25, max_nodata=1.0, gsds=gsds)
    manifest = tile([str(scene["image"])], tmp_path / "t", params, labels=[str(scene["labels"])], progress=False)
    with rasterio.open(scene["image"]) as ds:
        inverse, shape = ~ds.transform, ds.shape
    cover = {s: np.zeros(shape, bool) for s in ("train", "val", "test")}
    for split, info in manifest["splits"].items():
        for shard in info["shards"]:
            for r in read_records(str(tmp_path / "t" / shard["path"])):
                a, b, c, d, e, f = r["transform"]
                (c0, r0) = inverse * (c, f)
                (c1, r1) = inverse * (c + a * r["valid_width"], f + e * r["valid_height"])
                # inward by a pixel: tiles of two splits may touch along a block's edge
                cover[split][int(np.ceil(r0)) + 1 : int(r1) - 1, int(np.ceil(c0)) + 1 : int(c1) - 1] = True
    assert cover["val"].any() and cover["test"].any()
    assert not (cover["train"] & cover["val"]).any() and not (cover["train"] & cover["test"]).any()
    assert not (cover["val"] & cover["test"]).any()
