"""One polygon per building: contact targets from footprints and masks, a contact output, a split when vectorising."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import fiona
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box, shape

from roofseg.contracts.tile import read_records
from roofseg.prediction.vector.instances import contact_band, split_region
from roofseg.raster.components import components
from roofseg.tiler.targets import contact_border, outline_border

from conftest import write_geojson, write_tif
from helpers import RoofAndContact

ORIGIN = (500_000.0, 5_000_000.0)
PIXEL = 0.5
TRANSFORM = Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])


def footprint(row0: int, col0: int, row1: int, col1: int):
    """A box over pixels [row0, row1) × [col0, col1) of the test grid, in map coordinates."""
    x0, y0 = TRANSFORM @ (col0, row1)
    x1, y1 = TRANSFORM @ (col1, row0)
    return box(x0, y0, x1, y1)


# two buildings sharing a wall at column 60 (across the tile border of 64 px tiles at row 64),
# a third 8 px away from the second, a fourth alone
BUILDINGS = [
    footprint(40, 30, 90, 60),
    footprint(40, 60, 90, 100),
    footprint(40, 108, 90, 120),
    footprint(10, 10, 25, 25),
]


def test_contact_borders_mark_where_two_buildings_come_within_the_radius():
    ids = np.zeros((30, 60), np.int32)
    ids[5:25, 5:20] = 1
    ids[5:25, 20:35] = 2  # shares a wall with 1
    ids[5:25, 42:55] = 3  # 7 px from 2: farther than 2 × 3 px
    border = contact_border(ids, 3)
    cols = np.flatnonzero(border[15])
    assert cols.min() == 17 and cols.max() == 22  # 3 px either side of the wall, on both roofs
    assert not border[:, 36:].any()  # the gap of 7 px is no contact
    assert not border[:3].any() and not border[28:].any()
    assert contact_border(np.where(ids == 1, 1, 0), 3).sum() == 0  # one building meets nobody
    near = ids.copy()
    near[5:25, 38:42] = 3  # now 3 px from 2: the ground between them is contact too
    assert contact_border(near, 3)[15, 35:38].all()


def test_tiles_carry_the_contact_targets_of_the_whole_scene_from_footprints_and_from_masks(tmp_path):
    from roofseg.tiler.tile import TileParams

    from helpers import tile_dict as tile

    rng = np.random.default_rng(0)
    image = write_tif(tmp_path / "scene.tif", rng.integers(1, 255, (3, 128, 160), dtype=np.uint8), transform=TRANSFORM)
    vector = str(write_geojson(tmp_path / "scene.geojson", BUILDINGS))
    ids = np.zeros((128, 160), np.int32)  # the same buildings on the scene's grid
    for i, (r0, c0, r1, c1) in enumerate(
        [(40, 30, 90, 60), (40, 60, 90, 100), (40, 108, 90, 120), (10, 10, 25, 25)], 1
    ):
        ids[r0:r1, c0:c1] = i
    want = contact_border(ids, 3)
    params = TileParams(
        size=64, stride=64, val=0.0, test=0.0, max_nodata=1.0, contact_px=3, contact_m=None, contact_kind="between"
    )
    manifest = tile([str(image)], tmp_path / "tiles", params, labels=[vector], split_by="scene", progress=False)
    assert manifest["targets"] == ["roof", "contact"] and manifest["contact_px"] == 3
    assert manifest["contact_kind"] == "between"

    def stitched(folder):
        got = np.zeros((2, 128, 160), np.uint8)
        for path in sorted((folder / "train").glob("*.tfrecord")):
            for rec in read_records(str(path)):
                h, w = rec["valid_height"], rec["valid_width"]
                got[0, rec["row"] : rec["row"] + h, rec["col"] : rec["col"] + w] = rec["mask"][:h, :w]
                got[1, rec["row"] : rec["row"] + h, rec["col"] : rec["col"] + w] = rec["contact"][:h, :w]
        return got

    got = stitched(tmp_path / "tiles")
    np.testing.assert_array_equal(got[0], ids > 0)
    np.testing.assert_array_equal(got[1], want)  # tile edges (row 64, col 64, 128) see past themselves
    assert got[1][:, 57:63].any() and not got[1][:, 104:108].any()

    # a mask raster keeps apart only what a gap separates: 1 and 2 are one region, 3 is 8 px off
    # it, beyond 2 × 3 px; across a gap of 4 px, the ground within 3 px of both sides is contact
    write_tif(tmp_path / "scene_mask.tif", ((ids > 0) * 255).astype(np.uint8), transform=TRANSFORM)
    manifest = tile(
        [str(image)],
        tmp_path / "from_mask",
        params,
        labels=[str(tmp_path / "scene_mask.tif")],
        split_by="scene",
        progress=False,
    )
    assert stitched(tmp_path / "from_mask")[1].sum() == 0
    close = ids.copy()
    close[40:90, 104:108] = 3
    write_tif(tmp_path / "close_mask.tif", ((close > 0) * 255).astype(np.uint8), transform=TRANSFORM)
    tile(
        [str(image)],
        tmp_path / "close",
        params,
        labels=[str(tmp_path / "close_mask.tif")],
        split_by="scene",
        progress=False,
    )
    contact = stitched(tmp_path / "close")[1]
    assert contact[40:90, 101:103].all() and not contact[:, :100].any() and not contact[:, 104:].any()
    np.testing.assert_array_equal(contact, contact_border(components(close > 0), 3))

    # outline (the default): every building's edge band too, whole across tile edges
    manifest = tile(
        [str(image)],
        tmp_path / "outline",
        replace(params, contact_kind="outline"),
        labels=[vector],
        split_by="scene",
        progress=False,
    )
    assert manifest["contact_kind"] == "outline"
    got = stitched(tmp_path / "outline")
    np.testing.assert_array_equal(got[1], outline_border(ids, 3))

    tile(
        [str(image)],
        tmp_path / "roof_only",
        TileParams(size=64, stride=64, val=0.0, test=0.0, max_nodata=1.0, contact_px=0),
        labels=[vector],
        split_by="scene",
        progress=False,
    )
    rec = read_records(str(next((tmp_path / "roof_only" / "train").glob("*.tfrecord"))))[0]
    assert rec["contact"] is None
    assert json.loads((tmp_path / "roof_only" / "manifest.json").read_text())["targets"] == ["roof"]


def test_the_pipeline_gives_contact_as_a_second_mask_channel_and_zeros_for_tiles_without(tmp_path):
    from roofseg.pipeline.dataset import make_dataset
    from roofseg.tiler.tile import TileParams

    from helpers import tile_dict as tile

    image = write_tif(tmp_path / "scene.tif", np.full((3, 128, 128), 90, np.uint8), transform=TRANSFORM)
    vector = str(write_geojson(tmp_path / "scene.geojson", BUILDINGS[:2]))
    for name, px in (("with", 3), ("without", 0)):
        tile(
            [str(image)],
            tmp_path / name,
            TileParams(size=64, stride=64, val=0.5, test=0.0, max_nodata=1.0, contact_px=px),
            labels=[vector],
            split_by="block",
            progress=False,
        )
    masks = np.concatenate(
        [
            m.numpy()
            for _, m in make_dataset(tmp_path / "with" / "manifest.json", "train", 4, training=False, contact=True)
        ]
    )
    assert masks.shape[-1] == 2 and masks[..., 1].sum() > 0 and set(np.unique(masks)) <= {0.0, 1.0}
    assert (masks[..., 1] <= 1).all() and masks[..., 0].sum() > masks[..., 1].sum()
    roof_only = next(iter(make_dataset(tmp_path / "with" / "manifest.json", "train", 4, training=False)))[1]
    assert roof_only.shape[-1] == 1
    old = np.concatenate(
        [
            m.numpy()
            for _, m in make_dataset(tmp_path / "without" / "manifest.json", "train", 4, training=False, contact=True)
        ]
    )
    assert old.shape[-1] == 2 and old[..., 1].sum() == 0 and old[..., 0].sum() > 0


@pytest.mark.parametrize("loss", ["dice", "bce", "bce_dice"])
def test_the_contact_loss_charges_a_model_that_marks_every_pixel_contact(loss):
    from roofseg.training.losses import LOSSES

    truth = np.zeros((2, 64, 64, 2), np.float32)
    truth[:, 8:40, 8:30, 0] = truth[:, 8:40, 34:56, 0] = 1  # two roofs, 4 px apart
    truth[:, 8:40, 29:35, 1] = 1  # the contact between them: 3 % of the pixels, as on a dense block
    roof = np.clip(truth[..., :1], 0.02, 0.98)
    near_miss = np.clip(truth[..., 1:], 0.02, 0.98)
    near_miss[:, 8:40, 29] = 0.02  # a border found all but one column wide
    scores = {
        name: float(LOSSES[loss](truth, np.concatenate([roof, contact], -1)))
        for name, contact in (
            ("all contact", np.full_like(near_miss, 0.98)),
            ("no contact", np.full_like(near_miss, 0.02)),
            ("near miss", near_miss),
        )
    }
    assert scores["near miss"] < scores["no contact"] < scores["all contact"], scores


def test_split_region_floods_each_core_to_the_contact_ridge():
    region = np.zeros((20, 40), bool)
    region[4:16, 2:38] = True
    contact = np.zeros(region.shape, np.float32)
    contact[:, 18:22] = np.array([0.6, 0.9, 0.9, 0.6])  # a ridge at columns 19-20
    labels = split_region(region, contact, 0.5, 4)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert (labels[4:16, 2:19] == labels[10, 2]).all() and (labels[4:16, 21:38] == labels[10, 37]).all()
    assert (labels[~region] == 0).all()
    contact[5, 18:22] = 0.1  # a gap in the ridge joins the cores: one building
    assert labels.max() == 2 and split_region(region, contact, 0.5, 4).max() == 1
    contact[5, 18:22] = 0.9
    contact[4:16, 30:32] = 0.9  # a third core of 12 x 6 px: dropped below 80 px as noise, its pixels flooded
    assert split_region(region, contact, 0.5, 70).max() == 3
    labels = split_region(region, contact, 0.5, 80)
    assert labels.max() == 2 and (labels[4:16, 21:38] == labels[10, 37]).all()


def test_touching_buildings_become_one_polygon_each_along_the_predicted_contact(tmp_path, run_cli):
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.rasters.predict import predict_scene
    from roofseg.prediction.scoring.score import evaluate_scene
    from roofseg.prediction.vector.vectorize import VectorOptions, write_footprints

    data = np.zeros((3, 128, 160), np.uint8)
    data[2] = 60
    for r0, c0, r1, c1 in [(40, 30, 90, 60), (40, 60, 90, 100), (40, 108, 90, 120), (10, 10, 25, 25)]:
        data[0, r0:r1, c0:c1] = 200
    data[1, 40:90, 58:62] = 200  # the model sees the shared wall
    scene = write_tif(tmp_path / "scene.tif", data, transform=TRANSFORM)
    labels = str(write_geojson(tmp_path / "truth.geojson", BUILDINGS))
    out = tmp_path / "pred.tif"
    predict_scene(RoofAndContact(), scene, out, PredictOptions(tile=64, overlap=16, threshold=0.5), progress=False)
    with rasterio.open(out) as ds:
        assert ds.count == 2 and ds.descriptions == ("roof probability", "contact probability")
        assert ds.read(2)[60, 58:62].min() == 255 and ds.read(2)[60, 40] == 0
    assert contact_band(str(out)).band == 2

    split = write_footprints(out, tmp_path / "pred_binary.tif", tmp_path / "split.gpkg", VectorOptions(".gpkg", 1.0))
    whole = write_footprints(
        out, tmp_path / "pred_binary.tif", tmp_path / "whole.gpkg", VectorOptions(".gpkg", 1.0, separate=False)
    )
    assert (split, whole) == (4, 3)
    with fiona.open(tmp_path / "split.gpkg") as src:
        got = sorted((shape(f.geometry) for f in src), key=lambda p: p.bounds)
    for poly, truth in zip(got, sorted(BUILDINGS, key=lambda p: p.bounds)):
        assert poly.is_valid and poly.intersection(truth).area / poly.union(truth).area > 0.9

    separated = evaluate_scene(out, labels, min_area=1.0)["objects"]
    merged = evaluate_scene(out, labels, min_area=1.0, separate=False)["objects"]
    assert separated["separated"] and (separated["matched"], separated["f1"]) == (4, 1.0)
    # the two touching ones are one blob, which overlaps the larger of them at IoU 0.57
    assert not merged["separated"] and (merged["predicted"], merged["matched"]) == (3, 3) and merged["f1"] < 0.9

    result = run_cli("evaluate-scene", out, labels, "--min-area", 1, "--no-separate")
    assert result.code == 0 and "3 matched of 3 predicted, 4 true" in result.out, result.err


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_a_contact_output_predicted_at_another_gsd_lands_on_the_scenes_grid(tmp_path, dtype):
    from roofseg.prediction.options import PredictOptions
    from roofseg.prediction.rasters.predict import predict_scene

    data = np.zeros((3, 96, 96), np.uint8)
    data[0, 20:70, 10:80] = 200
    data[1, 20:70, 44:48] = 200
    scene = write_tif(tmp_path / "scene.tif", data, transform=TRANSFORM)
    out = tmp_path / "pred.tif"
    predict_scene(
        RoofAndContact(), scene, out, PredictOptions(tile=64, overlap=16, dtype=dtype, gsd=1.0), progress=False
    )
    with rasterio.open(out) as ds:
        assert ds.count == 2 and ds.shape == (96, 96) and ds.transform == TRANSFORM
        scale = 255 if dtype == "uint8" else 1
        assert ds.read(2)[45, 44:48].mean() > 0.4 * scale and ds.read(2)[45, 20] == 0


def test_split_region_keeps_pixels_joined_only_at_a_corner():
    region = np.zeros((24, 40), bool)
    region[4:16, 2:38] = True
    region[16:18, 38] = region[17, 39] = True  # 3 px touching the region at one corner only
    contact = np.zeros(region.shape, np.float32)
    contact[:, 18:22] = 0.9
    labels = split_region(region, contact, 0.5, 4)
    assert labels.max() == 2
    assert ((labels > 0) == region).all()  # no pixel lost


def test_a_building_that_leaves_the_window_and_comes_back_gets_no_contact_inside(tmp_path):
    from roofseg.raster.components import scene_components
    from roofseg.raster.labels import MaskLabels
    from roofseg.raster.scene import Scene

    u = np.zeros((128, 160), np.uint8)
    u[10:100, 20:40] = u[10:100, 44:64] = 255  # two arms 4 px apart inside the first row of tiles …
    u[90:100, 20:64] = 255  # … joined below it: one U-shaped building
    image = write_tif(tmp_path / "scene.tif", np.full((3, 128, 160), 90, np.uint8), transform=TRANSFORM)
    write_tif(tmp_path / "scene_mask.tif", u, transform=TRANSFORM)
    with Scene(image) as scene:
        labels = MaskLabels(tmp_path / "scene_mask.tif", scene)
        window = labels.instances(0 - 3, 0 - 3, 64 + 6, 64 + 6)
        labels.close()
    assert set(np.unique(window)) == {0, 1}  # one building, though the window cuts its base off
    assert labels._components_path and not os.path.exists(labels._components_path)

    # strips joined across their edges, diagonals included, as one pass over the whole mask would label it
    rng = np.random.default_rng(2)
    noise = (rng.random((97, 53)) < 0.45).astype(np.uint8)
    ids = scene_components(lambda r, c, h, w: noise[r : r + h, c : c + w], 97, 53, str(tmp_path / "ids.npy"), strip=8)
    whole = components(noise)
    pairs = set(zip(ids[noise > 0].tolist(), whole[noise > 0].tolist()))
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})  # the same partition


def test_peaks_part_touching_buildings_whose_borders_no_single_cut_finds():
    """Two pairs of touching buildings: one where the model is sure (contact 0.3 inside, 0.45 on
    the shared wall) and one where it is not (0.5 inside, 0.65 on the wall). No contact cut parts
    both pairs: one that parts the first leaves the second without cores. Peaks of
    roof × (1 − contact) 0.1 deep part both, along the walls."""
    from roofseg.prediction.scoring.tune import CONTACT_CUTS

    region = np.zeros((16, 40), bool)
    region[:, 2:38] = True
    roof = np.where(region, 0.9, 0.0).astype(np.float32)
    pairs = []
    for inside, wall in ((0.3, 0.45), (0.5, 0.65)):
        contact = np.full(region.shape, inside, np.float32)
        contact[:, 19:21] = wall
        pairs.append(contact)

    for cut in CONTACT_CUTS:
        assert sum(split_region(region, contact, cut, 4).max() for contact in pairs) < 4
    for contact in pairs:
        labels = split_region(region, contact, 0.5, 4, roof, 0.1)
        left, right = labels[:, 2:19], labels[:, 21:38]
        assert labels.max() == 2 and len(np.unique(left)) == len(np.unique(right)) == 1 and left[0, 0] != right[0, 0]
        assert (labels[~region] == 0).all() and (labels[region] > 0).all()


def test_a_peak_whose_building_would_be_noise_seeds_nothing():
    region = np.zeros((20, 40), bool)
    region[4:16, 2:38] = True
    contact = np.full(region.shape, 0.2, np.float32)
    contact[4:16, 19:21] = 0.8  # one wall: two buildings
    contact[8:13, 28:33] = 0.6  # a ring of contact around a 3 x 3 px speck the model is sure of
    contact[9:12, 29:32] = 0.0
    roof = np.where(region, 0.9, 0.0).astype(np.float32)
    assert split_region(region, contact, 0.5, 4, roof, 0.05).max() == 3  # the speck's basin: 25 px
    labels = split_region(region, contact, 0.5, 30, roof, 0.05)
    assert labels.max() == 2 and (labels[region] > 0).all()
    assert (labels[4:16, 21:38] == labels[4, 37]).all()  # the speck's pixels went to its building
