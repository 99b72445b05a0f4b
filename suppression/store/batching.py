"""Cutting a stream into batches, and preparing the next batch while this one is used.

The bulk paths (checks, imports) read their input once, a batch at a time, so
that a million rows never sit in memory together.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from queue import Full, Queue
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of `size` items (the last one shorter), in order."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class ReadAhead:
    """Runs an iterator in a thread, up to two items ahead of its reader.

    For an import, preparing the next chunk (reading, validating, indexing,
    sealing, the chain's link parts: CPU work, `import_chunks.ChunkPreparer.prepare`) then
    runs while the writer waits on the database for this one: psycopg releases
    the GIL while it waits. An exception in the thread is raised to the reader
    after the items produced before it, as the plain iterator would.
    """

    _DONE = object()

    def __init__(self, items: Iterator[Any]) -> None:
        self._items = items
        self._queue: Queue[tuple[Any, BaseException | None]] = Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="import-reader", daemon=True)

    def __enter__(self) -> Iterator[Any]:
        self._thread.start()
        return self._consume()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        # A producer waiting on the full queue sees this within its put timeout; one
        # still preparing a chunk stops when it is done.
        self._stop.set()
        self._thread.join()

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put((item, None)):
                    return
            self._put((self._DONE, None))
        except BaseException as exc:  # handed to the reader, who raises it
            self._put((self._DONE, exc))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def _put(self, entry: tuple[Any, BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def _consume(self) -> Iterator[Any]:
        while True:
            item, error = self._queue.get()
            if error is not None:
                raise error
            if item is self._DONE:
                return
            yield item
