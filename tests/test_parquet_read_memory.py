"""Reading a Parquet source or a curated shard holds a bounded amount, whatever the file's size.

pyarrow's ``ParquetFile`` pre-buffers by default and keeps every row group it has read cached until
the file is closed: a 12,500-row source of 50 KiB images grew curation to 868 MiB, 50,000 rows to
2.8 GiB (``benchmarks/curation.py``, docs/scale.md). The cache is Arrow memory, so its peak is
measured here with Arrow's own allocation counter, on a file and on one twice its length.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from modomodo.data.schema import Example
from modomodo.data.shards import ShardRows, ShardWriter, iter_shard
from modomodo.data.sources import read_raw_records

IMAGE_BYTES = 64 * 1024  # random, so incompressible: the files are as large as their images


def _peak_arrow_bytes(rows) -> tuple[int, int]:
    """Rows read, and the peak of Arrow's allocated bytes while reading them one by one."""
    peak, count = 0, 0
    for _ in rows:
        count += 1
        peak = max(peak, pa.total_allocated_bytes())
    return count, peak


def _source(path: Path, groups: int, rows: int = 16) -> Path:
    schema = pa.schema(
        [("id", pa.string()), ("image", pa.binary()), ("problem", pa.string()), ("solution", pa.string())]
    )
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        for g in range(groups):
            ids = [f"r{g}-{i}" for i in range(rows)]
            images = [os.urandom(IMAGE_BYTES) for _ in ids]
            writer.write_table(pa.table([ids, images, ["q"] * rows, ["a"] * rows], schema=schema))
    return path


def _shard(path: Path, rows: int) -> Path:
    with ShardWriter(path) as writer:  # a row group closes at 4 MiB of images: 64 rows here
        for i in range(rows):
            writer.add(Example(f"x{i}", "d", os.urandom(IMAGE_BYTES), "p", "s", "text"))
    return path


def test_a_parquet_source_is_read_in_memory_flat_in_its_length(tmp_path: Path):
    peaks = []
    for groups in (20, 40):  # 20 and 40 MiB, 1 MiB row groups
        count, peak = _peak_arrow_bytes(read_raw_records(_source(tmp_path / f"{groups}.parquet", groups)))
        assert count == groups * 16
        peaks.append(peak)
    assert peaks[1] <= 1.1 * peaks[0] + 2**20, [f"{p / 2**20:.1f} MiB" for p in peaks]
    assert peaks[1] < 8 * 2**20, f"{peaks[1] / 2**20:.1f} MiB of Arrow memory to read 1 MiB row groups"


def test_a_curated_shard_is_read_in_memory_flat_in_its_length(tmp_path: Path):
    for read in (iter_shard, lambda path: iter(ShardRows([path]))):
        peaks = []
        for rows in (640, 1280):  # 10 and 20 row groups of 4 MiB
            count, peak = _peak_arrow_bytes(read(_shard(tmp_path / f"{rows}.parquet", rows)))
            assert count == rows
            peaks.append(peak)
        assert peaks[1] <= 1.1 * peaks[0] + 2**20, [f"{p / 2**20:.1f} MiB" for p in peaks]
