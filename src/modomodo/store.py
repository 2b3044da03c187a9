"""Artifact store: one interface over local folders (``file://``) and S3 (``s3://bucket/prefix``).

An *artifact* is a tree of files under a key (a relative POSIX path such as ``runs/pilot-03/ckpt``).
Its ``MANIFEST.json`` lists every file with size and sha256, the caller's metadata and a format
version, and it is always written last: an artifact whose upload was interrupted has no manifest, so
``exists``/``list_artifacts``/``get_dir`` never see it. Readers verify every checksum.

An artifact owns everything under ``<key>/``: artifacts never nest. Overwriting a key deletes the
old manifest before any old file is touched, then the old files, and writes the new manifest last,
so no reader ever sees a mix of old and new files (see ``docs/storage.md``).

Checksums alone do not stop someone who can write to the bucket: they rewrite a file and its
manifest together. With a key in ``MODOMODO_STORE_HMAC_KEY`` every manifest is signed (HMAC-SHA256
over the manifest and its key) and readers refuse unsigned or wrongly signed ones.

Typical use::

    store = ArtifactStore.from_uri("s3://modomodo/experiments")   # or "file:///data/artifacts"
    store.put_dir(Path("out/checkpoint"), "runs/pilot-03/checkpoint", metadata={"step": 200})
    manifest = store.get_dir("runs/pilot-03/checkpoint", Path("/tmp/ckpt"))
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import hmac
import json
import logging
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import boto3
import botocore.exceptions
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig

from modomodo.redact import redact_text, redact_url
from modomodo.retry import RetryPolicy

logger = logging.getLogger(__name__)

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_FORMAT_VERSION = 1
"""Bumped when the manifest layout changes incompatibly; readers refuse newer versions."""

_STAGING_DIR = ".staging"
"""Local stores build artifacts here before renaming them into place (keys cannot start with '.')."""

_HASH_CHUNK = 1 << 20

MAX_KEY_BYTES = 768
"""S3 keys hold at most 1,024 bytes; this leaves room for the store's prefix and the file paths
inside an artifact."""
MAX_SEGMENT_BYTES = 255
"""Longest file name on common filesystems (ext4, xfs)."""
MAX_KEY_SEGMENTS = 32

HMAC_KEY_ENV = "MODOMODO_STORE_HMAC_KEY"
"""Signs new manifests and verifies stored ones; set from the pod's Secret."""
HMAC_OLD_KEYS_ENV = "MODOMODO_STORE_HMAC_OLD_KEYS"
"""Comma-separated keys that still verify (never sign) while a key is being rotated out."""
HMAC_MIN_KEY_BYTES = 32
_SIGNATURE_ALGORITHM = "hmac-sha256"

T = TypeVar("T")


class StoreError(Exception):
    """Base class of every artifact-store failure."""


class InvalidKeyError(StoreError, ValueError):
    """A key or file path is not a clean relative POSIX path, or would nest artifacts."""


class InvalidStoreUriError(StoreError, ValueError):
    """A store URI has an unsupported scheme or is malformed."""


class ArtifactNotFoundError(StoreError, FileNotFoundError):
    """No complete artifact (or object) exists under the key."""


class ChecksumError(StoreError):
    """A stored file does not match the size or sha256 recorded in its manifest."""


class StoreAccessError(StoreError, PermissionError):
    """The backend refused the credentials or the permission, or none are configured."""


class ManifestSignatureError(StoreError):
    """The store holds an HMAC key and a manifest is unsigned, or its signature does not match:
    it was not written by a holder of the key (forged, or from before signing was turned on)."""


