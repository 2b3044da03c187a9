"""The attempts of a run's RL update, kept in the artifact store, so that lost pods count as failures.

A stage that raises counts its own failure (``StageMetrics.stage_timer``). A pod that is
OOM-killed, evicted or loses its node dies without running any code, so it cannot. Each attempt
therefore records itself as ``started`` in ``runs/<run id>/attempts.json`` before it trains and
as ``succeeded`` or ``failed`` when it ends; the next attempt (KFP's retry) turns any attempt
still ``started`` into ``lost`` and starts its stage-failure counter at the failures of all
earlier attempts, lost or raised. The counter of the run's ``train`` stage so goes on from
attempt to attempt, where a fresh process would otherwise restart it from 0.

One attempt of a run runs at a time (KFP retries a step after its pod has ended), so the log is
read and written without locking.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from modomodo.store import ArtifactNotFoundError, ArtifactStore

FAILED_STATES = ("lost", "failed")
"""Outcomes of an attempt that count as a stage failure."""


def attempts_key(run_id: str) -> str:
    return f"runs/{run_id}/attempts.json"


class AttemptLog:
    """The attempts of one run, one JSON object in the store: ``{"attempts": [{"id", "host",
    "started_at", "status", "ended_at"}, ...]}``."""

    def __init__(self, store: ArtifactStore, run_id: str) -> None:
        self.store = store
        self.key = attempts_key(run_id)
        self.id = uuid.uuid4().hex

    def read(self) -> list[dict[str, Any]]:
        try:
            return json.loads(self.store.get_bytes(self.key))["attempts"]
        except ArtifactNotFoundError:
            return []

    def _write(self, attempts: list[dict[str, Any]]) -> None:
        self.store.put_bytes(self.key, json.dumps({"attempts": attempts}, indent=2).encode() + b"\n")

    def lost(self) -> int:
        """How many earlier attempts were lost: never ended (still ``started``, as no attempt runs
        while another is read) or already marked ``lost``."""
        return sum(attempt["status"] in ("started", "lost") for attempt in self.read())

    def begin(self) -> int:
        """Record this attempt as started, earlier ones that never ended as lost; returns how many
        earlier attempts failed (lost or raised)."""
        attempts = self.read()
        for attempt in attempts:
            if attempt["status"] == "started":
                attempt["status"] = "lost"
        failures = sum(attempt["status"] in FAILED_STATES for attempt in attempts)
        attempts.append(
            {"id": self.id, "host": socket.gethostname(), "started_at": _now(), "status": "started"}
        )
        self._write(attempts)
        return failures

    def end(self, status: str) -> None:
        """Record how this attempt ended: ``succeeded`` or ``failed``."""
        attempts = self.read()
        for attempt in attempts:
            if attempt["id"] == self.id:
                attempt.update(status=status, ended_at=_now())
        self._write(attempts)

    @contextmanager
    def track(self) -> Iterator[int]:
        """``begin`` on entry (yields the earlier failures), ``end`` with the outcome on exit. A
        process killed inside never exits: its attempt stays ``started`` for the next to find."""
        failures = self.begin()
        try:
            yield failures
        except BaseException:
            self.end("failed")
            raise
        self.end("succeeded")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
