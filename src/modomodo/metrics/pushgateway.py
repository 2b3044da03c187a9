"""The Pushgateway's side: which groups it holds, and which push errors may heal on retry."""

from __future__ import annotations

import json
import urllib.error

from modomodo.metrics.names import (
    PUSH_JOB,
)


def _is_transient_push_error(exc: BaseException) -> bool:
    # A 4xx (e.g. inconsistent labels) will not heal by retrying; refused connections and 5xx may.
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500
    return isinstance(exc, OSError)


def pushgateway_groups(gateway: str, timeout: float = 10.0) -> list[dict[str, str]]:
    """The grouping keys (``job`` included) of the modomodo groups on the Pushgateway ``gateway``
    (``host:port`` or URL), from its ``/api/v1/metrics``."""
    return [labels for labels, _pushed in _groups_with_push_time(gateway, timeout)]


def _groups_with_push_time(gateway: str, timeout: float) -> list[tuple[dict[str, str], float]]:
    base = gateway if "://" in gateway else f"http://{gateway}"
    with urllib.request.urlopen(f"{base.rstrip('/')}/api/v1/metrics", timeout=timeout) as response:
        data = json.load(response)["data"]
    return [
        (group["labels"], float(group["push_time_seconds"]["metrics"][0]["value"]))
        for group in data
        if group["labels"].get("job") == PUSH_JOB
    ]
