"""The local backend: artifacts as folders, swapped into place atomically."""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modomodo.store.base import (
    _HASH_CHUNK,
    ArtifactStore,
)
from modomodo.store.errors import (
    ArtifactNotFoundError,
    InvalidKeyError,
    StoreError,
)
from modomodo.store.manifest import (
    ManifestSigner,
)

_STAGING_DIR = ".staging"
"""Local stores build artifacts here before renaming them into place (keys cannot start with '.')."""


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
