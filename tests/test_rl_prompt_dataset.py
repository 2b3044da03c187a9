"""The RL prompt dataset reads the curated shards by index: the same rows, in the same order, as the
in-memory dataset it replaces, while holding only the schedule's (domain, index) pairs."""

from __future__ import annotations

from datasets import Dataset, Features, Image, Value
from datasets import Sequence as HFSequence

from modomodo.data.curate import curate, read_curated
from modomodo.data.curated import open_training_splits
from modomodo.data.prompts import render_prompt
from modomodo.data.sources import SourceSpec
from modomodo.rl.grpo import schedule_dataset
from modomodo.rl.sampler import mixture_schedule


def _copied_dataset(train, draws) -> Dataset:
    """The dataset as ``schedule_dataset`` built it before: every scheduled row copied, image and all."""
    features = Features(
        {
            "prompt": [{"role": Value("string"), "content": Value("string")}],
            "image": Image(),
            "domain": Value("string"),
            "solution": Value("string"),
            "answer_kind": Value("string"),
            "options": HFSequence(Value("string")),
            "example_id": Value("string"),
        }
    )
    rows = []
    for draw in draws:
        ex = train[draw.domain][draw.index]
        rows.append(
            {
                "prompt": [{"role": "user", "content": render_prompt(ex)}],
                "image": {"bytes": ex.image, "path": None},
                "domain": ex.domain,
                "solution": ex.solution,
                "answer_kind": ex.answer_kind,
                "options": list(ex.options),
                "example_id": ex.id,
            }
        )
    return Dataset.from_list(rows, features=features)


def _plain(row: dict) -> dict:
    image = row["image"]
    return {**row, "image": (image.mode, image.size, image.tobytes()), "options": list(row["options"])}


def test_the_dataset_read_from_the_shards_yields_the_copied_datasets_rows_in_order(tmp_path):
    sources = {
        "det": SourceSpec("synthetic", n_train=9),
        "geo": SourceSpec("synthetic", n_train=7),
        "sci": SourceSpec("synthetic", n_train=5),
        "chart": SourceSpec("synthetic", n_test=4),
    }
    curate(sources, tmp_path / "data", seed=2, shard_rows=4, workers=2)
    train = open_training_splits(tmp_path / "data")
    assert sorted(train) == ["det", "geo", "sci"]  # benchmarks are not training data
    loaded = {d: read_curated(tmp_path / "data", d, "train") for d in train}
    # Three epochs of the smaller domains: indices repeat, shards are read out of order.
    draws = mixture_schedule({d: len(e) for d, e in loaded.items()}, {"det": 1, "geo": 2, "sci": 1}, 60, 5)
    before = _copied_dataset(loaded, draws)
    after = schedule_dataset(train, draws)
    assert len(after) == len(before) == 60
    assert [_plain(row) for row in after] == [_plain(row) for row in before]
    assert [_plain(after[i]) for i in (59, 0, 31)] == [_plain(before[i]) for i in (59, 0, 31)]
    # What it holds: the schedule, not the images.
    assert after.data.column_names == ["domain", "index"]
    assert after.data.nbytes < sum(len(loaded[d.domain][d.index].image) for d in draws) / 10
