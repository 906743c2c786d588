"""Naming the shard at fault when reading a split fails: cut short, too long, corrupt or missing."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from roofseg._tf import tf
from roofseg.errors import RoofsegError, first_line
from roofseg.pipeline.dataset import ShardSet, shards_of

#: the errors tf.data raises for a shard that is not what the manifest says
SHARD_ERRORS = (
    tf.errors.DataLossError,
    tf.errors.FailedPreconditionError,
    tf.errors.NotFoundError,
    tf.errors.InvalidArgumentError,
    tf.errors.OutOfRangeError,
)


def check_shards(shards: ShardSet, source: str | os.PathLike) -> None:
    """Read every shard of ``shards``; raise RoofsegError naming the first that is unreadable or
    holds another number of records than the manifest ``source`` promises."""
    counts = shards.counts or [None] * len(shards.files)
    for path, promised in zip(shards.files, counts):
        records = tf.data.TFRecordDataset(path, compression_type=shards.compression or "")
        try:
            found = int(records.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
        except tf.errors.OpError as exc:
            raise RoofsegError(path, f"shard cannot be read ({first_line(exc)}); tile the scene again") from None
        if promised is not None and found != promised:
            raise RoofsegError(
                path,
                f"shard holds {found} tiles but {source} promises {promised} "
                "(cut short or replaced?); tile the scene again",
            )


@contextlib.contextmanager
def shard_faults_named(source: str | os.PathLike, splits: Sequence[str]) -> Iterator[None]:
    """Turn a tf.data read failure inside the block into a RoofsegError naming the faulty shard."""
    try:
        yield
    except SHARD_ERRORS:
        if str(source).endswith(".json"):
            for split in splits:
                check_shards(shards_of(source, split), source)
        raise
