"""Parallel work on a stream that keeps its order and a bounded number of items in flight."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def default_workers() -> int:
    """Threads for image work: the CPUs this process may use, at most 8."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cpus or 1))


def ordered_map(
    fn: Callable[[In], Out], items: Iterable[In], *, workers: int, window: int | None = None
) -> Iterator[tuple[In, Out]]:
    """``(item, fn(item))`` for each item, in input order, ``fn`` running on ``workers`` threads.

    At most ``window`` (default ``2 * workers``) items are taken from ``items`` and not yet handed
    back, so memory holds that many items and results, whatever the stream's length. Threads suit
    image work: Pillow and zlib release the GIL while they decode, resize and encode. ``items`` is
    read in the calling thread, so its errors surface here; so do errors raised by ``fn``. With one
    worker ``fn`` runs inline.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1:
        for item in items:
            yield item, fn(item)
        return
    window = window or 2 * workers
    pending: deque[tuple[In, Future[Out]]] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="modomodo-map")
    try:
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) == window:  # full: hand back the oldest before taking another
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
