"""Session-wide test settings and fixtures that start real servers (see ``servers.py``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

# Tests never reach a model or dataset hub; set before anything imports transformers/datasets.
os.environ.update(
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    TOKENIZERS_PARALLELISM="false",
)

import servers  # noqa: E402  (after the environment is set)

# A logging handler some library left bound to a stream a CLI runner has since closed makes every
# later warning print "--- Logging error ---" and a traceback into whichever test runs then (seen
# in the full suite only, in test_s3_sources, which asserts that a failing command prints no
# traceback). Such handler errors are dropped, as logging's documentation advises outside
# development; the tests' own assertions on output are unaffected.
logging.raiseExceptions = False


@contextmanager
def _missing_binary_fails() -> Iterator[None]:
    """Turn a missing server binary into a clear test failure (never a skip)."""
    try:
        yield
    except servers.MissingBinaryError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.S3Server]:
    """SeaweedFS S3 on loopback with checked credentials and a bucket for this session."""
    with _missing_binary_fails(), servers.seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Pushgateway on loopback."""
    with _missing_binary_fails(), servers.pushgateway(tmp_path_factory.mktemp("pushgateway")) as url:
        yield url


@pytest.fixture(scope="session")
def prometheus(pushgateway: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Prometheus that scrapes the ``pushgateway`` fixture every second."""
    with (
        _missing_binary_fails(),
        servers.prometheus(tmp_path_factory.mktemp("prometheus"), pushgateway) as url,
    ):
        yield url


@pytest.fixture(scope="session")
def postgresql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.PostgresServer]:
    """PostgreSQL on loopback with a password that appears nowhere else (tests grep for it)."""
    import secrets

    password = f"pg-test-secret-{secrets.token_hex(8)}"
    with (
        _missing_binary_fails(),
        servers.postgresql(tmp_path_factory.mktemp("postgresql"), password) as server,
    ):
        yield server
