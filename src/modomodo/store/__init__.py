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

from modomodo.store.base import ArtifactStore
from modomodo.store.errors import (
    ArtifactNotFoundError,
    ChecksumError,
    InvalidKeyError,
    InvalidStoreUriError,
    ManifestSignatureError,
    StoreAccessError,
    StoreError,
)
from modomodo.store.keys import MANIFEST_NAME, parse_store_uri, validate_key, validate_run_id
from modomodo.store.local import LocalStore
from modomodo.store.manifest import (
    HMAC_KEY_ENV,
    HMAC_OLD_KEYS_ENV,
    FileEntry,
    Manifest,
    ManifestSigner,
)

__all__ = [
    "HMAC_KEY_ENV",
    "HMAC_OLD_KEYS_ENV",
    "MANIFEST_NAME",
    "ArtifactNotFoundError",
    "ArtifactStore",
    "ChecksumError",
    "FileEntry",
    "InvalidKeyError",
    "InvalidStoreUriError",
    "LocalStore",
    "Manifest",
    "ManifestSignatureError",
    "ManifestSigner",
    "S3Store",
    "StoreAccessError",
    "StoreError",
    "parse_store_uri",
    "validate_key",
    "validate_run_id",
]


def __getattr__(name: str) -> object:
    # The S3 backend loads boto3: only a store that talks to S3 pays for it.
    if name == "S3Store":
        from modomodo.store.s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
