"""A tf.data graph from shards to batches: list → shuffle files → interleave → parse → batch."""

from __future__ import annotations

import os
from dataclasses import dataclass

from roofseg._tf import tf
from roofseg.contracts.augment import AugmentConfig
from roofseg.contracts.manifest import read_manifest
from roofseg.contracts.targets import GRADED_KINDS
from roofseg.contracts.tile import FEATURES
from roofseg.errors import RoofsegError
from roofseg.pipeline.augment import augment
from roofseg.pipeline.service import distribute

AUTOTUNE = tf.data.AUTOTUNE
META_KEYS = ("scene_id", "row", "col", "transform", "crs", "valid_height", "valid_width")


@dataclass(frozen=True)
class ShardSet:
    """The shards of one split, their compression and tile size (None when read from a glob)."""

    files: list[str]
    compression: str | None
    tile_size: int | None
    tiles: int | None
    counts: list[int] | None = None  # records in each file, as the manifest promises
    contact: bool = False  # the tiles carry contact targets (manifest "targets")
    known: bool = False  # the tiles carry known masks (manifest "known")
    graded: bool = False  # their contact targets are graded, 0–255 (manifest "contact_kind")


def shards_of(source: str | os.PathLike, split: str = "train") -> ShardSet:
    """The shards of ``split`` named by a ``manifest.json``, or every file matching a glob.

    Paths go through ``tf.io.gfile``, so any file system TensorFlow can open works (local,
    gs://, s3:// with the plug-in). A glob's compression is read off the ``.gz`` suffix.
    """
    source = os.fspath(source)
    if source.endswith(".json"):
        manifest = read_manifest(source)
        info = manifest.split(split, source)
        base = os.path.dirname(source)
        files = [p.path if "://" in p.path else os.path.join(base, p.path) for p in info.shards]
        if not files:
            raise RoofsegError(
                source,
                f"split {split!r} has no tiles; retile with a smaller --split-block (or more "
                "scenes) so that it gets some",
            )
        return ShardSet(
            files,
            manifest.compression,
            manifest.tile_size,
            info.tiles,
            [p.tiles for p in info.shards],
            manifest.has_contact,
            manifest.known,
            manifest.contact_kind in GRADED_KINDS,
        )
    files = sorted(tf.io.gfile.glob(source))
    if not files:
        raise RoofsegError(source, "matches no shard")
    return ShardSet(files, "GZIP" if files[0].endswith(".gz") else None, None, None)


def _optional_channel(stored: tf.Tensor, shape: tf.Tensor, absent: int) -> tf.Tensor:
    """A uint8 (h, w, 1) target a tile may carry (its bytes, empty where it has none), else ``absent`` everywhere."""
    return tf.cond(
        tf.strings.length(stored) > 0,
        lambda: tf.reshape(tf.io.decode_raw(stored, tf.uint8), tf.concat([shape, [1]], 0)),
        lambda: tf.fill(tf.concat([shape, [1]], 0), tf.constant(absent, tf.uint8)),
    )


def decode(
    serialized: tf.Tensor,
    size: int | None,
    resize: bool,
    contact: bool = False,
    known: bool = False,
    graded: bool = False,
) -> dict:
    """One serialized tile → image (size, size, 3) float in [0, 1], mask (size, size, 1) in {0, 1}, and metadata.

    ``contact``: the mask has a second channel, the tile's contact target (zeros for a tile
    stored without one); ``graded``: that target is stored 0–255 and read as a fraction in
    [0, 1] (else any stored value above 0 is 1). ``known``: the mask has a last channel more, 1
    where the label is known (ones for a tile stored without a known mask); the losses and
    metrics leave the rest out.
    """
    ex = tf.io.parse_single_example(serialized, FEATURES)
    shape = tf.stack([ex["height"], ex["width"]])
    image = tf.reshape(tf.io.decode_raw(ex["image"], tf.uint8), tf.concat([shape, [3]], 0))
    mask = tf.reshape(tf.io.decode_raw(ex["mask"], tf.uint8), tf.concat([shape, [1]], 0))
    if contact:
        mask = tf.concat([mask, _optional_channel(ex["contact"], shape, 0)], -1)
    if known:
        mask = tf.concat([mask, _optional_channel(ex["known"], shape, 1)], -1)
    channels = (2 if contact else 1) + int(known)
    image = tf.image.convert_image_dtype(image, tf.float32)  # uint8 → [0, 1]
    binary = tf.cast(mask > 0, tf.float32)
    if contact and graded:  # the border channel keeps its grades
        fraction = tf.cast(mask, tf.float32) / 255.0
        mask = tf.concat([binary[..., :1], fraction[..., 1:2], binary[..., 2:]], -1)
    else:
        mask = binary
    if resize:
        image = tf.image.resize(image, [size, size], method="bilinear")
        mask = tf.image.resize(mask, [size, size], method="nearest")
    if size:
        image = tf.ensure_shape(image, [size, size, 3])
        mask = tf.ensure_shape(mask, [size, size, channels])
    return {"image": image, "mask": mask, **{k: ex[k] for k in META_KEYS}}


