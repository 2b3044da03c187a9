"""Artifact keys and store URIs: what a key may look like, checked before any I/O."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from modomodo.redact import redact_url
from modomodo.store.errors import (
    InvalidKeyError,
    InvalidStoreUriError,
)

MANIFEST_NAME = "MANIFEST.json"
"""Each artifact's manifest file: reserved, no key segment may be called so."""
MAX_KEY_BYTES = 768
"""S3 keys hold at most 1,024 bytes; this leaves room for the store's prefix and the file paths
inside an artifact."""
MAX_SEGMENT_BYTES = 255
"""Longest file name on common filesystems (ext4, xfs)."""
MAX_KEY_SEGMENTS = 32


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
