"""Run several producers in threads and hand their items back in producer order.

Why this shape: a Storage Read session splits a table into streams that are fastest read concurrently, but
callers want rows in a stable order (stream 0's rows, then stream 1's…: for a one-stream session that is
the table's own order) and, when iterating over more data than fits in memory, a bound on what is held.
Each producer gets its own queue; the consumer drains them in order. With ``prefetch`` set, a producer
that runs ahead blocks once ``prefetch`` items are waiting, so memory stays at about
``workers * prefetch`` items; with ``prefetch=None`` every producer runs flat out (reading everything).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["in_order"]

T = TypeVar("T")

_POLL_SECONDS = 0.1


class _Done:
    """Marks the end of one producer's items."""


@dataclass(frozen=True)
class _Failed:
    error: BaseException


@dataclass(frozen=True)
class _Item(Generic[T]):
    value: T


_Message = _Item[T] | _Done | _Failed


def _put(slot: queue.Queue[_Message[T]], message: _Message[T], stop: threading.Event) -> bool:
    """Put, waiting for room while the consumer still wants items; False once it has gone away."""
    while not stop.is_set():
        try:
            slot.put(message, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def _produce(produce: Callable[[], Iterable[T]], slot: queue.Queue[_Message[T]], stop: threading.Event) -> None:
    try:
        for value in produce():
            if not _put(slot, _Item(value), stop):
                return
        _put(slot, _Done(), stop)
    except BaseException as error:  # handed to the consumer, which re-raises it in its own thread
        _put(slot, _Failed(error), stop)


def in_order(
    producers: Sequence[Callable[[], Iterable[T]]], *, workers: int, prefetch: int | None = None
) -> Generator[T, None, None]:
    """Items of ``producers[0]()``, then of ``producers[1]()``…, produced by up to ``workers`` threads.

    A producer's exception is raised to the consumer when its turn comes. Closing the iterator early (or an
    exception) stops the producers at their next item and joins their threads. Producers start in order,
    so the one the consumer waits for is always running: bounded queues cannot deadlock.
    """
    if not producers:
        return
    stop = threading.Event()
    slots: list[queue.Queue[_Message[T]]] = [queue.Queue(maxsize=prefetch or 0) for _ in producers]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(producers))), thread_name_prefix="bq-read") as pool:
        futures = [pool.submit(_produce, produce, slot, stop) for produce, slot in zip(producers, slots, strict=True)]
        try:
            for slot in slots:
                while True:
                    message = slot.get()
                    if isinstance(message, _Item):
                        yield message.value
                    elif isinstance(message, _Failed):
                        raise message.error
                    else:
                        break
        finally:
            stop.set()
            for future in futures:
                future.cancel()
