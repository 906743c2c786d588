"""The tf.data pipeline and the on-device augmentation."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from roofseg._tf import tf
from roofseg.contracts.augment import AugmentConfig
from roofseg.pipeline.augment import augment
from roofseg.pipeline.dataset import make_dataset
from roofseg.tiler.tile import TileParams

from helpers import tile_dict as tile

STILL = AugmentConfig.off()


def blobs(batch: int = 4, size: int = 64, seed: int = 0) -> tuple[tf.Tensor, tf.Tensor]:
    """Smooth random images whose mask is exactly their first channel thresholded at 0.5."""
    rng = np.random.default_rng(seed)
    low = rng.random((batch, 8, 8, 3)).astype(np.float32)
    images = tf.image.resize(low, [size, size], method="bicubic")
    images = tf.clip_by_value(images, 0.0, 1.0)
    masks = tf.cast(images[..., :1] > 0.5, tf.float32)
    return images, masks


def test_identity_when_nothing_is_drawn():
    images, masks = blobs()
    out_i, out_m = augment(images, masks, tf.constant([1, 2]), STILL)
    np.testing.assert_allclose(out_i.numpy(), images.numpy(), atol=1e-6)
    np.testing.assert_array_equal(out_m.numpy(), masks.numpy())


def test_flips_alone_mirror_image_and_mask_together():
    images, masks = blobs(batch=16)
    cfg = replace(STILL, flip=True)
    out_i, out_m = augment(images, masks, tf.constant([3, 4]), cfg)
    flipped = 0
    for k in range(16):
        mirrored = np.allclose(out_i[k], images[k, :, ::-1], atol=1e-6)
        assert mirrored or np.allclose(out_i[k], images[k], atol=1e-6)
        np.testing.assert_array_equal(out_m[k], masks[k, :, ::-1] if mirrored else masks[k])
        flipped += mirrored
    assert 0 < flipped < 16


def test_mask_stays_the_threshold_of_the_image_under_rotation_and_flip():
    images, masks = blobs(batch=8, size=96)
    cfg = replace(STILL, flip=True, max_angle=30.0)
    out_i, out_m = augment(images, masks, tf.constant([5, 6]), cfg)
    assert not np.allclose(out_i.numpy(), images.numpy())  # something did move
    first = out_i.numpy()[..., 0]
    clear = np.abs(first - 0.5) > 0.08  # away from the contour, where bilinear and nearest may differ
    inner = np.zeros_like(clear)
    inner[:, 2:-2, 2:-2] = True
    sel = clear & inner
    assert sel.mean() > 0.5
    np.testing.assert_array_equal((first > 0.5)[sel], out_m.numpy()[..., 0][sel] > 0.5)
    assert set(np.unique(out_m.numpy())) <= {0.0, 1.0}


def test_brightness_and_contrast_leave_the_mask_alone():
    images, masks = blobs(batch=8)
    cfg = replace(STILL, brightness=0.3, contrast=0.5)
    out_i, out_m = augment(images, masks, tf.constant([7, 8]), cfg)
    np.testing.assert_array_equal(out_m.numpy(), masks.numpy())
    assert not np.allclose(out_i.numpy(), images.numpy())
    assert out_i.numpy().min() >= 0.0 and out_i.numpy().max() <= 1.0


def test_same_seed_same_batch():
    images, masks = blobs(batch=6)
    a = augment(images, masks, tf.constant([9, 9]))
    b = augment(images, masks, tf.constant([9, 9]))
    c = augment(images, masks, tf.constant([9, 10]))
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    assert not np.array_equal(a[0].numpy(), c[0].numpy())


def test_augment_compiles_in_a_tf_function():
    images, masks = blobs(batch=2)
    fn = tf.function(lambda x, y, s: augment(x, y, s), jit_compile=False)
    out_i, out_m = fn(images, masks, tf.constant([1, 1]))
    assert out_i.shape == images.shape and out_m.shape == masks.shape


@pytest.fixture(scope="module")
def shards(sample_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    tile(
        [str(sample_scene["image"])],
        out,
        TileParams(size=64, stride=64, max_nodata=0.5, split_block=128, shard_bytes=60_000),
        progress=False,
    )
    return out / "manifest.json"


def test_dataset_yields_the_right_batches_for_each_split(shards):
    manifest = json.loads(shards.read_text())
    keys = {}
    for split in ("train", "val", "test"):
        n = manifest["splits"][split]["tiles"]
        assert n > 0
        seen = 0
        ds = make_dataset(shards, split, batch_size=4, training=False, with_meta=True)
        for images, masks, meta in ds:
            assert images.dtype == tf.float32 and masks.dtype == tf.float32
            assert images.shape[1:] == (64, 64, 3) and masks.shape[1:] == (64, 64, 1)
            assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
            assert set(np.unique(masks.numpy())) <= {0.0, 1.0}
            for s, r, c in zip(meta["scene_id"].numpy(), meta["row"].numpy(), meta["col"].numpy()):
                keys[(s, r, c)] = keys.get((s, r, c), []) + [split]
            seen += images.shape[0]
        assert seen == n
    assert all(len(v) == 1 for v in keys.values())  # no tile in two splits


def test_training_dataset_drops_remainder_shuffles_and_resizes(shards):
    manifest = json.loads(shards.read_text())
    n = manifest["splits"]["train"]["tiles"]
    ds = make_dataset(shards, "train", batch_size=5, size=32, seed=1)
    batches = list(ds)
    assert len(batches) == n // 5 and all(b[0].shape == (5, 32, 32, 3) for b in batches)
    assert all(set(np.unique(b[1].numpy())) <= {0.0, 1.0} for b in batches)
    first = np.concatenate([b[0].numpy() for b in make_dataset(shards, "train", batch_size=5, training=False)])
    shuffled = np.concatenate([b[0].numpy() for b in make_dataset(shards, "train", batch_size=5, seed=1)])
    assert not np.array_equal(first[: len(shuffled)], shuffled)


def test_host_augmentation_runs_in_the_graph(shards):
    ds = make_dataset(shards, "train", batch_size=4, seed=3, augment_on="host")
    images, masks = next(iter(ds))
    assert images.shape == (4, 64, 64, 3) and set(np.unique(masks.numpy())) <= {0.0, 1.0}


def test_glob_source(shards):
    ds = make_dataset(str(shards.parent / "val" / "*.tfrecord"), "val", batch_size=2, size=64)
    assert sum(b[0].shape[0] for b in ds) == json.loads(shards.read_text())["splits"]["val"]["tiles"]


def test_iterates_under_mirrored_strategy_on_two_logical_cpus(shards):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    ds = strategy.experimental_distribute_dataset(make_dataset(shards, "train", batch_size=4, seed=0))
    n = 0
    for images, _masks in ds:
        parts = strategy.experimental_local_results(images)
        assert len(parts) == 2 and all(p.shape[0] == 2 for p in parts)
        n += 1
    assert n > 0


def test_augment_preview_draws_a_png(shards, tmp_path, run_cli):
    out = tmp_path / "preview.png"
    res = run_cli("augment-preview", shards, out, "--count", "3", "--seed", "2")
    assert res.code == 0, res.err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


@pytest.mark.parametrize("share", [0.2, 0.9])
def test_balanced_sampling_draws_roofed_tiles_at_the_share_asked(tmp_path_factory, sample_scene, share):
    from roofseg.tiler.tile import TileParams
    from roofseg.training.train import TrainConfig, config_record

    from helpers import tile_dict as run_tile

    out = tmp_path_factory.mktemp("balanced")
    run_tile([str(sample_scene["image"])], out, TileParams(size=64, stride=64, split_block=128), progress=False)
    manifest = str(out / "manifest.json")
    natural = [bool(m.numpy().any()) for _, masks in make_dataset(manifest, "train", 8, training=False) for m in masks]
    assert 0.3 < np.mean(natural) < 0.8  # the sample's own mix, far from both shares asked
    ds = make_dataset(manifest, "train", 8, training=True, seed=1, roof_share=share)
    drawn = [bool(m.numpy().any()) for _, masks in ds.take(60) for m in masks]
    assert len(drawn) == 480  # endless: more tiles than the split holds
    assert abs(np.mean(drawn) - share) < 0.07
    cfg = TrainConfig(manifest=manifest, out_dir=str(tmp_path_factory.mktemp("run")), roof_share=share)
    assert config_record(cfg, 1, 8, 0.9)["roof_share"] == share


def test_places_get_equal_shares_and_their_gsds_the_square_root_of_their_tiles():
    from roofseg.pipeline.dataset import place_weights

    w = place_weights({"a@0.15m": 900, "a@0.30m": 100, "b@0.15m": 7})
    assert w["b@0.15m"] == pytest.approx(0.5)  # 7 tiles, a place of its own: half the draws
    assert w["a@0.15m"] == pytest.approx(0.5 * 30 / 40) and w["a@0.30m"] == pytest.approx(0.5 * 10 / 40)


@pytest.mark.slow
def test_a_draw_by_place_follows_the_shares(tmp_path):
    """Two places, one with 30 tiles and one with 2: drawn by place, each is about half the stream."""
    import json

    from roofseg.contracts.tile import TileRecord
    from roofseg.pipeline.dataset import make_dataset
    from roofseg.tiler.shards import ShardWriter

    shards = []
    for name, count, value in (("big_block0", 30, 0), ("small_block0", 2, 1)):
        writer = ShardWriter(tmp_path / "train" / name, 10**9)
        (tmp_path / "train").mkdir(exist_ok=True)
        for i in range(count):
            image = np.full((8, 8, 3), value * 200, np.uint8)
            writer.write(
                TileRecord(
                    image, np.zeros((8, 8), np.uint8), name, i, 0, (1, 0, 0, 0, -1, 0), "", 0, 8, 8, 0.0
                ).to_example()
            )
        ((path, n),) = writer.commit()
        shards.append({"path": str(path.relative_to(tmp_path)), "tiles": n})
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({
        "format": "roofseg-tiles/1", "tile_size": 8,
        "splits": {"train": {"tiles": 32, "shards": shards}, "val": {"tiles": 0, "shards": []}},
        "jobs": [{"id": "big_block0", "gsd_m": 0.3}, {"id": "small_block0", "gsd_m": 0.3}],
    }))  # fmt: skip
    ds = make_dataset(manifest, "train", 50, training=True, seed=1, balance="place")
    small = [float(np.mean(images.numpy()[:, 0, 0, 0] > 0.5)) for images, _ in ds.take(8)]
    assert 0.35 < np.mean(small) < 0.65  # drawn as tiles come: 2 of 32, about 0.06


@pytest.mark.parametrize("tiles, batch", [(1, 4), (3, 4), (5, 4), (9, 4), (17, 4), (8, 4), (2, 8)])
def test_no_evaluation_batch_leaves_a_replica_without_a_tile(tiles, batch):
    """Each tile is read as often as every other, and no batch is smaller than the two replicas."""
    from roofseg.pipeline.dataset import replica_batches

    batches = [b.numpy().tolist() for b in replica_batches(tf.data.Dataset.range(tiles), tiles, batch, 2)]
    assert all(len(b) >= 2 for b in batches)
    seen = np.bincount([t for b in batches for t in b], minlength=tiles)
    assert seen.min() == seen.max() >= 1 and len(seen) == tiles
    if tiles >= 2:  # read once where the split can feed every replica
        assert seen.max() == 1
