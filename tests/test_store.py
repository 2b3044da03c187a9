"""Artifact store on a local folder and on a real S3 server (SeaweedFS), same tests for both."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import FlakyProxy, S3Server

from modomodo.retry import RetryPolicy
from modomodo.store import (
    MANIFEST_NAME,
    ArtifactNotFoundError,
    ArtifactStore,
    ChecksumError,
    InvalidKeyError,
    InvalidStoreUriError,
    LocalStore,
    S3Store,
    StoreAccessError,
    StoreError,
)

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
MiB = 2**20


@dataclass
class Backend:
    """A store plus raw access to its objects, to damage them behind the store's back."""

    store: ArtifactStore
    raw_write: Callable[[str, bytes], None]
    raw_delete: Callable[[str], None]


def _s3_store(server: S3Server, prefix: str, **kwargs: object) -> S3Store:
    options: dict[str, object] = {
        "endpoint_url": server.endpoint,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "retry": FAST_RETRY,
    }
    return S3Store(server.bucket, prefix, **(options | kwargs))


@pytest.fixture(params=["file", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "file":
        store = LocalStore(tmp_path / "store")

        def raw_write(name: str, data: bytes) -> None:
            (store.root / name).parent.mkdir(parents=True, exist_ok=True)
            (store.root / name).write_bytes(data)

        return Backend(store, raw_write, lambda name: (store.root / name).unlink())
    server: S3Server = request.getfixturevalue("s3_server")
    prefix = f"tests/{uuid.uuid4().hex}"  # every test its own corner of the session bucket
    client = server.client()
    return Backend(
        _s3_store(server, prefix),
        lambda name, data: client.put_object(Bucket=server.bucket, Key=f"{prefix}/{name}", Body=data),
        lambda name: client.delete_object(Bucket=server.bucket, Key=f"{prefix}/{name}"),
    )


def make_tree(root: Path, seed: int = 0, big_bytes: int = 3 * MiB) -> dict[str, bytes]:
    """A checkpoint-like folder: nested files, a dotfile, an empty file, one of a few MB."""
    rng = random.Random(seed)
    files = {
        "config.json": json.dumps({"hidden_size": 64, "seed": seed}).encode(),
        "weights/model.safetensors": rng.randbytes(big_bytes),
        "weights/shards/part-0.bin": rng.randbytes(1000),
        "tokenizer/.gitattributes": b"*.bin filter=lfs\n",
        "empty.txt": b"",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_round_trip_keeps_files_and_metadata(backend: Backend, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src")
    metadata = {"step": 200, "mixture": {"count": 0.5, "ref": 0.5}, "note": "pilot"}

    written = backend.store.put_dir(tmp_path / "src", "runs/pilot-1/ckpt", metadata=metadata)
    fetched = backend.store.get_dir("runs/pilot-1/ckpt", tmp_path / "dst")

    assert read_tree(tmp_path / "dst") == files
    assert fetched == written == backend.store.read_manifest("runs/pilot-1/ckpt")
    assert fetched.metadata == metadata
    assert [(e.path, e.size, e.sha256) for e in fetched.files] == [
        (rel, len(data), hashlib.sha256(data).hexdigest()) for rel, data in sorted(files.items())
    ]
    assert backend.store.exists("runs/pilot-1/ckpt")
    assert backend.store.list_artifacts() == ["runs/pilot-1/ckpt"]


def test_crashed_upload_is_never_visible(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path / "src")
    store = backend.store
    store.put_dir(tmp_path / "src", "runs/a", metadata={"version": 1})
    real_put_file = store._put_file
    calls = []

    def crash_on_third_file(src: Path, name: str) -> tuple[int, str]:
        calls.append(name)
        if len(calls) == 3:
            raise OSError("simulated crash mid-upload")
        return real_put_file(src, name)

    monkeypatch.setattr(store, "_put_file", crash_on_third_file)
    for key in ("runs/a", "runs/b"):  # overwriting an artifact, and a new key
        calls.clear()
        with pytest.raises(OSError, match="simulated crash"):
            store.put_dir(tmp_path / "src", key, metadata={"version": 2})
        assert len(calls) == 3
    # Never a mix of old and new: a local overwrite is staged aside, so the old artifact survives
    # intact; on S3 the old manifest goes first, so the key is simply absent.
    if isinstance(store, LocalStore):
        assert store.list_artifacts() == ["runs/a"]
        assert store.get_dir("runs/a", tmp_path / "dst").metadata == {"version": 1}
        assert not (store.root / ".staging").exists() or not any((store.root / ".staging").iterdir())
    else:
        assert store.list_artifacts() == []
        with pytest.raises(ArtifactNotFoundError, match="no artifact"):
            store.get_dir("runs/a", tmp_path / "dst")
    assert not store.exists("runs/b")
    with pytest.raises(ArtifactNotFoundError, match="no artifact"):
        store.read_manifest("runs/b")


def test_overwrite_replaces_the_whole_tree(backend: Backend, tmp_path: Path) -> None:
    make_tree(tmp_path / "old", seed=1, big_bytes=10_000)
    (tmp_path / "old" / "only-in-old.txt").write_text("stale")
    new_files = make_tree(tmp_path / "new", seed=2, big_bytes=20_000)

    backend.store.put_dir(tmp_path / "old", "model", metadata={"v": 1})
    backend.store.put_dir(tmp_path / "new", "model", metadata={"v": 2})
    manifest = backend.store.get_dir("model", tmp_path / "dst")

    assert manifest.metadata == {"v": 2}
    assert read_tree(tmp_path / "dst") == new_files
    assert sorted(backend.store._names("model/")) == sorted(
        f"model/{rel}" for rel in [*new_files, MANIFEST_NAME]
    )


@pytest.mark.parametrize("damage", ["flip-a-byte", "truncate"])
def test_corruption_is_detected_and_named(backend: Backend, tmp_path: Path, damage: str) -> None:
    files = make_tree(tmp_path / "src", big_bytes=50_000)
    backend.store.put_dir(tmp_path / "src", "ckpt")
    good = files["weights/model.safetensors"]
    bad = good[:100] + bytes([good[100] ^ 0xFF]) + good[101:] if damage == "flip-a-byte" else good[:-1]
    backend.raw_write("ckpt/weights/model.safetensors", bad)

    with pytest.raises(ChecksumError, match=r"ckpt/weights/model\.safetensors: expected 50000 bytes"):
        backend.store.get_dir("ckpt", tmp_path / "dst")
    assert not (tmp_path / "dst" / "weights" / "model.safetensors").exists()
    assert not (tmp_path / "dst" / "weights" / "model.safetensors.part").exists()


def test_missing_file_of_an_artifact_is_reported(backend: Backend, tmp_path: Path) -> None:
    make_tree(tmp_path / "src", big_bytes=10)
    backend.store.put_dir(tmp_path / "src", "ckpt")
    backend.raw_delete("ckpt/config.json")
    with pytest.raises(ArtifactNotFoundError, match="damaged: its file 'config.json' is missing"):
        backend.store.get_dir("ckpt", tmp_path / "dst")


def test_list_artifacts_sees_only_complete_artifacts_under_a_prefix(backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.txt").write_text("x")
    for key in ("runs/pilot-1/ckpt", "runs/pilot-2/ckpt", "runs/pilot-10", "runs/final", "reports/a"):
        backend.store.put_dir(tmp_path / "src", key)
    backend.raw_write("runs/pilot-3/ckpt/f.txt", b"x")  # an upload that never finished
    backend.store.put_bytes("runs/summary.json", b"{}")  # a plain object is not an artifact

    assert backend.store.list_artifacts("runs/pilot-") == [
        "runs/pilot-1/ckpt",
        "runs/pilot-10",
        "runs/pilot-2/ckpt",
    ]
    assert backend.store.list_artifacts("runs/pilot-1/") == ["runs/pilot-1/ckpt"]
    assert backend.store.list_artifacts("runs/final/") == []
    assert backend.store.list_artifacts("nothing-here") == []
    assert len(backend.store.list_artifacts()) == 5


def test_delete_removes_artifact_and_leftovers(backend: Backend, tmp_path: Path) -> None:
    make_tree(tmp_path / "src", big_bytes=10)
    backend.store.put_dir(tmp_path / "src", "a/b")
    backend.store.put_dir(tmp_path / "src", "a/c")
    backend.raw_write("a/d/leftover.bin", b"x")

    backend.store.delete("a/b")
    backend.store.delete("a/d")
    backend.store.delete("a/never-written")

    assert backend.store.list_artifacts() == ["a/c"]
    assert sorted({name.split("/")[1] for name in backend.store._names("a/")}) == ["c"]


def test_artifacts_do_not_nest(backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.txt").write_text("x")
    backend.store.put_dir(tmp_path / "src", "outer")
    backend.store.put_dir(tmp_path / "src", "x/inner")
    with pytest.raises(InvalidKeyError, match="lies inside the artifact 'outer'"):
        backend.store.put_dir(tmp_path / "src", "outer/inner")
    with pytest.raises(InvalidKeyError, match=r"would contain the artifacts \['x/inner'\]"):
        backend.store.put_dir(tmp_path / "src", "x")


def test_small_objects(backend: Backend) -> None:
    backend.store.put_bytes("reports/run-1.json", b'{"in": 0.5}')
    backend.store.put_bytes("reports/run-1.json", b'{"in": 0.6}')
    assert backend.store.get_bytes("reports/run-1.json") == b'{"in": 0.6}'
    with pytest.raises(ArtifactNotFoundError, match="reports/run-2.json"):
        backend.store.get_bytes("reports/run-2.json")


BAD_KEYS = {
    "": "non-empty",
    "/abs/key": "absolute",
    "../escape": r"'\.\.' segment",
    "a/../b": r"'\.\.' segment",
    "a//b": "empty",
    "a/./b": "empty",
    "a/": "empty",
    "a\\b": "backslash",
    ".hidden": "may not start with '.'",
    "a/MANIFEST.json": "reserved",
}


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_rejected_with_the_reason(backend: Backend, tmp_path: Path, key: str) -> None:
    (tmp_path / "src").mkdir()
    operations = [
        lambda: backend.store.put_dir(tmp_path / "src", key),
        lambda: backend.store.get_dir(key, tmp_path / "dst"),
        lambda: backend.store.exists(key),
        lambda: backend.store.delete(key),
        lambda: backend.store.put_bytes(key, b""),
        lambda: backend.store.get_bytes(key),
        lambda: backend.store.url_for(key),
    ]
    for operation in operations:
        with pytest.raises(InvalidKeyError, match=BAD_KEYS[key]):
            operation()


def test_bad_input_trees_and_metadata(backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match="plain JSON"):
        backend.store.put_dir(tmp_path / "src", "k", metadata={"score": float("nan")})
    with pytest.raises(ValueError, match="plain JSON"):
        backend.store.put_dir(tmp_path / "src", "k", metadata={"path": tmp_path})
    with pytest.raises(FileNotFoundError, match="not a directory"):
        backend.store.put_dir(tmp_path / "missing", "k")
    (tmp_path / "src" / "sub" / MANIFEST_NAME).write_text("{}")
    with pytest.raises(InvalidKeyError, match="reserved name"):
        backend.store.put_dir(tmp_path / "src", "k")
    assert backend.store.list_artifacts() == []


def test_manifest_from_a_newer_format_is_refused(backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    backend.store.put_dir(tmp_path / "src", "k")
    backend.raw_write(
        f"k/{MANIFEST_NAME}", json.dumps({"format_version": 99, "files": [], "metadata": {}}).encode()
    )
    with pytest.raises(StoreError, match="format_version 99 is newer"):
        backend.store.read_manifest("k")
    backend.raw_write(f"k/{MANIFEST_NAME}", b"not json")
    with pytest.raises(StoreError, match="malformed manifest"):
        backend.store.read_manifest("k")


def test_url_for(backend: Backend) -> None:
    url = backend.store.url_for("runs/a")
    if isinstance(backend.store, LocalStore):
        assert url == (backend.store.root / "runs" / "a").as_uri()
    else:
        assert url == f"s3://{backend.store.bucket}/{backend.store.prefix}/runs/a"
    assert backend.store.uri in url


# Opening stores from URIs --------------------------------------------------------------------


def test_from_uri_local_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for uri in (f"file://{tmp_path}/store", str(tmp_path / "store"), "store"):
        store = ArtifactStore.from_uri(uri)
        assert isinstance(store, LocalStore)
        assert store.root == tmp_path / "store"
        assert store.uri == (tmp_path / "store").as_uri()


@pytest.mark.parametrize(
    "uri, problem",
    [
        ("ftp://host/x", "unsupported"),
        ("s3://", "names no bucket"),
        ("file://otherhost/x", "must be local"),
        ("", "unsupported"),
    ],
)
def test_from_uri_rejects_bad_uris(uri: str, problem: str) -> None:
    with pytest.raises(InvalidStoreUriError, match=problem):
        ArtifactStore.from_uri(uri)


@pytest.mark.parametrize("endpoint_variable", ["MODOMODO_S3_ENDPOINT", "AWS_ENDPOINT_URL"])
def test_s3_settings_from_environment(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint_variable: str
) -> None:
    for variable in (
        "MODOMODO_S3_ENDPOINT",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(endpoint_variable, s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    prefix = f"env/{uuid.uuid4().hex}"

    store = ArtifactStore.from_uri(f"s3://{s3_server.bucket}/{prefix}/")
    assert isinstance(store, S3Store)
    assert store.uri == f"s3://{s3_server.bucket}/{prefix}"
    assert store.endpoint_url == s3_server.endpoint
    assert store._client.meta.region_name == "us-east-1"
    store.put_bytes("hello.txt", b"hi")
    assert (
        s3_server.client().get_object(Bucket=s3_server.bucket, Key=f"{prefix}/hello.txt")["Body"].read()
        == b"hi"
    )


# S3 specifics ----------------------------------------------------------------------------------


def test_s3_large_files_use_multipart_upload(s3_server: S3Server, tmp_path: Path) -> None:
    prefix = f"multipart/{uuid.uuid4().hex}"
    store = _s3_store(s3_server, prefix, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    files = make_tree(tmp_path / "src", big_bytes=11 * MiB)

    store.put_dir(tmp_path / "src", "ckpt")
    store.get_dir("ckpt", tmp_path / "dst")

    assert read_tree(tmp_path / "dst") == files
    client = s3_server.client()
    big = client.head_object(Bucket=s3_server.bucket, Key=f"{prefix}/ckpt/weights/model.safetensors")
    small = client.head_object(Bucket=s3_server.bucket, Key=f"{prefix}/ckpt/config.json")
    assert big["ETag"].strip('"').endswith("-3")  # S3 marks multipart objects "<md5>-<parts>"
    assert "-" not in small["ETag"]


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[FlakyProxy]:
    host, port = s3_server.endpoint.removeprefix("http://").split(":")
    with FlakyProxy(host, int(port)) as proxy:
        yield proxy


def _retry_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum("retry" in r.getMessage() for r in caplog.records if r.name == "modomodo.retry")


def test_s3_transient_failures_are_retried_by_our_policy(
    s3_server: S3Server, proxy: FlakyProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_tree(tmp_path / "src", big_bytes=1000)
    # botocore's own retries off: only the store's whole-operation retry can recover.
    store = _s3_store(s3_server, f"flaky/{uuid.uuid4().hex}", endpoint_url=proxy.url, max_attempts=1)
    # urllib3 opens a second connection itself when a fresh one is dropped, so 2 drops = 1 failed attempt.
    proxy.fail_next(2)
    store.put_bytes("record.json", b"{}")
    proxy.fail_next(2)
    store.put_dir(tmp_path / "src", "ckpt")
    proxy.fail_next(2)
    store.get_dir("ckpt", tmp_path / "dst")

    assert proxy.dropped == 6
    assert _retry_warnings(caplog) == 3
    assert read_tree(tmp_path / "dst") == read_tree(tmp_path / "src")


def test_s3_transient_failures_are_retried_by_botocore(
    s3_server: S3Server, proxy: FlakyProxy, caplog: pytest.LogCaptureFixture
) -> None:
    store = _s3_store(
        s3_server,
        f"flaky/{uuid.uuid4().hex}",
        endpoint_url=proxy.url,
        max_attempts=3,
        retry=RetryPolicy(attempts=1),
    )
    proxy.fail_next(2)
    store.put_bytes("record.json", b"{}")
    proxy.fail_next(2)
    assert store.get_bytes("record.json") == b"{}"
    assert proxy.dropped == 4
    assert _retry_warnings(caplog) == 0


def test_s3_persistent_failure_gives_up_with_a_clear_error(
    s3_server: S3Server, proxy: FlakyProxy, caplog: pytest.LogCaptureFixture
) -> None:
    store = _s3_store(s3_server, f"flaky/{uuid.uuid4().hex}", endpoint_url=proxy.url, max_attempts=1)
    proxy.fail_next(1000)
    with pytest.raises(StoreError, match=r"write s3://.*/record\.json: ConnectionClosedError"):
        store.put_bytes("record.json", b"{}")
    assert _retry_warnings(caplog) == FAST_RETRY.attempts - 1


def test_s3_wrong_credentials_give_a_clear_error(s3_server: S3Server, tmp_path: Path) -> None:
    store = _s3_store(s3_server, "denied", secret_key="not-the-secret")
    with pytest.raises(StoreAccessError, match="refused access.*check the access key and secret"):
        store.put_bytes("x.json", b"{}")
    with pytest.raises(StoreAccessError, match="refused access"):
        store.exists("x")
    (tmp_path / "src").mkdir()
    with pytest.raises(StoreAccessError, match="refused access"):
        store.put_dir(tmp_path / "src", "k")


def test_s3_missing_bucket_is_named(s3_server: S3Server) -> None:
    store = S3Store(
        "no-such-bucket-here",
        endpoint_url=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        retry=FAST_RETRY,
    )
    with pytest.raises(StoreError, match="bucket 'no-such-bucket-here' does not exist"):
        store.put_bytes("x.json", b"{}")


# Retry policy ----------------------------------------------------------------------------------


def test_retry_policy_retries_only_transient_errors() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("blip")
        return "ok"

    assert FAST_RETRY.call(flaky, is_transient=lambda e: isinstance(e, ConnectionError), what="op") == "ok"
    assert len(calls) == 3

    calls.clear()
    with pytest.raises(ConnectionError, match="blip"):
        FAST_RETRY.call(flaky, is_transient=lambda e: False, what="op")
    assert len(calls) == 1

    calls.clear()
    with pytest.raises(ConnectionError, match="blip"):
        RetryPolicy(attempts=2, base_delay=0.01).call(flaky, is_transient=lambda e: True, what="op")
    assert len(calls) == 2

    with pytest.raises(ValueError, match="attempts must be >= 1"):
        RetryPolicy(attempts=0)
