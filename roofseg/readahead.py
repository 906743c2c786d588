"""Run a generator in a background thread, a bounded number of items ahead of its consumer.

GDAL reads release the GIL, so reading the next windows overlaps with encoding and writing
the current ones. Only the background thread touches the generator (and so the datasets it
reads), which keeps rasterio's one-thread-per-dataset rule.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterator, TypeVar

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
