"""TFRecord shards of a bounded size, written under temporary names until committed."""

from __future__ import annotations

import os
from pathlib import Path

from roofseg._tf import tf
from roofseg.atomic import temp_path
from roofseg.errors import RoofsegError, first_line

COMPRESSIONS = {"none": None, "gzip": "GZIP"}


def shard_suffix(compression: str | None) -> str:
    return ".tfrecord.gz" if compression == "GZIP" else ".tfrecord"


class ShardWriter:
    """Writes serialized records to ``{prefix}-00000.tfrecord``, ``-00001``, … of ~``shard_bytes``.

    Files are written under temporary names; :meth:`commit` renames them all into place,
    :meth:`abort` deletes them. A job's shards thus appear together or not at all.
    """

    def __init__(self, prefix: str | os.PathLike, shard_bytes: int, compression: str | None = None):
        self.prefix = Path(prefix)
        self.shard_bytes = max(1, int(shard_bytes))
        self.compression = compression
        self.finals: list[Path] = []
        self.counts: list[int] = []
        self._writer = None
        self._bytes = 0

    def _open_next(self) -> None:
        final = self.prefix.with_name(f"{self.prefix.name}-{len(self.finals):05d}{shard_suffix(self.compression)}")
        self.finals.append(final)
        self.counts.append(0)
        options = tf.io.TFRecordOptions(compression_type=self.compression or "")
        self._writer = tf.io.TFRecordWriter(str(temp_path(final)), options)
        self._bytes = 0

    def write(self, record: bytes) -> None:
        if self._writer is None or self._bytes >= self.shard_bytes:
            self._close_current()
            self._open_next()
        try:
            self._writer.write(record)
        except tf.errors.OpError as exc:  # a full disk: ResourceExhaustedError
            raise self._failed(exc) from None
        self._bytes += len(record)
        self.counts[-1] += 1

    def _failed(self, exc: tf.errors.OpError) -> RoofsegError:
        return RoofsegError(self.finals[-1], f"writing the shard failed ({first_line(exc)})")

    def _close_current(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()  # flushes: a full disk may show only here
            except tf.errors.OpError as exc:
                raise self._failed(exc) from None

    def commit(self) -> list[tuple[Path, int]]:
        """Close and rename every shard into place; return (path, record count) pairs."""
        self._close_current()
        for final in self.finals:
            os.replace(temp_path(final), final)
        return list(zip(self.finals, self.counts))

    def abort(self) -> None:
        """Close and delete every shard written so far."""
        try:
            self._close_current()
        except RoofsegError:
            pass  # the error that made us abort is the one to report
        for final in self.finals:
            temp_path(final).unlink(missing_ok=True)
