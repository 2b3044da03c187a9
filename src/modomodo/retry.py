"""Retrying a whole operation on transient failures, shared by the artifact store and the
metrics push (both talk to servers that restart, throttle or drop connections)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of a whole operation on transient failures, with jittered exponential backoff."""

    attempts: int = 4
    """Total tries, the first included (1 disables retrying)."""
    base_delay: float = 0.5
    """Seconds before the first retry; doubled for each later one."""
    max_delay: float = 8.0
    """Upper bound of a single wait, in seconds."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")

    def call(self, fn: Callable[[], T], *, is_transient: Callable[[BaseException], bool], what: str) -> T:
        """Return ``fn()``, retrying it while it raises an error that ``is_transient`` accepts."""
        attempt = 1
        while True:
            try:
                return fn()
            except Exception as exc:
                if attempt >= self.attempts or not is_transient(exc):
                    raise
                # Full jitter keeps many pods that failed together from retrying in lockstep.
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                logger.warning(
                    "%s failed (%s: %s); retry %d of %d in %.2f s",
                    what,
                    type(exc).__name__,
                    exc,
                    attempt,
                    self.attempts - 1,
                    delay,
                )
                time.sleep(delay)
                attempt += 1
