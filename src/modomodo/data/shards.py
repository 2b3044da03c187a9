"""Shards: examples as Parquet files with deterministic bytes.

One row per :class:`~modomodo.data.schema.Example`, columns in :data:`SHARD_SCHEMA` (the image as
PNG bytes, ``options`` as a list of strings, ``meta`` as a JSON object with sorted keys). Written
with fixed compression, row-group size and column order, and no timestamps, so the same examples
give the same bytes and a shard's SHA-256 identifies its content. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

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
ROW_GROUP_SIZE = 1024
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
    partial shard.
    """
    path = Path(path)
    columns: dict[str, list] = {name: [] for name in SHARD_SCHEMA.names}
    for ex in examples:
        columns["id"].append(ex.id)
        columns["domain"].append(ex.domain)
        columns["image"].append(ex.image)
        columns["problem"].append(ex.problem)
        columns["solution"].append(ex.solution)
        columns["answer_kind"].append(ex.answer_kind)
        columns["options"].append(list(ex.options))
        columns["meta"].append(encode_meta(ex.meta))
    table = pa.table(columns, schema=SHARD_SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(
        table,
        partial,
        row_group_size=ROW_GROUP_SIZE,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
    )
    os.replace(partial, path)
    return WrittenShard(path, table.num_rows, sha256_file(path))


def read_shard(path: str | Path) -> list[Example]:
    """All examples of a shard, in file order."""
    return list(iter_shard(path))


def iter_shard(path: str | Path, batch_size: int = 256) -> Iterator[Example]:
    """Stream the examples of a shard, ``batch_size`` rows in memory at a time."""
    path = Path(path)
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise ShardFormatError(f"{path}: not a readable Parquet file ({exc})") from exc
    schema = parquet.schema_arrow
    if schema.names != SHARD_SCHEMA.names or not schema.equals(SHARD_SCHEMA, check_metadata=False):
        raise ShardFormatError(f"{path}: columns {schema} do not match the shard schema {SHARD_SCHEMA}")
    for batch in parquet.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            yield Example(
                id=row["id"],
                domain=row["domain"],
                image=row["image"],
                problem=row["problem"],
                solution=row["solution"],
                answer_kind=row["answer_kind"],
                options=tuple(row["options"]),
                meta=json.loads(row["meta"]),
            )


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