class ManifestSigner:
    """HMAC-SHA256 signatures of manifests. The first key signs; every key verifies, so a key can
    be rotated without re-signing every artifact at once (see ``docs/storage.md``).

    The signed message binds the manifest bytes to the artifact's key: a validly signed manifest
    copied under another key (an older checkpoint replayed as the newest) does not verify.
    """

    def __init__(self, key: bytes, *old_keys: bytes) -> None:
        for k in (key, *old_keys):
            if len(k) < HMAC_MIN_KEY_BYTES:
                raise ValueError(
                    f"a store HMAC key must hold at least {HMAC_MIN_KEY_BYTES} bytes, got {len(k)} "
                    "(make one with: python -c 'import secrets; print(secrets.token_hex(32))')"
                )
        self._keys = {self.key_id(k): k for k in (key, *old_keys)}
        self.signing_key_id = self.key_id(key)

    @classmethod
    def from_env(cls) -> ManifestSigner | None:
        """The signer configured by ``$MODOMODO_STORE_HMAC_KEY`` (and ``..._OLD_KEYS``), or None."""
        key = os.environ.get(HMAC_KEY_ENV, "")
        old = [k for k in os.environ.get(HMAC_OLD_KEYS_ENV, "").split(",") if k.strip()]
        if not key:
            if old:
                raise ValueError(f"${HMAC_OLD_KEYS_ENV} is set but ${HMAC_KEY_ENV} is not")
            return None
        return cls(key.encode(), *(k.strip().encode() for k in old))

    @staticmethod
    def key_id(key: bytes) -> str:
        """A public name for a key (it reveals nothing usable about the key)."""
        return hashlib.sha256(b"modomodo-store-key-id\0" + key).hexdigest()[:16]

    @staticmethod
    def _message(artifact_key: str, body: bytes) -> bytes:
        return b"modomodo-manifest-v1\0" + artifact_key.encode() + b"\0" + body

    def sign(self, artifact_key: str, body: bytes) -> dict[str, str]:
        mac = hmac.new(self._keys[self.signing_key_id], self._message(artifact_key, body), "sha256")
        return {"algorithm": _SIGNATURE_ALGORITHM, "key_id": self.signing_key_id, "value": mac.hexdigest()}

    def verify(
        self, artifact_key: str, body: bytes, signature: Mapping[str, Any] | None, source: str
    ) -> None:
        if signature is None:
            raise ManifestSignatureError(
                f"{source}: unsigned manifest refused (this store signs manifests: ${HMAC_KEY_ENV} is "
                "set). It was written without the key: forged, or stored before signing was turned "
                "on (re-sign trusted artifacts with ArtifactStore.resign)"
            )
        key = self._keys.get(str(signature.get("key_id")))
        if signature.get("algorithm") != _SIGNATURE_ALGORITHM or key is None:
            raise ManifestSignatureError(
                f"{source}: manifest signed with {signature.get('algorithm')!r} and key id "
                f"{signature.get('key_id')!r}, which this store does not hold (its keys: "
                f"{sorted(self._keys)}); during a rotation put the old key in ${HMAC_OLD_KEYS_ENV}"
            )
        expected = hmac.new(key, self._message(artifact_key, body), "sha256").hexdigest()
        if not hmac.compare_digest(expected, str(signature.get("value"))):
            raise ManifestSignatureError(
                f"{source}: manifest signature does not match its content: the manifest or its "
                "key was changed by someone without the store's HMAC key"
            )


@dataclass(frozen=True)
class FileEntry:
    """One file of an artifact, as recorded in its manifest."""

    path: str
    """Relative POSIX path inside the artifact."""
    size: int
    """Size in bytes."""
    sha256: str
    """Hex sha256 of the content."""


