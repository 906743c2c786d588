"""The tf.train.Example layout of one tile."""

from __future__ import annotations

import numpy as np
import pytest

from roofseg._tf import tf
from roofseg.contracts.tile import VERSION, TileRecord, read_records
from roofseg.errors import RoofsegError


def record(**changes) -> TileRecord:
    rng = np.random.default_rng(0)
    fields = dict(
        image=rng.integers(0, 255, (8, 8, 3), dtype=np.uint8),
        mask=np.eye(8, dtype=np.uint8),
        scene_id="s0",
        row=16,
        col=32,
        transform=(0.3, 0.0, 500000.123456, 0.0, -0.3, 4649776.2),
        crs_wkt="",
        epsg=32633,
        valid_height=8,
        valid_width=6,
        nodata_fraction=0.25,
        contact=np.zeros((8, 8), np.uint8),
    )
    return TileRecord(**{**fields, **changes})


def test_a_tile_reads_back_as_it_was_written(tmp_path):
    rec = record()
    with tf.io.TFRecordWriter(str(tmp_path / "a.tfrecord")) as w:
        w.write(rec.to_example())
    (back,) = read_records(str(tmp_path / "a.tfrecord"))
    assert np.array_equal(back["image"], rec.image) and np.array_equal(back["mask"], rec.mask)
    assert back["transform"] == rec.transform and back["padded"] == 1 and back["layout"] == VERSION
    assert back["roof_fraction"] == pytest.approx(8 / 64)


def test_a_shard_of_a_newer_layout_is_refused_naming_it(tmp_path):
    ex = tf.train.Example.FromString(record().to_example())
    ex.features.feature["layout"].int64_list.value[:] = [VERSION + 1]
    path = tmp_path / "new.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        w.write(ex.SerializeToString())
    with pytest.raises(RoofsegError, match="newer roofseg") as err:
        read_records(str(path))
    assert err.value.path == str(path)
