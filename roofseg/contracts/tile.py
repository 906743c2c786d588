"""The ``tf.train.Example`` layout of one tile: what the tiler writes and the pipeline parses.

Layout history (the ``layout`` feature): 1, shards written before the feature existed read as 1;
2, ``known``: where the labels say what a pixel is (a review labels only the buildings decided); a
tile without it is known everywhere, as every tile of layout 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roofseg._tf import tf
from roofseg.errors import RoofsegError

VERSION = 2  # the layout this release writes and the newest it reads


@dataclass(frozen=True)
class TileRecord:
    """One tile with everything needed to put it back on the map.

    ``image`` is uint8 (size, size, 3), ``mask`` uint8 (size, size) of 0/1, ``contact`` None or
    uint8 (size, size) of 0/1: where buildings meet (see roofseg.tiler.targets); ``known`` None (known
    everywhere) or uint8 (size, size) of 0/1: the pixels whose label is known, the rest left out of
    the loss (see roofseg.raster.reviewed). ``transform`` is the
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
    contact: np.ndarray | None = None
    known: np.ndarray | None = None

    def to_example(self) -> bytes:
        h, w, c = self.image.shape
        # A new message per record: upb keeps replaced bytes in a message's arena until the
        # message dies, so refilling one Example would grow memory by a tile per record.
        ex = tf.train.Example()
        f = ex.features.feature
        f["image"].bytes_list.value.append(self.image.tobytes())
        f["mask"].bytes_list.value.append(self.mask.tobytes())
        if self.contact is not None:
            f["contact"].bytes_list.value.append(self.contact.tobytes())
        if self.known is not None:
            f["known"].bytes_list.value.append(self.known.tobytes())
        f["scene_id"].bytes_list.value.append(self.scene_id.encode())
        # float_list is float32, too coarse for UTM coordinates: the transform is kept as text
        f["transform"].bytes_list.value.append(",".join(repr(float(v)) for v in self.transform).encode())
        f["crs"].bytes_list.value.append(self.crs_wkt.encode())
        ints = {
            "layout": VERSION,
            "height": h,
            "width": w,
            "channels": c,
            "row": self.row,
            "col": self.col,
            "epsg": self.epsg,
            "valid_height": self.valid_height,
            "valid_width": self.valid_width,
            "padded": int(self.valid_height < h or self.valid_width < w),
        }
        for key, value in ints.items():
            f[key].int64_list.value.append(value)
        f["nodata_fraction"].float_list.value.append(self.nodata_fraction)
        f["roof_fraction"].float_list.value.append(self.roof_pixels / (h * w))
        return ex.SerializeToString()

    @property
    def roof_pixels(self) -> int:
        return int(np.count_nonzero(self.mask))


FEATURES = {
    "layout": tf.io.FixedLenFeature([], tf.int64, default_value=1),
    "image": tf.io.FixedLenFeature([], tf.string),
    "mask": tf.io.FixedLenFeature([], tf.string),
    "contact": tf.io.FixedLenFeature([], tf.string, default_value=""),  # absent: tiled without contact targets
    "known": tf.io.FixedLenFeature([], tf.string, default_value=""),  # absent: every pixel's label is known
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
        if int(ex["layout"]) > VERSION:
            raise RoofsegError(
                path,
                f"holds tiles of layout {int(ex['layout'])}, written by a newer roofseg; this "
                f"release reads up to layout {VERSION}: upgrade roofseg",
            )
        h, w, c = int(ex["height"]), int(ex["width"]), int(ex["channels"])
        rec = {k: v.numpy() for k, v in ex.items()}
        rec["image"] = np.frombuffer(rec["image"], np.uint8).reshape(h, w, c)
        rec["mask"] = np.frombuffer(rec["mask"], np.uint8).reshape(h, w)
        rec["contact"] = np.frombuffer(rec["contact"], np.uint8).reshape(h, w) if rec["contact"] else None
        rec["known"] = np.frombuffer(rec["known"], np.uint8).reshape(h, w) if rec["known"] else None
        rec["scene_id"] = rec["scene_id"].decode()
        rec["crs"] = rec["crs"].decode()
        rec["transform"] = parse_transform(rec["transform"])
        out.append(rec)
    return out
