"""Read a published dataset (``save_to_disk`` folder, Parquet, JSONL) through its layout.

Files are read by :func:`modomodo.data.sources.read_raw_records` (every ``{bytes, path}`` image
column unpacked to bytes, JSONL images as that reader documents). A source with a schema (a saved
dataset, a Parquet file) whose columns are not the layout's is refused before any row is read with
a :class:`LayoutError` naming the missing and unexpected columns; a JSONL row that differs, or any
row that cannot be adapted, becomes a :class:`Record` with an ``error`` (curation quarantines it).

Only local paths are read here; ``s3://`` paths are refused (no fsspec S3 backend is installed).
A dataset on S3 is fetched into a local cache first: a raw object or prefix with
:func:`modomodo.data.s3_source.fetch_s3`, a store artifact (``ArtifactStore.put_dir``) with
:func:`fetch_dataset`, which verifies every checksum.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from modomodo.data.dataset_cache import cached_download
from modomodo.data.layouts.base import Frame, Layout, LayoutError, adapt_row
from modomodo.data.sources import Record, SourceError, read_raw_records
from modomodo.store import ArtifactStore


def read_layout(
    path: str | Path,
    layout: Layout,
    *,
    frame: Frame | None = None,
    external_images: bool = False,
) -> Iterator[Record]:
    """The rows at ``path`` as Example-field records (or error records).

    The source and its schema are checked at once; rows are read lazily. ``frame`` overrides the
    layout's box frame for this source.
    """
    if str(path).startswith("s3://"):
        raise SourceError(
            f"{path}: s3:// paths are not read directly; read the local copy "
            "modomodo.data.s3_source.fetch_s3 returns (or upload the dataset as a store artifact and "
            "read the folder fetch_dataset returns)"
        )
    check_schema(path, layout)
    records = read_raw_records(path, external_images=external_images)
    return (
        record if record.error else adapt_row(layout, record.fields, record.origin, frame=frame)
        for record in records
    )


def check_schema(path: str | Path, layout: Layout) -> None:
    """Refuse a saved dataset or Parquet file whose columns are not ``layout``'s (JSONL has no
    schema: its rows are checked one by one)."""
    path = Path(path)
    columns: list[str] | None = None
    if path.is_file() and path.suffix == ".parquet":
        try:
            columns = pq.read_schema(path).names
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc
    elif path.is_dir():
        columns = _dataset_columns(path)
    if columns is None:
        return
    problem = layout.column_problem(columns)
    if problem is not None:
        raise LayoutError(f"{path}: {problem}")


def _dataset_columns(path: Path) -> list[str] | None:
    import datasets  # heavy; only saved datasets need it

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        return None  # read_raw_records raises the clear error for a folder that is no dataset
    if isinstance(loaded, datasets.DatasetDict):
        if len(loaded) != 1:
            return None  # likewise: it asks for one split's folder
        # ``load_dataset(...).save_to_disk(...)`` of one split: read_raw_records reads that split.
        loaded = next(iter(loaded.values()))
    return list(loaded.column_names)


def fetch_dataset(store: ArtifactStore, key: str, cache_dir: str | Path) -> Path:
    """The dataset stored as artifact ``key`` (a ``save_to_disk`` folder, or a folder of Parquet or
    JSONL files), downloaded into ``cache_dir/<key>`` with every checksum verified; returns that folder.

    ``cache_dir`` belongs to this function: a copy whose manifest still matches the store's is
    reused, any other is replaced. The download lands in a temporary sibling first, so an
    interrupted fetch never leaves a partial dataset behind.
    """
    manifest = store.read_manifest(key)
    fingerprint = hashlib.sha256(manifest.to_json(signed=False)).hexdigest()
    return cached_download(Path(cache_dir) / key, fingerprint, lambda folder: store.get_dir(key, folder))