def record_stream(
    shards: ShardSet, training: bool, seed: int | None, deterministic: bool, whole: bool = True
) -> tf.data.Dataset:
    """The serialized records of ``shards``; each file must hold the records the manifest counts.

    A shard cut short or longer than promised fails the read (tf.data's assert_cardinality)
    instead of silently training or scoring on fewer tiles; :func:`roofseg.pipeline.check.check_shards`
    then names the file. ``whole=False``: this stream gets only some of the files (a tf.data
    service worker), so only each file's count is checked.
    """
    if shards.counts is None:
        files = tf.data.Dataset.from_tensor_slices(shards.files)

        def open_file(f):
            return tf.data.TFRecordDataset(f, compression_type=shards.compression or "")
    else:
        files = tf.data.Dataset.from_tensor_slices((shards.files, tf.constant(shards.counts, tf.int64)))

        def open_file(f, n):
            records = tf.data.TFRecordDataset(f, compression_type=shards.compression or "")
            return records.apply(tf.data.experimental.assert_cardinality(n))

    if training:
        files = files.shuffle(len(shards.files), seed=seed, reshuffle_each_iteration=True)
    ds = files.interleave(
        lambda *a: open_file(*a),
        cycle_length=min(len(shards.files), 8),
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )
    if shards.tiles is not None and whole:
        ds = ds.apply(tf.data.experimental.assert_cardinality(shards.tiles))
    return ds


def balanced(ds: tf.data.Dataset, roof_share: float, seed: int | None) -> tf.data.Dataset:
    """Decoded tiles drawn so that a ``roof_share`` of them hold roof, endlessly.

    When one kind runs out (a split with no empty tile), the other alone is drawn.
    """
    if not 0.0 <= roof_share <= 1.0:
        raise ValueError(f"roof_share must be in 0..1, got {roof_share}")

    def has_roof(d):
        return tf.reduce_any(d["mask"][..., 0] > 0)

    roofed = ds.filter(has_roof).repeat()
    empty = ds.filter(lambda d: tf.logical_not(has_roof(d))).repeat()
    return tf.data.Dataset.sample_from_datasets(
        [roofed, empty], weights=[roof_share, 1.0 - roof_share], seed=seed, stop_on_empty_dataset=False
    )


def place_weights(groups: dict[str, int]) -> dict[str, float]:
    """The share of the draws of each group (``PLACE@GSD`` → its tiles): every place an equal share,
    split between its GSDs by the square root of their tiles, so a GSD with a handful of tiles is
    seen, but not repeated as often as one with hundreds."""
    places: dict[str, dict[str, int]] = {}
    for group, tiles in groups.items():
        places.setdefault(group.split("@", 1)[0], {})[group] = tiles
    weights = {}
    for members in places.values():
        roots = {g: max(t, 1) ** 0.5 for g, t in members.items()}
        for g, r in roots.items():
            weights[g] = r / sum(roots.values()) / len(places)
    return weights


