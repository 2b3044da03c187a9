"""Sources named by an ``s3://bucket/key`` URI: fetched into the dataset cache, then read as a
local path.

The URI names one object (a ``.parquet`` or ``.jsonl`` file) or, when no object has exactly that
key, every object under ``key/``: a ``save_to_disk`` folder, or a folder of Parquet/JSONL files
with the image files a JSONL names. :func:`locate_s3` lists what the URI names and checks it,
writing nothing; :meth:`S3Source.fetch` downloads it.

The S3 client is the artifact store's (:class:`~modomodo.store.S3Store`), with its settings and
retries: endpoint from ``MODOMODO_S3_ENDPOINT`` or ``AWS_ENDPOINT_URL`` (unset: AWS), region from
``AWS_REGION``/``AWS_DEFAULT_REGION``, credentials from boto3's chain (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, a profile, pod identity). Unlike a store artifact the objects have no
manifest: a copy is identified by the listing (each object's name, size and ETag), reused while
that listing is unchanged, and each downloaded file is checked against its listed size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from modomodo.data.dataset_cache import cached_download
from modomodo.data.sources import SourceError

SCHEME = "s3://"
FILE_SUFFIXES = (".parquet", ".jsonl")
"""What a single object may be; a ``save_to_disk`` dataset is a folder, named by its prefix."""
CACHE_FOLDER = ".s3"
"""Subfolder of the dataset cache for ``s3://`` sources: a store key never starts with a dot,
so it cannot collide with the store artifacts fetched beside it."""


def is_s3_uri(path: str | Path) -> bool:
    return str(path).startswith(SCHEME)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; the key is a clean relative path (a trailing
    ``/`` is dropped). Raises :class:`SourceError` naming the URI."""
    from modomodo.store import InvalidKeyError
    from modomodo.store.keys import _validate_relpath

    bucket, _, key = uri.removeprefix(SCHEME).partition("/")
    if not uri.startswith(SCHEME) or not bucket or not key.rstrip("/"):
        raise SourceError(f"{uri}: expected s3://BUCKET/KEY (an object or a prefix)")
    try:
        return bucket, _validate_relpath(key.rstrip("/"), "key")
    except InvalidKeyError as exc:
        raise SourceError(f"{uri}: {exc}") from None


@dataclass(frozen=True)
class S3Source:
    """What an ``s3://`` URI names, as listed: one object or the objects under a prefix."""

    uri: str
    bucket: str
    key: str
    objects: tuple[tuple[str, int, str], ...]
    """``(name, size, ETag)`` of each object to fetch; ``name`` relative to the key's folder."""
    single: bool
    """The URI names one object (its ``name`` is the file name), not a prefix."""

    @property
    def fingerprint(self) -> str:
        listing = "\n".join(f"{name}\t{size}\t{etag}" for name, size, etag in self.objects)
        return hashlib.sha256(f"{self.uri}\n{listing}".encode()).hexdigest()

    def fetch(self, cache_dir: str | Path, store=None) -> Path:
        """Download into ``<cache_dir>/.s3/<bucket>/<name>-<hash of the URI>`` (all objects into a
        temporary folder renamed into place once complete, :func:`cached_download`) and return
        the local path: the file of a single object, else the folder. ``store`` is the client
        :func:`locate_s3` used (None: a new one from the environment)."""
        store = store or _client(self.bucket)
        name = PurePosixPath(self.key).name
        dest = (
            Path(cache_dir)
            / CACHE_FOLDER
            / self.bucket
            / f"{name}-{hashlib.sha256(self.key.encode()).hexdigest()[:16]}"
        )
        folder = cached_download(dest, self.fingerprint, lambda building: self._download(store, building))
        return folder / self.objects[0][0] if self.single else folder

    def _download(self, store, folder: Path) -> None:
        from modomodo.store import StoreError

        for name, size, _etag in self.objects:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            remote = self.key if self.single else f"{self.key}/{name}"
            try:
                store.download_object(remote, target)
            except StoreError as exc:  # its message names the object's URI
                raise SourceError(str(exc)) from exc
            got = target.stat().st_size
            if got != size:
                raise SourceError(f"{self.uri}: {name} arrived with {got} bytes, the listing says {size}")


def locate_s3(uri: str, store=None) -> S3Source:
    """List what ``uri`` names, writing nothing. Raises :class:`SourceError` naming the URI when
    the bucket does not exist, no object or prefix has that key, an object is not a Parquet or
    JSONL file, an object under the prefix has a key that is no clean relative path, there are
    no credentials, or the endpoint cannot be reached. ``store``: an ``S3Store`` on the bucket
    (None: one from the environment, as the artifact store builds it)."""
    from modomodo.store import InvalidKeyError, StoreError
    from modomodo.store.keys import _validate_relpath

    bucket, key = parse_s3_uri(uri)
    store = store or _client(bucket)
    try:
        listed = store.list_objects(key)
    except StoreError as exc:  # "list s3://bucket/key: ..."
        raise SourceError(str(exc)) from exc
    exact = [(size, etag) for name, size, etag in listed if name == key]
    if exact and key.endswith(FILE_SUFFIXES) and not uri.endswith("/"):  # a trailing / asks for the prefix
        ((size, etag),) = exact
        return S3Source(uri, bucket, key, ((PurePosixPath(key).name, size, etag),), single=True)
    inside = [(name[len(key) + 1 :], size, etag) for name, size, etag in listed if name.startswith(f"{key}/")]
    inside = [entry for entry in inside if not entry[0].endswith("/")]  # folder markers of some tools
    if not inside and exact:
        raise SourceError(
            f"{uri}: an object must be a {' or '.join(FILE_SUFFIXES)} file; name the prefix of a "
            "save_to_disk folder (or of a folder of files) instead"
        )
    if not inside:
        raise SourceError(f"{uri}: no object and no prefix {key}/ in bucket {bucket!r}")
    for name, _size, _etag in inside:
        try:
            _validate_relpath(name, "object name")
        except InvalidKeyError as exc:
            raise SourceError(f"{uri}: object {key}/{name} cannot be a local file ({exc})") from None
    return S3Source(uri, bucket, key, tuple(sorted(inside)), single=False)


def fetch_s3(uri: str, cache_dir: str | Path) -> Path:
    """:func:`locate_s3` then :meth:`S3Source.fetch`: the local path to read for ``uri``."""
    store = _client(parse_s3_uri(uri)[0])
    return locate_s3(uri, store).fetch(cache_dir, store)


def _client(bucket: str):
    from modomodo.store import S3Store

    return S3Store(bucket)