@dataclass(frozen=True)
class Manifest:
    """The ``MANIFEST.json`` that completes an artifact."""

    files: tuple[FileEntry, ...]
    """Every file of the artifact, sorted by path."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Caller-supplied JSON metadata (step, mixture, scores...)."""
    format_version: int = MANIFEST_FORMAT_VERSION
    """Layout version of this manifest."""
    created_at: str = ""
    """UTC ISO-8601 time the manifest was written."""
    signature: dict[str, str] | None = None
    """HMAC of everything above and the artifact key (see :class:`ManifestSigner`); None unsigned."""

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def to_json(self, *, signed: bool = True) -> bytes:
        """The manifest's bytes; ``signed=False`` leaves the signature out (the bytes it covers)."""
        doc = {
            "format_version": self.format_version,
            "created_at": self.created_at,
            "metadata": self.metadata,
            "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in self.files],
        }
        if signed and self.signature is not None:
            doc["signature"] = self.signature
        return json.dumps(doc, indent=2, sort_keys=True, allow_nan=False).encode()

    @classmethod
    def from_json(cls, data: bytes, *, source: str) -> Manifest:
        """Parse and validate a manifest; ``source`` names it in error messages."""
        try:
            doc = json.loads(data)
            version = doc["format_version"]
            files = tuple(
                FileEntry(
                    _validate_relpath(f["path"], "manifest file path"), int(f["size"]), str(f["sha256"])
                )
                for f in doc["files"]
            )
            metadata = doc["metadata"]
            if not isinstance(metadata, dict):
                raise TypeError(f"metadata is a {type(metadata).__name__}, not an object")
            signature = doc.get("signature")
            if signature is not None and not isinstance(signature, dict):
                raise TypeError(f"signature is a {type(signature).__name__}, not an object")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(f"{source}: malformed manifest ({type(exc).__name__}: {exc})") from exc
        if not isinstance(version, int) or version > MANIFEST_FORMAT_VERSION:
            raise StoreError(
                f"{source}: manifest format_version {version!r} is newer than this modomodo "
                f"supports ({MANIFEST_FORMAT_VERSION}); upgrade modomodo"
            )
        return cls(
            files=files,
            metadata=metadata,
            format_version=version,
            created_at=doc.get("created_at", ""),
            signature=signature,
        )