def by_place(source: str | os.PathLike, shards: ShardSet, seed: int | None, shuffle_buffer: int) -> tf.data.Dataset:
    """Serialized training records drawn by place (:func:`place_weights` over the manifest's
    :meth:`Manifest.groups`), endlessly: a place of many tiles does not drown the small ones.
    Each group is shuffled on its own (a buffer of its share of ``shuffle_buffer``)."""
    manifest = read_manifest(source)
    base = os.path.dirname(os.fspath(source))
    groups = manifest.groups("train")
    weights = place_weights({g: sum(s.tiles for s in shards) for g, shards in groups.items()})
    streams = []
    for group_shards in groups.values():
        files = [p.path if "://" in p.path else os.path.join(base, p.path) for p in group_shards]
        part = ShardSet(files, shards.compression, shards.tile_size, None, [p.tiles for p in group_shards])
        stream = record_stream(part, True, seed, deterministic=False, whole=False)
        buffer = max(8, shuffle_buffer // max(1, len(groups)))
        streams.append(stream.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat())
    if len(streams) == 1:
        return streams[0]
    return tf.data.Dataset.sample_from_datasets(streams, weights=[weights[g] for g in groups], seed=seed)


def make_dataset(
    source: str | os.PathLike,
    split: str,
    batch_size: int,
    size: int | None = None,
    training: bool | None = None,
    shuffle_buffer: int = 256,
    seed: int | None = None,
    repeat: bool = False,
    augment_on: str = "device",
    augment_config: AugmentConfig = AugmentConfig(),
    with_meta: bool = False,
    deterministic: bool | None = None,
    data_service: str | None = None,
    roof_share: float | None = None,
    contact: bool = False,
    balance: str = "none",
    known: bool | None = None,
    replicas: int = 1,
) -> tf.data.Dataset:
    """Batches of (image, mask) — or (image, mask, meta) with ``with_meta`` — for one split.

    ``training`` (default: split == "train") shuffles shard order every epoch and tiles in a
    buffer, drops the last partial batch and reads non-deterministically for speed; evaluation
    reads in order. ``deterministic=True`` keeps a training order fixed by ``seed``: needed where
    several workers shard the same dataset by element (multi-worker training), which is only
    disjoint when every worker sees the same order. ``size`` resizes tiles of another size (image
    bilinear, mask nearest). ``augment_on="host"`` augments training batches in this graph; the
    default ``"device"`` leaves that to the training step (see roofseg.training.model). Val and
    test are never augmented. ``contact``: masks get a second channel, the contact target.
    ``known`` (default: as the manifest says): masks get a last channel, 1 where the label is
    known (see :func:`decode`). ``replicas`` (evaluation): the model replicas a batch is split
    among; no batch is smaller than that (see :func:`replica_batches`). The
    batch count is known from the manifest (Keras' progress bar shows it from the first epoch).

    ``roof_share`` (training only): tiles with roofs make up this share of the tiles drawn, on
    average, the rest drawn from tiles without any (tf.data's ``sample_from_datasets`` over the two
    kinds, each repeated): rare roofs are seen more often, or a flood of roofed tiles is thinned.
    The stream is then endless; an epoch is the steps the caller asks for.

    ``balance="place"`` (training only, from a manifest): every place and GSD of the manifest gets
    an equal share of the tiles drawn (see :func:`by_place`); endless too.

    ``data_service`` (grpc://HOST:PORT): reading, parsing and batching run on the workers of that
    tf.data service, which split the shards among them, so an epoch still sees every tile once;
    each worker's last partial batch is kept, not dropped. Augmentation stays here.
    """
    shards = shards_of(source, split)
    known = shards.known if known is None else known
    training = split == "train" if training is None else training
    deterministic = (not training) if deterministic is None else deterministic
    if deterministic and training and seed is None:
        seed = 0
    size = size or shards.tile_size
    resize = size is not None and size != shards.tile_size

    if balance not in ("none", "place"):
        raise ValueError(f"balance must be 'none' or 'place', got {balance!r}")
    if training and balance == "place" and shards.counts is not None:
        ds = by_place(source, shards, seed, shuffle_buffer)
    else:
        ds = record_stream(shards, training, seed, deterministic, whole=data_service is None)
        if training:
            # shuffled while still serialized uint8: a quarter of the memory of decoded float tiles
            ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(
        lambda s: decode(s, size, resize, contact, known, shards.graded),
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )
    if training and roof_share is not None:
        ds = balanced(ds, roof_share, seed)
    elif repeat:
        ds = ds.repeat()
    drop = training and data_service is None
    if not training and not repeat and data_service is None and replicas > 1 and shards.tiles:
        ds = replica_batches(ds, shards.tiles, batch_size, replicas)
    else:
        ds = ds.batch(batch_size, drop_remainder=drop, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    if with_meta:
        ds = ds.map(lambda d: (d["image"], d["mask"], {k: d[k] for k in META_KEYS}))
    else:
        ds = ds.map(lambda d: (d["image"], d["mask"]))
    if data_service:
        ds = distribute(ds, data_service)
    if training and augment_on == "host":
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda batch, s: (*augment(batch[0], batch[1], s, augment_config), *batch[2:]),
            num_parallel_calls=AUTOTUNE,
            deterministic=deterministic,
        )
    elif augment_on not in ("device", "host"):
        raise ValueError(f"augment_on must be 'device' or 'host', got {augment_on!r}")
    options = tf.data.Options()
    options.deterministic = deterministic
    # Each worker reads every shard and keeps its share of records: works with any number of shards.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(AUTOTUNE)


def replica_batches(ds: tf.data.Dataset, tiles: int, batch_size: int, replicas: int) -> tf.data.Dataset:
    """Batches of ``batch_size`` of the ``tiles`` tiles of ``ds``, none smaller than ``replicas``.

    A distribution strategy splits each batch among its replicas; a replica given no tile (the
    last batch of a split holding fewer tiles than there are replicas) fails in its batch norms.
    A short last batch therefore joins the batch before it, in the same pass over the tiles; a
    split of fewer tiles than replicas is read that many times over in one batch, which leaves
    its loss and its summed pixel counts' ratios as they are.
    """
    if tiles < replicas:
        copies = -(-replicas // tiles)
        return ds.repeat(copies).batch(tiles * copies)
    last = tiles % batch_size
    if tiles <= batch_size or not 0 < last < replicas:
        return ds.batch(batch_size)
    full = tiles // batch_size  # the last full batch takes the short one in

    def batch_of(i, _):
        return tf.minimum(i // batch_size, full - 1)

    return ds.enumerate().group_by_window(
        batch_of,
        lambda _, window: window.map(lambda i, tile: tile).batch(batch_size + last),
        window_size_func=lambda b: tf.where(b == full - 1, tf.constant(batch_size + last, tf.int64), batch_size),
    )
