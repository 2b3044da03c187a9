"""Shards: examples as Parquet files with deterministic bytes.

One row per :class:`~modomodo.data.schema.Example`, columns in :data:`SHARD_SCHEMA` (the image as
PNG or JPEG bytes, ``options`` as a list of strings, ``meta`` as a JSON object with sorted keys). A shard
holding a multi-image example (MMMU) has one more column, ``extra_images`` (:data:`MULTI_IMAGE_SCHEMA`);
a shard of single-image examples is written without it, so its bytes are the ones it always had,
and shards written before the column existed read as they did. Written
with fixed compression, row-group size and column order, and no timestamps, so the same examples
give the same bytes and a shard's SHA-256 identifies its content. No pickle anywhere.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import pyarrow as pa
import pyarrow.parquet as pq

from modomodo.data.schema import Example

SHARD_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("domain", pa.string()),
        ("image", pa.binary()),
        ("problem", pa.string()),
        ("solution", pa.string()),
        ("answer_kind", pa.string()),
        ("options", pa.list_(pa.string())),
        ("meta", pa.string()),
    ]
)
"""Column names and types of every shard, in file order."""
MULTI_IMAGE_SCHEMA = SHARD_SCHEMA.append(pa.field("extra_images", pa.list_(pa.binary())))
"""A shard with a multi-image example: :data:`SHARD_SCHEMA` plus each row's images after the first."""
_SCHEMAS = (SHARD_SCHEMA, MULTI_IMAGE_SCHEMA)
ROW_GROUP_SIZE = 1024
ROW_GROUP_BYTES = 4 << 20
"""A row group also closes once its images reach this many bytes (see :class:`ShardWriter`)."""
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3


class ShardFormatError(ValueError):
    """A file is not a shard of this schema."""


@dataclass(frozen=True)
class WrittenShard:
    """A shard on disk: where, how many rows, and the SHA-256 of its bytes."""

    path: Path
    rows: int
    sha256: str


def write_shard(examples: Iterable[Example], path: str | Path) -> WrittenShard:
    """Write ``examples`` in the given order to a Parquet shard at ``path``, atomically.

    The file appears only once complete (written beside it, then renamed), so a reader never sees a
    partial shard. Rows are streamed: at most one row group is held in memory (:class:`ShardWriter`).
    """
    with ShardWriter(path) as writer:
        for ex in examples:
            writer.add(ex)
    return writer.written