def _validate_relpath(path: str, what: str) -> str:
    """Reject anything but a clean relative POSIX path: it may not escape the store root (``..``,
    absolute paths) or be ambiguous (empty segments, ``.``, backslashes)."""
    if not isinstance(path, str) or not path:
        raise InvalidKeyError(f"{what} must be a non-empty string, got {path!r}")
    if path.startswith("/"):
        raise InvalidKeyError(f"{what} {path!r} is absolute; use a path relative to the store root")
    if "\\" in path or "\0" in path:
        raise InvalidKeyError(f"{what} {path!r} contains a backslash or NUL; use '/' separators")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKeyError(f"{what} {path!r} is not valid Unicode (a lone surrogate)") from None
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKeyError(f"{what} {path!r} has an empty, '.' or '..' segment")
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidKeyError(
                f"{what} {path[:80]!r}...: a segment of {len(segment.encode())} bytes, more than {MAX_SEGMENT_BYTES}"
            )
    return path


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid store key, else raise :class:`InvalidKeyError`.

    A key is a clean relative POSIX path whose segments do not start with ``.`` (reserved for the
    store's own temporary names) and are not ``MANIFEST.json`` (which marks complete artifacts).
    """
    if isinstance(key, str) and len(key.encode("utf-8", "replace")) > MAX_KEY_BYTES:
        raise InvalidKeyError(
            f"key {key[:80]!r}... has {len(key.encode('utf-8', 'replace'))} bytes, more than {MAX_KEY_BYTES}"
        )
    _validate_relpath(key, "key")
    if key.count("/") >= MAX_KEY_SEGMENTS:
        raise InvalidKeyError(
            f"key {key[:80]!r}... has {key.count('/') + 1} segments, more than {MAX_KEY_SEGMENTS}"
        )
    for segment in key.split("/"):
        if segment.startswith("."):
            raise InvalidKeyError(f"key {key!r}: segments may not start with '.' (reserved)")
        if segment == MANIFEST_NAME:
            raise InvalidKeyError(f"key {key!r}: {MANIFEST_NAME!r} is reserved for artifact manifests")
    return key


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it can name a run in the store (``runs/<run_id>/...``): one key
    segment. Checked before any work, so a bad id fails at once, not at the first upload."""
    validate_key(run_id)
    if "/" in run_id:
        raise InvalidKeyError(f"run id {run_id!r} contains '/'; a run id is one key segment")
    return run_id


def parse_store_uri(uri: str) -> tuple[str, str, str]:
    """``("s3", bucket, prefix)`` or ``("file", path, "")`` for a store URI (see
    :meth:`ArtifactStore.from_uri`); :class:`InvalidStoreUriError` otherwise. Opens nothing, so
    configs check their store at load."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise InvalidStoreUriError(f"store URI {uri!r} names no bucket (expected s3://bucket/prefix)")
        return "s3", parsed.netloc, parsed.path.strip("/")
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise InvalidStoreUriError(f"store URI {uri!r}: file URIs must be local (file:///abs/dir)")
        return "file", unquote(parsed.path), ""
    if parsed.scheme == "" and uri:
        return "file", uri, ""
    raise InvalidStoreUriError(
        f"unsupported store URI {redact_url(uri)!r}: use file:///dir, a local path or s3://bucket/prefix"
    )


def _validate_prefix(prefix: str) -> str:
    """A listing prefix is a key or the start of one ('' lists everything)."""
    if prefix:
        _validate_relpath(prefix.rstrip("/") or "/", "listing prefix")
    return prefix


def _manifest_name(key: str) -> str:
    return f"{key}/{MANIFEST_NAME}"


def _sha256_file(path: Path) -> tuple[int, str]:
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256")
    return path.stat().st_size, digest.hexdigest()


def _scan_tree(local_dir: Path) -> list[str]:
    """Relative POSIX paths of every file under ``local_dir``, sorted.

    Symlinks to files are stored as regular files; a symlinked directory is refused rather than
    silently skipped. Empty directories are not preserved (object stores have no directories).
    """
    if not local_dir.is_dir():
        raise FileNotFoundError(f"cannot store {local_dir}: not a directory")
    paths = []
    for dirpath, dirnames, filenames in os.walk(local_dir):
        base = Path(dirpath)
        for name in dirnames:
            if (base / name).is_symlink():
                raise ValueError(f"cannot store {base / name}: symlinked directories are not supported")
        for name in filenames:
            rel = (base / name).relative_to(local_dir).as_posix()
            if name == MANIFEST_NAME:
                raise InvalidKeyError(
                    f"cannot store {local_dir}: file {rel!r} uses the reserved name {MANIFEST_NAME!r}"
                )
            paths.append(_validate_relpath(rel, "file path"))
    return sorted(paths)


def _check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    metadata = dict(metadata or {})
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"artifact metadata must be plain JSON (no NaN/inf): {exc}") from exc
    return metadata


class ArtifactStore(ABC):
    """Artifacts and small objects under one root; backends implement the ``_`` primitives.

    Primitive methods take *names*: object paths relative to the store root.
    """

    uri: str
    """Canonical URI of the store root (``file:///...`` or ``s3://bucket/prefix``)."""

    @staticmethod
    def from_uri(uri: str, **kwargs: Any) -> ArtifactStore:
        """Open ``file:///abs/dir``, ``/abs/dir``, ``rel/dir`` or ``s3://bucket/prefix``.

        ``kwargs`` go to the backend's constructor (see :class:`S3Store` for S3 options).
        """
        kind, where, prefix = parse_store_uri(uri)
        if kind == "s3":
            return S3Store(where, prefix, **kwargs)
        return LocalStore(Path(where), **kwargs)

    # Public API -----------------------------------------------------------------------------

    def put_dir(self, local_dir: Path, key: str, metadata: Mapping[str, Any] | None = None) -> Manifest:
        """Store every file under ``local_dir`` as the artifact ``key``; the manifest goes last."""
        key = validate_key(key)
        local_dir = Path(local_dir)
        files = _scan_tree(local_dir)
        metadata = _check_metadata(metadata)
        self._check_not_nested(key)
        with self._staging(key) as dest:
            entries = tuple(
                FileEntry(rel, *self._put_file(local_dir / rel, f"{dest}/{rel}")) for rel in files
            )
            manifest = self._signed(
                key,
                Manifest(
                    files=entries,
                    metadata=metadata,
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )
            self._put_bytes(_manifest_name(dest), manifest.to_json())  # last, as ever
        logger.info("stored %d files (%d bytes) as %s", len(entries), manifest.total_bytes, self.url_for(key))
        return manifest

    def get_dir(self, key: str, local_dir: Path) -> Manifest:
        """Download the artifact into ``local_dir`` (created if needed), verifying every checksum.

        Each file is downloaded beside its destination and renamed into place only once verified.
        """
        manifest = self.read_manifest(key)
        local_dir = Path(local_dir)
        for entry in manifest.files:
            dest = local_dir / entry.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            partial = dest.with_name(dest.name + ".part")
            try:
                self._get_file(f"{key}/{entry.path}", partial)
            except ArtifactNotFoundError as exc:
                raise ArtifactNotFoundError(
                    f"artifact {self.url_for(key)} is damaged: its file {entry.path!r} is missing"
                ) from exc
            size, sha256 = _sha256_file(partial)
            if (size, sha256) != (entry.size, entry.sha256):
                partial.unlink()
                raise ChecksumError(
                    f"{self.url_for(key)}/{entry.path}: expected {entry.size} bytes with sha256 "
                    f"{entry.sha256}, got {size} bytes with sha256 {sha256}"
                )
            os.replace(partial, dest)
        return manifest

    def exists(self, key: str) -> bool:
        """Whether a complete artifact (one with a manifest) is stored under ``key``."""
        return self._has(_manifest_name(validate_key(key)))

    def read_manifest(self, key: str) -> Manifest:
        """The artifact's manifest; with an HMAC key configured, only a correctly signed one."""
        name = _manifest_name(validate_key(key))
        try:
            data = self._get_bytes(name)
        except ArtifactNotFoundError as exc:
            raise ArtifactNotFoundError(f"no artifact at {self.url_for(key)} (no {MANIFEST_NAME})") from exc
        manifest = Manifest.from_json(data, source=self._url(name))
        if self.signer is not None:
            self.signer.verify(key, manifest.to_json(signed=False), manifest.signature, self._url(name))
        return manifest

    def resign(self, key: str, signer: ManifestSigner | None = None) -> Manifest:
        """Rewrite the artifact's manifest signed with ``signer``'s key (default: this store's).

        For key rotation (the stored signature must verify with one of this store's keys) and for
        signing artifacts stored before signing was turned on (a store without a key reads them).
        """
        signer = signer or self.signer
        if signer is None:
            raise ValueError(f"nothing to sign with: set ${HMAC_KEY_ENV} or pass a ManifestSigner")
        manifest = replace(self.read_manifest(key), signature=None)
        manifest = replace(manifest, signature=signer.sign(key, manifest.to_json(signed=False)))
        self._put_bytes(_manifest_name(key), manifest.to_json())
        return manifest

    def list_artifacts(self, prefix: str = "") -> list[str]:
        """Sorted keys of the complete artifacts whose key starts with ``prefix`` (a plain string
        prefix: ``"runs/pilot-"`` matches ``runs/pilot-01``; end it with ``/`` to stay in a folder)."""
        suffix = "/" + MANIFEST_NAME
        keys = (
            name[: -len(suffix)] for name in self._names(_validate_prefix(prefix)) if name.endswith(suffix)
        )
        return sorted(key for key in keys if key.startswith(prefix))

    def delete(self, key: str) -> None:
        """Remove the artifact (manifest first) and any leftovers of an interrupted upload; a key
        with nothing stored is not an error."""
        self._retire(validate_key(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store one small object (a JSON report, a run record) atomically, without a manifest."""
        self._put_bytes(validate_key(key), bytes(data))

    def get_bytes(self, key: str) -> bytes:
        return self._get_bytes(validate_key(key))

    def url_for(self, key: str) -> str:
        """Absolute URL of ``key`` (``s3://bucket/prefix/key`` or ``file:///root/key``)."""
        return self._url(validate_key(key))

    # Shared steps -----------------------------------------------------------------------------

    signer: ManifestSigner | None = None
    """Signs and verifies manifests; set by backends from ``$MODOMODO_STORE_HMAC_KEY`` by default."""

    def _signed(self, key: str, manifest: Manifest) -> Manifest:
        if self.signer is None:
            return manifest
        return replace(manifest, signature=self.signer.sign(key, manifest.to_json(signed=False)))

    def _retire(self, key: str) -> None:
        # Manifest first: from this instant readers no longer see the old artifact.
        self._delete(_manifest_name(key))
        self._delete_tree(key)

    def _check_not_nested(self, key: str) -> None:
        segments = key.split("/")
        for depth in range(1, len(segments)):
            ancestor = "/".join(segments[:depth])
            if self._has(_manifest_name(ancestor)):
                raise InvalidKeyError(f"artifact key {key!r} lies inside the artifact {ancestor!r}")
        inner = self.list_artifacts(key + "/")
        if inner:
            raise InvalidKeyError(f"artifact key {key!r} would contain the artifacts {inner}")

    # Backend primitives -----------------------------------------------------------------------

    @abstractmethod
    def _staging(self, key: str) -> AbstractContextManager[str]:
        """Context manager yielding the name prefix new files of ``key`` (its manifest last) are
        written under. On success the new artifact is at ``key/`` afterwards and the old one gone."""

    @abstractmethod
    def _put_file(self, src: Path, name: str) -> tuple[int, str]:
        """Store a local file; return (size, sha256) of the bytes stored."""

    @abstractmethod
    def _get_file(self, name: str, dest: Path) -> None:
        """Download an object to ``dest``; :class:`ArtifactNotFoundError` if it is missing."""

    @abstractmethod
    def _put_bytes(self, name: str, data: bytes) -> None:
        """Write a whole object atomically."""

    @abstractmethod
    def _get_bytes(self, name: str) -> bytes:
        """Read a whole object; :class:`ArtifactNotFoundError` if it is missing."""

    @abstractmethod
    def _has(self, name: str) -> bool: ...

    @abstractmethod
    def _names(self, prefix: str) -> Iterator[str]:
        """Every object name starting with ``prefix`` (unordered)."""

    @abstractmethod
    def _delete(self, name: str) -> None:
        """Delete one object; a missing one is not an error."""

    @abstractmethod
    def _delete_tree(self, key: str) -> None:
        """Delete every object under ``key/``."""

    @abstractmethod
    def _url(self, name: str) -> str: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


class LocalStore(ArtifactStore):
    """Artifacts as folders under a local root (also a shared volume or PVC mount).

    ``put_dir`` copies into ``<root>/.staging/<uuid>`` (manifest included) and swaps the folder
    with the old artifact in one atomic ``renameat2(RENAME_EXCHANGE)``, so at every instant, even
    under SIGKILL, the key holds the complete old or the complete new artifact. Each staging folder
    is guarded by an ``flock`` on ``<uuid>.lock``: the next ``put_dir`` removes staging folders whose
    owner died (the lock is free), never one still being written.
    """

    def __init__(self, root: Path, *, signer: ManifestSigner | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = self.root.as_uri()
        self.signer = signer or ManifestSigner.from_env()

    @contextmanager
    def _staging(self, key: str) -> Iterator[str]:
        area = self.root / _STAGING_DIR
        area.mkdir(parents=True, exist_ok=True)
        self._remove_dead_staging(area)
        name = uuid.uuid4().hex
        lock_path = area / f"{name}.lock"
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # held until this put ends, or its process dies
            staging = area / name
            staging.mkdir()
            try:
                yield staging.relative_to(self.root).as_posix()
                target = self.root / key
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    _exchange(staging, target)  # staging now holds the old artifact
                else:
                    staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
                lock_path.unlink(missing_ok=True)

    @staticmethod
    def _remove_dead_staging(area: Path) -> None:
        """Remove the staging folders of puts that were killed (their lock is free)."""
        for lock_path in area.glob("*.lock"):
            with lock_path.open("a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a put in progress
                shutil.rmtree(area / lock_path.stem, ignore_errors=True)
                lock_path.unlink(missing_ok=True)

    def _put_file(self, src: Path, name: str) -> tuple[int, str]:
        # Hash the bytes as they are copied, so the manifest describes exactly what was stored.
        dest = self.root / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with src.open("rb") as fin, dest.open("wb") as fout:
            while chunk := fin.read(_HASH_CHUNK):
                digest.update(chunk)
                fout.write(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def _get_file(self, name: str, dest: Path) -> None:
        try:
            shutil.copyfile(self.root / name, dest)
        except FileNotFoundError as exc:
            raise ArtifactNotFoundError(f"{self._url(name)} does not exist") from exc

    def _put_bytes(self, name: str, data: bytes) -> None:
        path = self.root / name
        if path.is_dir():  # on S3 an object and a "folder" of the same name can coexist
            raise InvalidKeyError(
                f"{self._url(name)} holds an artifact (a folder); put_bytes stores single objects "
                "under other keys (delete the artifact first to reuse its key)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _get_bytes(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ArtifactNotFoundError(f"{self._url(name)} does not exist") from exc

    def _has(self, name: str) -> bool:
        return (self.root / name).is_file()

    def _names(self, prefix: str) -> Iterator[str]:
        head, _, _ = prefix.rpartition("/")
        base = self.root / head
        for dirpath, dirnames, filenames in os.walk(base):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            if rel_dir == ".":
                rel_dir = ""
                dirnames[:] = [d for d in dirnames if d != _STAGING_DIR]
            for filename in filenames:
                name = f"{rel_dir}/{filename}" if rel_dir else filename
                if name.startswith(prefix):
                    yield name

    def _delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def _delete_tree(self, key: str) -> None:
        path = self.root / key
        if path.is_dir():
            shutil.rmtree(path)

    def _url(self, name: str) -> str:
        return (self.root / name).as_uri()


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd = -100
    if libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        errno = ctypes.get_errno()
        raise StoreError(
            f"cannot swap {b} for its new version atomically ({os.strerror(errno)}); the local store "
            "needs a Linux filesystem with renameat2 RENAME_EXCHANGE (ext4, xfs, btrfs, tmpfs)"
        )


_TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "InternalError",
        "ServiceUnavailable",
    }
)
_ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AllAccessDisabled",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: boto3 hides the real error in the context of S3UploadFailedError
    and in ``last_exception`` of RetriesExceededError."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "last_exception", None) or current.__cause__ or current.__context__


def _client_error(exc: BaseException) -> botocore.exceptions.ClientError | None:
    return next((e for e in _causes(exc) if isinstance(e, botocore.exceptions.ClientError)), None)


def _is_transient_s3_error(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError):
            return True
        if isinstance(cause, botocore.exceptions.ClientError):
            status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return cause.response.get("Error", {}).get("Code") in _TRANSIENT_CODES or status in (
                500,
                502,
                503,
                504,
            )
    return False


class S3Store(ArtifactStore):
    """Artifacts as objects under ``s3://bucket/prefix/`` on AWS S3 or any S3-compatible server.

    Large files use multipart transfers; every request is retried by botocore (``standard`` mode)
    and every whole-file operation once more by :class:`RetryPolicy` on transient failures.
    Unset arguments come from the environment: endpoint from ``MODOMODO_S3_ENDPOINT`` or
    ``AWS_ENDPOINT_URL``, region from ``AWS_REGION``/``AWS_DEFAULT_REGION`` (else us-east-1),
    credentials from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    profiles, pod identity).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        multipart_threshold: int = 64 * 2**20,
        multipart_chunksize: int = 16 * 2**20,
        max_concurrency: int = 4,
        max_attempts: int = 5,
        retry: RetryPolicy = RetryPolicy(),
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        signer: ManifestSigner | None = None,
    ) -> None:
        if not bucket:
            raise InvalidStoreUriError("S3Store needs a bucket name")
        if (access_key is None) != (secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither (then the environment is used)")
        self.bucket = bucket
        self.prefix = _validate_relpath(prefix, "S3 prefix") if prefix else ""
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.endpoint_url = (
            endpoint_url or os.environ.get("MODOMODO_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
        )
        self.retry = retry
        self.signer = signer or ManifestSigner.from_env()
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
        )
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        # A private session: boto3's default session is not thread-safe and may carry other settings.
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self._client = session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            config=BotoConfig(
                retries={"max_attempts": max_attempts, "mode": "standard"},
                # S3-compatible servers (SeaweedFS, MinIO, Ceph) rarely resolve virtual-host buckets.
                s3={"addressing_style": "path"},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                max_pool_connections=max(10, max_concurrency),
            ),
        )

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one whole operation with retries, translating backend errors to store errors."""
        try:
            return self.retry.call(fn, is_transient=_is_transient_s3_error, what=what)
        except (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
            S3UploadFailedError,
            RetriesExceededError,
        ) as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: Exception, what: str) -> StoreError:
        endpoint = redact_url(self.endpoint_url) or "AWS S3"
        if isinstance(
            exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
        ):
            return StoreAccessError(
                f"{what}: no S3 credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or pass access_key/secret_key"
            )
        error = _client_error(exc)
        if error is None:
            return StoreError(f"{what}: {type(exc).__name__}: {redact_text(str(exc))} (endpoint {endpoint})")
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _ACCESS_CODES or status == 403:
            return StoreAccessError(
                f"{what}: {endpoint} refused access to s3://{self.bucket} ({code}: {message}); check the "
                "access key and secret (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the store's arguments) "
                "and the bucket policy"
            )
        if code == "NoSuchBucket":
            return StoreError(f"{what}: bucket {self.bucket!r} does not exist on {endpoint}")
        if code in _NOT_FOUND_CODES or status == 404:
            return ArtifactNotFoundError(f"{what}: not found")
        return StoreError(f"{what}: {endpoint} answered {code or status}: {redact_text(message or str(exc))}")

    @contextmanager
    def _staging(self, key: str) -> Iterator[str]:
        # S3 has no rename: retire the old artifact, then upload in place; the manifest comes last.
        self._retire(key)
        yield key

    def _put_file(self, src: Path, name: str) -> tuple[int, str]:
        size, sha256 = _sha256_file(src)
        self._call(
            f"upload {src} to {self._url(name)}",
            lambda: self._client.upload_file(
                str(src), self.bucket, self._key(name), Config=self.transfer_config
            ),
        )
        return size, sha256

    def _get_file(self, name: str, dest: Path) -> None:
        self._call(
            f"download {self._url(name)}",
            lambda: self._client.download_file(
                self.bucket, self._key(name), str(dest), Config=self.transfer_config
            ),
        )

    def _put_bytes(self, name: str, data: bytes) -> None:
        self._call(
            f"write {self._url(name)}",
            lambda: self._client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data),
        )

    def _get_bytes(self, name: str) -> bytes:
        return self._call(
            f"read {self._url(name)}",
            lambda: self._client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read(),
        )

    def _has(self, name: str) -> bool:
        try:
            self._call(
                f"check {self._url(name)}",
                lambda: self._client.head_object(Bucket=self.bucket, Key=self._key(name)),
            )
        except ArtifactNotFoundError:
            return False
        return True

    def _names(self, prefix: str) -> Iterator[str]:
        skip = len(self._key(""))
        paginator = self._client.get_paginator("list_objects_v2")
        pages = self._call(
            f"list {self._url(prefix) if prefix else self.uri}",
            lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix))),
        )
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"][skip:]

    def _delete(self, name: str) -> None:
        self._call(
            f"delete {self._url(name)}",
            lambda: self._client.delete_object(Bucket=self.bucket, Key=self._key(name)),
        )

    def _delete_tree(self, key: str) -> None:
        names = list(self._names(key + "/"))
        for start in range(0, len(names), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": self._key(n)} for n in names[start : start + 1000]]
            response = self._call(
                f"delete {len(batch)} objects under {self._url(key)}/",
                lambda batch=batch: self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                ),
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StoreError(
                    f"could not delete {len(response['Errors'])} objects under {self._url(key)}/, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

    def _url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"
