"""The artifact store's interface: put, get, list and delete artifacts; backends implement the ``_`` primitives."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modomodo.store.errors import (
    ArtifactNotFoundError,
    ChecksumError,
    InvalidKeyError,
)
from modomodo.store.keys import (
    MANIFEST_NAME,
    _validate_prefix,
    _validate_relpath,
    parse_store_uri,
    validate_key,
)
from modomodo.store.manifest import (
    HMAC_KEY_ENV,
    FileEntry,
    Manifest,
    ManifestSigner,
)

logger = logging.getLogger(__name__)


_HASH_CHUNK = 1 << 20


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
            from modomodo.store.s3 import S3Store  # loads boto3: only for a store on S3

            return S3Store(where, prefix, **kwargs)
        from modomodo.store.local import LocalStore

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
