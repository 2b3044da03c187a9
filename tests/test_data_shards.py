"""Parquet shards: lossless round trip, deterministic bytes, clear errors on foreign files."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modomodo.data.shards import (
    SHARD_SCHEMA,
    ShardFormatError,
    iter_shard,
    read_shard,
    sha256_file,
    write_shard,
)
from modomodo.data.synthetic import generate


def _mixed(seed: int):
    return [e for name in ("det", "geo", "spatial", "sci") for e in generate(name, "train", 10, seed)]


def test_round_trip_keeps_every_field(tmp_path):
    examples = _mixed(0)
    written = write_shard(examples, tmp_path / "a" / "train-00000.parquet")
    assert written.rows == len(examples) and written.sha256 == sha256_file(written.path)
    assert read_shard(written.path) == examples
    assert list(iter_shard(written.path, batch_size=3)) == examples
    assert [p.name for p in written.path.parent.iterdir()] == ["train-00000.parquet"]  # no partial file left


def test_same_examples_give_identical_bytes_and_other_seeds_do_not(tmp_path):
    first = write_shard(_mixed(0), tmp_path / "1.parquet")
    again = write_shard(generate("det", "train", 10, 0) + _mixed(0)[10:], tmp_path / "2.parquet")
    other = write_shard(_mixed(1), tmp_path / "3.parquet")
    assert first.path.read_bytes() == again.path.read_bytes()
    assert first.sha256 == again.sha256 != other.sha256


def test_columns_follow_the_schema_and_meta_is_sorted_json(tmp_path):
    path = write_shard(_mixed(0)[:3], tmp_path / "s.parquet").path
    table = pq.read_table(path)
    assert table.schema.equals(SHARD_SCHEMA, check_metadata=False)
    meta = table.column("meta").to_pylist()[0]
    assert meta == json.dumps(json.loads(meta), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_empty_shard_round_trips(tmp_path):
    written = write_shard([], tmp_path / "empty.parquet")
    assert written.rows == 0 and read_shard(written.path) == []


def test_foreign_files_are_refused_with_a_clear_error(tmp_path):
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"id": ["x"], "image": [b""]}), other)
    with pytest.raises(ShardFormatError, match="do not match the shard schema"):
        read_shard(other)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(ShardFormatError, match="not a readable Parquet file"):
        read_shard(junk)
