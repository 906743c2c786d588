"""The ``tf.train.Example`` layout of one tile: what the tiler writes and the pipeline parses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roofseg._tf import tf


@dataclass(frozen=True)
class TileRecord:
    """One tile with everything needed to put it back on the map.

    ``image`` is uint8 (size, size, 3), ``mask`` uint8 (size, size) of 0/1. ``transform`` is the
    tile's affine (a, b, c, d, e, f) in the scene's CRS; ``valid_height``/``valid_width`` are the
    part of the tile inside the scene (the rest is padding, marked by ``padded``).
    """

    image: np.ndarray
    mask: np.ndarray
    scene_id: str
    row: int
    col: int
    transform: tuple[float, ...]
    crs_wkt: str
    epsg: int
    valid_height: int
    valid_width: int
    nodata_fraction: float

    def to_example(self) -> bytes:
        h, w, c = self.image.shape

        def ints(*v):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=v))

        def floats(*v):
            return tf.train.Feature(float_list=tf.train.FloatList(value=v))

        def raw(b: bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[b]))

        feature = {
            "image": raw(self.image.tobytes()),
            "mask": raw(self.mask.tobytes()),
            "height": ints(h),
            "width": ints(w),
            "channels": ints(c),
            "scene_id": raw(self.scene_id.encode()),
            "row": ints(self.row),
            "col": ints(self.col),
            # float64 would be needed to keep UTM coordinates to the millimetre: float_list is
            # float32, so the transform is stored as its repr in bytes.
            "transform": raw(",".join(repr(float(v)) for v in self.transform).encode()),
            "crs": raw(self.crs_wkt.encode()),
            "epsg": ints(self.epsg),
            "valid_height": ints(self.valid_height),
            "valid_width": ints(self.valid_width),
            "padded": ints(int(self.valid_height < h or self.valid_width < w)),
            "nodata_fraction": floats(self.nodata_fraction),
            "roof_fraction": floats(float(self.mask.mean())),
        }
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "mask": tf.io.FixedLenFeature([], tf.string),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "channels": tf.io.FixedLenFeature([], tf.int64),
    "scene_id": tf.io.FixedLenFeature([], tf.string),
    "row": tf.io.FixedLenFeature([], tf.int64),
    "col": tf.io.FixedLenFeature([], tf.int64),
    "transform": tf.io.FixedLenFeature([], tf.string),
    "crs": tf.io.FixedLenFeature([], tf.string),
    "epsg": tf.io.FixedLenFeature([], tf.int64),
    "valid_height": tf.io.FixedLenFeature([], tf.int64),
    "valid_width": tf.io.FixedLenFeature([], tf.int64),
    "padded": tf.io.FixedLenFeature([], tf.int64),
    "nodata_fraction": tf.io.FixedLenFeature([], tf.float32),
    "roof_fraction": tf.io.FixedLenFeature([], tf.float32),
}


def parse_transform(text: bytes | str) -> tuple[float, ...]:
    """The six affine coefficients stored in a record's ``transform`` feature."""
    if isinstance(text, bytes):
        text = text.decode()
    return tuple(float(v) for v in text.split(","))


def read_records(path: str, compression: str | None = None) -> list[dict]:
    """Every record of one shard decoded to numpy (for tests, previews and tools, not training)."""
    out = []
    for raw in tf.data.TFRecordDataset(path, compression_type=compression or ""):
        ex = tf.io.parse_single_example(raw, FEATURES)
        h, w, c = int(ex["height"]), int(ex["width"]), int(ex["channels"])
        rec = {k: v.numpy() for k, v in ex.items()}
        rec["image"] = np.frombuffer(rec["image"], np.uint8).reshape(h, w, c)
        rec["mask"] = np.frombuffer(rec["mask"], np.uint8).reshape(h, w)
        rec["scene_id"] = rec["scene_id"].decode()
        rec["crs"] = rec["crs"].decode()
        rec["transform"] = parse_transform(rec["transform"])
        out.append(rec)
    return out