class ShardWriter:
    """Streams examples into one shard, a row group at a time, and renames it into place on close.

    A row group closes at :data:`ROW_GROUP_SIZE` rows or :data:`ROW_GROUP_BYTES` of image bytes,
    whichever comes first: memory stays bounded for large images, and a reader that wants one row
    (:class:`ShardRows`) decompresses a few MiB, not a thousand 640 px images. Small images (the
    synthetic suite's) never reach the byte bound, so their shards keep the bytes they always had.
    An exception inside ``with`` removes the partial file and leaves no shard.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = self.path.with_name(f".{self.path.name}.partial")
        self._writer: pq.ParquetWriter | None = None  # opened at the first row group: its schema
        self._schema = SHARD_SCHEMA  # depends on whether the shard holds multi-image rows
        self._columns: dict[str, list] = {name: [] for name in MULTI_IMAGE_SCHEMA.names}
        self._group_bytes = 0
        self.rows = 0
        self.written: WrittenShard | None = None

    def add(self, ex: Example) -> None:
        columns = self._columns
        columns["id"].append(ex.id)
        columns["domain"].append(ex.domain)
        columns["image"].append(ex.image)
        columns["problem"].append(ex.problem)
        columns["solution"].append(ex.solution)
        columns["answer_kind"].append(ex.answer_kind)
        columns["options"].append(list(ex.options))
        columns["meta"].append(encode_meta(ex.meta))
        columns["extra_images"].append(list(ex.extra_images))
        self.rows += 1
        self._group_bytes += sum(map(len, ex.images))
        if len(columns["id"]) == ROW_GROUP_SIZE or self._group_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def close(self) -> WrittenShard:
        if self.rows == 0:  # an empty shard still gets its (empty) table, as write_table writes it
            self._write()
        self._flush()
        self._writer.close()
        os.replace(self._partial, self.path)
        self.written = WrittenShard(self.path, self.rows, sha256_file(self.path))
        return self.written

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def _flush(self) -> None:
        if not self._columns["id"]:
            return
        self._write()
        self._columns = {name: [] for name in MULTI_IMAGE_SCHEMA.names}
        self._group_bytes = 0

    def _write(self) -> None:
        """The buffered rows as one row group, in the narrow schema until a row has extra images."""
        wide = any(self._columns["extra_images"])
        if self._writer is None:
            self._open(MULTI_IMAGE_SCHEMA if wide else SHARD_SCHEMA)
        elif wide and self._schema is SHARD_SCHEMA:
            self._widen()
        columns = {name: self._columns[name] for name in self._schema.names}
        self._writer.write_table(pa.table(columns, schema=self._schema), row_group_size=ROW_GROUP_SIZE)

    def _open(self, schema: pa.Schema) -> None:
        self._schema = schema
        self._writer = pq.ParquetWriter(
            self._partial, schema, compression=COMPRESSION, compression_level=COMPRESSION_LEVEL
        )

    def _widen(self) -> None:
        """A multi-image row after single-image row groups: rewrite those groups with an empty
        ``extra_images`` column, one group at a time (memory stays one row group)."""
        self._writer.close()
        narrow = self._partial.with_name(self._partial.name + ".narrow")
        os.replace(self._partial, narrow)
        try:
            self._open(MULTI_IMAGE_SCHEMA)
            with pq.ParquetFile(narrow, pre_buffer=False) as written:
                for g in range(written.num_row_groups):
                    group = written.read_row_group(g)
                    empty = pa.array([[]] * group.num_rows, type=pa.list_(pa.binary()))
                    self._writer.write_table(
                        group.append_column("extra_images", empty), row_group_size=ROW_GROUP_SIZE
                    )
        finally:
            narrow.unlink(missing_ok=True)


def read_shard(path: str | Path) -> list[Example]:
    """All examples of a shard, in file order."""
    return list(iter_shard(path))


def iter_shard(path: str | Path, batch_size: int = 256) -> Iterator[Example]:
    """Stream the examples of a shard, ``batch_size`` rows in memory at a time."""
    parquet = _open_shard(Path(path))
    for batch in parquet.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            yield _example(row)


def _open_shard(path: Path) -> pq.ParquetFile:
    try:
        parquet = pq.ParquetFile(path, pre_buffer=False)  # memory: see sources._parquet_rows
    except (OSError, pa.ArrowException) as exc:
        raise ShardFormatError(f"{path}: not a readable Parquet file ({exc})") from exc
    schema = parquet.schema_arrow
    if not any(schema.equals(known, check_metadata=False) for known in _SCHEMAS):
        raise ShardFormatError(
            f"{path}: columns {schema} do not match the shard schema {SHARD_SCHEMA} "
            "(with or without extra_images)"
        )
    return parquet


def _example(row: dict) -> Example:
    return Example(
        id=row["id"],
        domain=row["domain"],
        image=row["image"],
        problem=row["problem"],
        solution=row["solution"],
        answer_kind=row["answer_kind"],
        options=tuple(row["options"]),
        meta=json.loads(row["meta"]),
        extra_images=tuple(row.get("extra_images") or ()),  # absent in single-image shards
    )


class ShardRows(Sequence[Example]):
    """The rows of some shards, end to end, read by index without loading them all.

    Only the footers are read up front; ``rows[i]`` reads the one row group holding row ``i`` and
    keeps the last ``cached_groups`` of them, so memory is a few row groups however many rows the
    shards hold or how often they are read (the RL prompt dataset reads its schedule this way).
    """

    def __init__(self, paths: Sequence[str | Path], cached_groups: int = 4) -> None:
        self._paths = [Path(p) for p in paths]
        self._files = [_open_shard(p) for p in self._paths]
        self._groups: list[tuple[int, int]] = []  # (file, row group) in row order
        starts = [0]
        for f, parquet in enumerate(self._files):
            for g in range(parquet.num_row_groups):
                self._groups.append((f, g))
                starts.append(starts[-1] + parquet.metadata.row_group(g).num_rows)
        self._starts = starts
        self._cache: OrderedDict[int, pa.Table] = OrderedDict()
        self._cached_groups = cached_groups

    def __len__(self) -> int:
        return self._starts[-1]

    def __reduce__(self):
        """Pickled as its paths (files are reopened): cheap to send, and what ``datasets`` hashes
        to fingerprint a dataset that reads from it."""
        return ShardRows, (self._paths, self._cached_groups)

    @overload
    def __getitem__(self, index: int) -> Example: ...
    @overload
    def __getitem__(self, index: slice) -> list[Example]: ...
    def __getitem__(self, index: int | slice) -> Example | list[Example]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"row {index} of {len(self)}")
        group = bisect.bisect_right(self._starts, index) - 1
        table = self._cache.pop(group, None)
        if table is None:
            f, g = self._groups[group]
            table = self._files[f].read_row_group(g)
            while len(self._cache) >= self._cached_groups:
                self._cache.popitem(last=False)
        self._cache[group] = table
        return _example(table.slice(index - self._starts[group], 1).to_pylist()[0])

    def __iter__(self) -> Iterator[Example]:
        for parquet in self._files:
            for batch in parquet.iter_batches(batch_size=256):
                yield from map(_example, batch.to_pylist())


def encode_meta(meta: dict[str, str]) -> str:
    """``meta`` as compact JSON with sorted keys (the same dict always gives the same text)."""
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
