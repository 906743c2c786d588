"""Run a generator in a background thread, a bounded number of items ahead of its consumer.

GDAL reads release the GIL, so reading the next windows overlaps with encoding and writing
the current ones. Only the background thread touches the generator (and so the datasets it
reads), which keeps rasterio's one-thread-per-dataset rule.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def read_ahead(items: Iterator[T], depth: int = 8) -> Iterator[T]:
    """Yield what ``items`` yields, produced by a thread at most ``depth`` items ahead."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put((item, None))
            q.put((_END, None))
        except BaseException as exc:  # handed to the consumer, raised there
            q.put((_END, exc))

    thread = threading.Thread(target=produce, daemon=True, name="read-ahead")
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is _END:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


class WriteBehind:
    """Hand items to ``consume`` on a thread of its own, at most ``depth`` items behind the caller.

    The counterpart of :func:`read_ahead` for the end of a pipeline: blending and writing run
    while the caller computes the next items. A failure of ``consume`` is raised in the caller
    (at its next :meth:`put`, or at :meth:`close`); the thread is always joined.
    """

    def __init__(self, consume, depth: int = 4):
        self._consume = consume
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._inline = depth <= 0  # depth 0: consume in the caller's thread (the sequential reference)
        self._thread = threading.Thread(target=self._run, args=(consume,), daemon=True, name="write-behind")
        if not self._inline:
            self._thread.start()

    def _run(self, consume) -> None:
        while True:
            item = self._q.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    consume(item)
                except BaseException as exc:  # raised in the caller
                    self._error = exc

    def put(self, item) -> None:
        if self._inline:
            self._consume(item)
            return
        if self._error is not None:
            self.close()
        self._q.put(item)

    def close(self) -> None:
        """Wait for every item to be consumed; raise what ``consume`` raised, if anything."""
        if self._thread.is_alive():
            self._q.put(_END)
            self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the caller failed: stop, and report its error rather than ours
            self.close()
        except BaseException:
            pass
