"""Curation at scale: rows stream from source to shards with a bounded number of images in flight,
the output does not depend on the number of workers, and the streamed preprocessing steps make the
same rows and counts as the list ones."""

from __future__ import annotations

import io
import pickle
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import modomodo.data.curate as curate_module
import modomodo.data.record_checks as record_checks
import modomodo.data.source_steps as source_steps
from modomodo.data.curate import curate, open_curated, read_curated
from modomodo.data.preprocess import (
    StepStream,
    keep_with_image,
    keep_with_image_stream,
    resize_long_side,
    resize_long_side_stream,
    sample,
    sample_stream,
)
from modomodo.data.shards import (
    COMPRESSION,
    COMPRESSION_LEVEL,
    ROW_GROUP_SIZE,
    SHARD_SCHEMA,
    ShardRows,
    encode_meta,
    write_shard,
)
from modomodo.data.sources import Record, SourceSpec
from modomodo.data.streaming import ordered_map
from modomodo.data.synthetic import generate

SUITE = {
    "det": SourceSpec("synthetic", n_train=30, n_test=5),
    "geo": SourceSpec("synthetic", n_train=25),
    "chart": SourceSpec("synthetic", n_test=12),
}


def _files(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _old_shard_bytes(examples, path) -> bytes:
    """The shard as the writer before streaming wrote it: one table, ``pq.write_table``."""
    columns = {name: [] for name in SHARD_SCHEMA.names}
    for ex in examples:
        for name in ("id", "domain", "image", "problem", "solution", "answer_kind"):
            columns[name].append(getattr(ex, name))
        columns["options"].append(list(ex.options))
        columns["meta"].append(encode_meta(ex.meta))
    pq.write_table(
        pa.table(columns, schema=SHARD_SCHEMA),
        path,
        row_group_size=ROW_GROUP_SIZE,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
    )
    return path.read_bytes()


# --- ordered_map -----------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_ordered_map_keeps_order_and_bounds_what_is_in_flight(workers):
    pulled, running, peak_running = [0], [0], [0]
    lock = threading.Lock()

    def source():
        for i in range(60):
            pulled[0] += 1
            yield i

    def work(i):
        with lock:
            running[0] += 1
            peak_running[0] = max(peak_running[0], running[0])
        time.sleep(0.002 * (i % 3))  # out of order completion
        with lock:
            running[0] -= 1
        return i * i

    out, peak_ahead = [], 0
    for item, result in ordered_map(work, source(), workers=workers):
        peak_ahead = max(peak_ahead, pulled[0] - len(out))
        out.append((item, result))
    assert out == [(i, i * i) for i in range(60)]
    assert peak_ahead <= 2 * workers and peak_running[0] <= workers
    if workers > 1:
        assert peak_running[0] > 1, "the work never ran in parallel"


def test_ordered_map_raises_the_workers_error_and_the_sources():
    def fails(i):
        if i == 5:
            raise KeyError("row 5")
        return i

    with pytest.raises(KeyError, match="row 5"):
        list(ordered_map(fails, range(20), workers=3))

    def broken_source():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(ordered_map(str, broken_source(), workers=3))


# --- curation ----------------------------------------------------------------------------------------


def test_streamed_curation_is_byte_identical_whatever_the_workers_and_to_the_old_writer(tmp_path):
    one = curate(SUITE, tmp_path / "one", seed=3, shard_rows=7, workers=1)
    four = curate(SUITE, tmp_path / "four", seed=3, shard_rows=7, workers=4)
    assert one == four
    assert _files(tmp_path / "one") == _files(tmp_path / "four")
    for domain, split, n in [
        ("det", "train", 30),
        ("det", "test", 5),
        ("geo", "train", 25),
        ("chart", "test", 12),
    ]:
        examples = generate(domain, split, n, 3)
        assert read_curated(tmp_path / "four", domain, split) == examples
        shards = four.shards_of(domain, split)
        assert [s.rows for s in shards] == [min(7, n - i) for i in range(0, n, 7)]
        for shard, start in zip(shards, range(0, n, 7), strict=True):
            old = _old_shard_bytes(examples[start : start + 7], tmp_path / "old.parquet")
            assert (tmp_path / "four" / shard.path).read_bytes() == old


def test_curation_keeps_a_bounded_number_of_images_in_flight(tmp_path, monkeypatch):
    pulled, taken, decoding, peaks = [0], [0], [0], {"ahead": 0, "decoding": 0}
    lock = threading.Lock()
    real_generate, real_normalise, real_take = (
        source_steps.generate,
        record_checks.normalise_image,
        curate_module._Run.take,
    )

    def counting_generate(*args):
        for example in real_generate(*args):
            pulled[0] += 1
            yield example

    def counting_normalise(*args):
        with lock:
            decoding[0] += 1
            peaks["decoding"] = max(peaks["decoding"], decoding[0])
        try:
            time.sleep(0.001)
            return real_normalise(*args)
        finally:
            with lock:
                decoding[0] -= 1

    def counting_take(self, *args):
        peaks["ahead"] = max(peaks["ahead"], pulled[0] - taken[0])
        taken[0] += 1
        return real_take(self, *args)

    monkeypatch.setattr(source_steps, "generate", counting_generate)
    monkeypatch.setattr(record_checks, "normalise_image", counting_normalise)
    monkeypatch.setattr(curate_module._Run, "take", counting_take)
    report = curate({"det": SourceSpec("synthetic", n_train=80)}, tmp_path / "out", seed=0, workers=3)
    assert report.rows["det"]["train"] == taken[0] == pulled[0] == 80
    assert 1 < peaks["decoding"] <= 3
    assert peaks["ahead"] <= 6  # 2 x workers rows read from the source and not yet written


def test_a_curation_that_dies_half_way_leaves_no_folder_that_looks_complete(tmp_path, monkeypatch):
    real_generate = source_steps.generate

    def dies_after_a_few_shards(domain, split, n, seed):
        for index, example in enumerate(real_generate(domain, split, n, seed)):
            if domain == "geo" and index == 11:
                raise MemoryError("killed half-way")
            yield example

    monkeypatch.setattr(source_steps, "generate", dies_after_a_few_shards)
    with pytest.raises(MemoryError):
        curate(SUITE, tmp_path / "out", seed=0, shard_rows=4, workers=2)  # det's shards are written
    assert list(tmp_path.iterdir()) == []  # neither the output nor the folder it was built in


# --- reading by index --------------------------------------------------------------------------------


def test_shard_rows_reads_any_row_by_index_holding_a_few_row_groups(tmp_path):
    curate({"det": SourceSpec("synthetic", n_train=50)}, tmp_path / "out", seed=1, shard_rows=16, workers=2)
    examples = read_curated(tmp_path / "out", "det", "train")
    rows = open_curated(tmp_path / "out", "det", "train")
    assert len(rows) == 50 and list(rows) == examples and rows[-1] == examples[-1]
    for index in [49, 0, 17, 16, 33, 2, 48]:
        assert rows[index] == examples[index]
        assert len(rows._cache) <= 4
    assert rows[10:13] == examples[10:13]
    assert list(pickle.loads(pickle.dumps(rows))) == examples  # pickled as its paths
    with pytest.raises(IndexError):
        rows[50]


def test_large_images_close_row_groups_early_so_one_row_is_cheap_to_read(tmp_path, monkeypatch):
    monkeypatch.setattr("modomodo.data.shards.ROW_GROUP_BYTES", 4 * 1024)
    examples = generate("det", "train", 40, 0)
    image_bytes = sum(len(e.image) for e in examples)
    written = write_shard(examples, tmp_path / "s.parquet")
    groups = pq.ParquetFile(written.path).num_row_groups
    assert groups >= image_bytes // (4 * 1024) and groups > 1
    assert list(ShardRows([written.path])) == examples


# --- streamed preprocessing --------------------------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (width % 255, 90, 90)).save(out, format="PNG")
    return out.getvalue()


def test_sample_stream_makes_the_lists_draw_in_two_passes_deterministically():
    records = [Record({"id": str(i), "image": b"x"}, f"src#{i}") for i in range(200)]
    opened = []

    def open_records():
        opened.append(1)
        return iter(records)

    stream = sample_stream(open_records, size=30, seed=7)
    streamed = list(stream)
    listed, counts = sample(records, size=30, seed=7)
    assert streamed == listed and stream.counts == counts and len(opened) == 2
    assert counts.to_json()["dropped"] == {"not_sampled": 170}
    assert [r.origin for r in streamed] == sorted((r.origin for r in streamed), key=lambda o: int(o[4:]))
    assert list(sample_stream(open_records, size=30, seed=7)) == streamed
    assert list(sample_stream(open_records, size=30, seed=8)) != streamed
    with pytest.raises(ValueError, match=r"size must be in \[1, 200\]"):
        list(sample_stream(open_records, size=201, seed=7))


def test_streamed_steps_give_the_lists_rows_and_counts_and_counts_wait_for_the_end():
    records = [
        Record({"image": _png(900 + i, 300), "problem": "p", "solution": "B", "answer_kind": "mc"}, f"r{i}")
        for i in range(9)
    ] + [Record({"image": None}, "none"), Record({}, "broken", "not JSON")]
    stream = resize_long_side_stream(iter(records), max_side=640, workers=3)
    assert isinstance(stream, StepStream)
    with pytest.raises(RuntimeError, match="read to its end"):
        _ = stream.counts
    assert (list(stream), stream.counts) == resize_long_side(records, max_side=640)
    assert stream.counts.changed == {"resized": 9} and stream.counts.errors == 2
    kept = keep_with_image_stream(iter(records))
    assert (list(kept), kept.counts) == keep_with_image(records)
    assert kept.counts.dropped == {"no_image": 1}
