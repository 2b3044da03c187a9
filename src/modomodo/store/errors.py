"""What goes wrong with a store, as exceptions callers can tell apart."""

from __future__ import annotations


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
