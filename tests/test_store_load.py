"""Load on the S3 store against a real SeaweedFS: 1,000 small objects written by 16 threads at
once and four multipart uploads at once, every object read back and compared by SHA-256: nothing
lost, nothing corrupted. Throughput against raw boto3: benchmarks/store_load.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from reliability import record_result

from modomodo.store import S3Store

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


@pytest.fixture(scope="module")
def load():
    spec = importlib.util.spec_from_file_location("store_load", ROOT / "benchmarks" / "store_load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["store_load"] = module
    spec.loader.exec_module(module)
    return module


def _store(s3_server, prefix: str, **options) -> S3Store:
    return S3Store(
        s3_server.bucket,
        prefix,
        endpoint_url=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        **options,
    )


def test_a_thousand_small_objects_at_once_are_all_stored_intact(s3_server, load):
    store = _store(s3_server, "load-small", max_concurrency=16)
    payloads = load.small_payloads(1000, seed=3)
    load.put_small_store(store, payloads, threads=16)
    assert load.check_small(store.get_bytes, payloads, threads=16) == []
    listed = {o["Key"] for page in s3_server.client().get_paginator("list_objects_v2").paginate(
        Bucket=s3_server.bucket, Prefix="load-small/") for o in page.get("Contents", [])}  # fmt: skip
    assert listed == {f"load-small/{key}" for key in payloads}, "objects lost or extra objects left"
    record_result("1,000 small objects put at once (16 threads) on SeaweedFS", cases=1000,
                  outcome="all read back with equal SHA-256; none lost, none extra")  # fmt: skip


def test_several_multipart_uploads_at_once_are_stored_intact(s3_server, load, tmp_path):
    # 5 MiB parts (S3's minimum) so that 12 MiB files take three parts each, as a checkpoint would.
    store = _store(s3_server, "load-large", multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    dirs = load.large_dirs(tmp_path / "up", count=4, size_mb=12, seed=4)
    load.put_large_store(store, dirs)
    assert store.list_artifacts("large/") == sorted(dirs)
    for key, folder in dirs.items():
        head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=f"load-large/{key}/blob.bin")
        assert head["ETag"].strip('"').endswith("-3"), "not a multipart upload"
        manifest = store.get_dir(key, tmp_path / "down" / key)  # checks each file's SHA-256
        assert load.file_sha256(tmp_path / "down" / key / "blob.bin") == load.file_sha256(folder / "blob.bin")
        assert manifest.total_bytes == 12 * MIB
    record_result("4 multipart uploads (12 MiB, 3 parts each) at once on SeaweedFS", cases=4,
                  outcome="all read back with equal SHA-256 through the manifest check")  # fmt: skip
