"""Examples with several images (MMMU): the schema's ``extra_images``, their shard column (absent
from single-image shards, whose bytes stay what they were), the conversation's image parts, and
training's refusal of multi-image data."""

from __future__ import annotations

import dataclasses
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from modomodo.config import load_config
from modomodo.config_io import ConfigError
from modomodo.data import shards
from modomodo.data.prompts import render_prompt, to_conversation
from modomodo.data.schema import Example
from modomodo.data.shards import (
    MULTI_IMAGE_SCHEMA,
    SHARD_SCHEMA,
    ShardRows,
    encode_meta,
    read_shard,
    write_shard,
)
from modomodo.data.synthetic import generate


def png(shade: int, size: tuple[int, int] = (12, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (shade, 0, 0)).save(out, format="PNG")
    return out.getvalue()


def example(n: int, extra: int) -> Example:
    return Example(
        f"mmmu-{n}",
        "mmmu",
        png(n),
        f"Compare <image 1> with the others ({n}).",
        "A",
        "mc",
        ("yes", "no"),
        {"images": str(extra + 1)},
        tuple(png(100 + 10 * k + n) for k in range(extra)),
    )


def test_images_are_the_first_then_the_extra_ones_in_order():
    ex = example(1, 3)
    assert ex.images == (ex.image, *ex.extra_images) and len(ex.images) == 4
    assert example(2, 0).images == (example(2, 0).image,)


@pytest.mark.parametrize("extra", [0, 1, 3])
def test_a_shard_round_trips_examples_with_0_1_and_3_extra_images(tmp_path, extra):
    examples = [example(n, extra) for n in range(5)]
    path = write_shard(examples, tmp_path / "s.parquet").path
    assert read_shard(path) == examples
    wide = pq.read_schema(path).equals(MULTI_IMAGE_SCHEMA, check_metadata=False)
    assert wide == (extra > 0), "the extra_images column only when a row has extra images"


def test_single_image_shards_are_the_bytes_a_writer_without_the_column_writes(tmp_path):
    examples = [e for name in ("det", "geo", "spatial", "sci") for e in generate(name, "train", 10, 0)]
    written = write_shard(examples, tmp_path / "new.parquet").path
    narrow = tmp_path / "narrow.parquet"  # the shard writer as it was before extra_images existed
    columns = {
        "id": [e.id for e in examples],
        "domain": [e.domain for e in examples],
        "image": [e.image for e in examples],
        "problem": [e.problem for e in examples],
        "solution": [e.solution for e in examples],
        "answer_kind": [e.answer_kind for e in examples],
        "options": [list(e.options) for e in examples],
        "meta": [encode_meta(e.meta) for e in examples],
    }
    with pq.ParquetWriter(
        narrow, SHARD_SCHEMA, compression=shards.COMPRESSION, compression_level=shards.COMPRESSION_LEVEL
    ) as writer:
        writer.write_table(pa.table(columns, schema=SHARD_SCHEMA), row_group_size=shards.ROW_GROUP_SIZE)
    assert written.read_bytes() == narrow.read_bytes()
    assert read_shard(narrow) == examples, "a shard without the column reads with no extra images"


def test_a_multi_image_row_after_single_image_row_groups_widens_the_shard(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "ROW_GROUP_SIZE", 2)
    examples = [example(n, 0) for n in range(5)] + [example(5, 3), example(6, 0)]
    path = write_shard(examples, tmp_path / "s.parquet").path
    parquet = pq.ParquetFile(path)
    assert parquet.schema_arrow.equals(MULTI_IMAGE_SCHEMA, check_metadata=False)
    assert [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)] == [2, 2, 2, 1]
    assert read_shard(path) == examples
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.parquet"], "no partial file left"
    again = write_shard(examples, tmp_path / "again.parquet").path
    assert again.read_bytes() == path.read_bytes(), "still deterministic"


def test_shard_rows_read_narrow_and_wide_shards_together(tmp_path):
    single = [example(n, 0) for n in range(3)]
    several = [example(n, 2) for n in range(3, 5)]
    paths = [
        write_shard(single, tmp_path / "a.parquet").path,
        write_shard(several, tmp_path / "b.parquet").path,
    ]
    rows = ShardRows(paths)
    assert list(rows) == single + several and rows[4] == several[1] and rows[0].extra_images == ()


def test_the_conversation_has_one_image_part_per_image_before_the_text():
    ex = example(1, 2)
    (turn,) = to_conversation(ex)
    assert turn["content"] == [{"type": "image"}] * 3 + [{"type": "text", "text": render_prompt(ex)}]
    assert to_conversation(dataclasses.replace(ex, extra_images=()))[0]["content"][0] == {"type": "image"}


def test_a_training_domain_with_a_multi_image_layout_is_a_config_error(tmp_path):
    domains = {"mmmu": {"source": str(tmp_path / "mmmu-val"), "layout": "mmmu",
                        "rewards": [{"name": "format"}, {"name": "accuracy"}]}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"data\.domains\.mmmu\.layout: 'mmmu' gives examples with several"):
        load_config("smoke", [f"data.domains={json.dumps(domains)}"])


def test_the_grpo_prompt_dataset_refuses_a_multi_image_example_naming_its_domain():
    from modomodo.rl.grpo import schedule_dataset
    from modomodo.rl.sampler import Draw

    train = {"mmmu": [example(0, 0), example(1, 2)]}
    dataset = schedule_dataset(train, [Draw("mmmu", 0, 0), Draw("mmmu", 1, 0)])
    assert dataset[0]["example_id"] == "mmmu-0"
    with pytest.raises(ValueError, match=r"domain 'mmmu': example mmmu-1 has 3 images"):
        dataset[1]
