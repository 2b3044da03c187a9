"""An artifact's manifest (every file with size and sha256, written last) and its HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modomodo.store.errors import (
    ManifestSignatureError,
    StoreError,
)
from modomodo.store.keys import _validate_relpath

MANIFEST_FORMAT_VERSION = 1
"""Bumped when the manifest layout changes incompatibly; readers refuse newer versions."""

HMAC_KEY_ENV = "MODOMODO_STORE_HMAC_KEY"
"""Signs new manifests and verifies stored ones; set from the pod's Secret."""
HMAC_OLD_KEYS_ENV = "MODOMODO_STORE_HMAC_OLD_KEYS"
"""Comma-separated keys that still verify (never sign) while a key is being rotated out."""
HMAC_MIN_KEY_BYTES = 32
_SIGNATURE_ALGORITHM = "hmac-sha256"


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
