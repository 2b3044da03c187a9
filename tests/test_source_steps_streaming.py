"""A path source's preprocessing steps stream: ``open_path`` gives the very records and counts the
list functions gave (each step alone, chains, error rows passing through, the published layouts
with the paper's steps), a ``sample`` the source cannot meet still fails at open, ``curate`` writes
the same counts and quarantine, and the records alive at once stay bounded whatever the source's
length. Fast: small images, one 2,000-row source."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from published_layouts import (
    canvas,
    encode,
    write_chartqa,
    write_geoqav,
    write_lisa,
    write_sat,
    write_scienceqa_hub,
)

import modomodo.data.preprocess as preprocess
import modomodo.data.source_steps as source_steps
from modomodo.data.curate import QUARANTINE_FILE, CurationError, curate
from modomodo.data.layouts import adapt_row, get_layout
from modomodo.data.preprocess import StepCounts
from modomodo.data.source_steps import STEPS, open_path
from modomodo.data.sources import Record, SourceSpec, normalise_fields, read_raw_records

LISTED = {
    "one_sample_per_question": lambda rs, p, seed: preprocess.one_sample_per_question(rs, seed=p.get("seed", seed)),
    "keep_multiple_choice": lambda rs, p, seed: preprocess.keep_multiple_choice(rs),
    "keep_with_image": lambda rs, p, seed: preprocess.keep_with_image(rs),
    "sample": lambda rs, p, seed: preprocess.sample(rs, size=p["size"], seed=p.get("seed", seed)),
    "at_most": lambda rs, p, seed: _listed_at_most(list(rs), size=p["size"], seed=p.get("seed", seed)),
    "resize_long_side": lambda rs, p, seed: preprocess.resize_long_side(rs, max_side=p.get("max_side", 640)),
}  # fmt: skip
"""Each step as ``open_path`` ran it before the steps streamed: on a list."""


def _listed_at_most(rows: list[Record], *, size: int, seed: int) -> tuple[list[Record], StepCounts]:
    if len(rows) > size:
        out, counts = preprocess.sample(rows, size=size, seed=seed)
        return out, replace(counts, step="at_most")
    return rows, StepCounts("at_most", len(rows), len(rows), errors=sum(1 for r in rows if r.error))


def listed(path: Path, steps, *, layout: str | None = None, seed: int = 0):
    """``open_path`` before its steps streamed: the source read into a list, every step run on it."""

    def adapt(r: Record) -> Record:
        if r.error:
            return r
        if layout:
            return adapt_row(get_layout(layout), r.fields, r.origin)
        return Record(normalise_fields(r.fields), r.origin)

    records, counts, adapted = read_raw_records(path), [], False
    for name, params in steps:
        if STEPS[name].on == "fields" and not adapted:
            records, adapted = map(adapt, records), True
        records, step_counts = LISTED[name](records, params, seed)
        counts.append(step_counts)
    return _same_run(list(records if adapted else map(adapt, records))), counts


def streamed(path: Path, steps, *, layout: str | None = None, seed: int = 0, workers: int = 3):
    records, counts = open_path(path, layout=layout, steps=steps, seed=seed, workers=workers)
    return _same_run(list(records)), counts()


def _same_run(records: list[Record]) -> list[Record]:
    """PIL names an in-memory file by its address in an undecodable image's message; that alone
    differs from one read of the source to the next."""
    return [
        replace(r, error=re.sub(r" at 0x[0-9a-f]+", " at 0x?", r.error)) if r.error else r for r in records
    ]


def png(width: int, height: int) -> bytes:
    return encode(canvas(width, height)[0])


def mixed_source(folder: Path, n: int = 40) -> Path:
    """JSONL rows of every kind the steps treat differently: images above and below 32 px, rows
    without an image, mc and free-form answers, pixel boxes, lists of questions (one empty), and
    rows that are errors from the start (not JSON, a missing file) or become one (an image that
    does not decode)."""
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        row = {"problem": f"Which one? {i}\nA. one\nB. two", "solution": "B" if i % 3 else str(i)}
        if i % 11 == 6:
            row["solution"] = "[{'Position': [1, 1, 15, 9], 'Confidence': 1}]"
        if i % 7 == 3:
            row["problem"] = [f"first {i}", f"second {i}", f"third {i}"][: 1 + i % 3]
        if i % 5 != 4:
            (folder / f"img{i}.png").write_bytes(png(40 + i, 20) if i % 2 else png(20, 10 + i % 7))
            row["image_path"] = f"img{i}.png"
        lines.append(json.dumps(row))
    (folder / "garbage.png").write_bytes(b"not a png")
    lines[5:5] = [json.dumps({"problem": [], "solution": "A", "image_path": "img1.png"})]
    lines[11:11] = ["{not json"]
    lines[17:17] = [json.dumps({"image_path": "missing.png", "problem": "p", "solution": "B"})]
    lines[23:23] = [json.dumps({"image_path": "garbage.png", "problem": "q", "solution": "A"})]
    path = folder / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


RESIZE = ("resize_long_side", {"max_side": 32})
CHAINS = {
    "one_sample_per_question": [("one_sample_per_question", {"seed": 3})],
    "keep_multiple_choice": [("keep_multiple_choice", {})],
    "keep_with_image": [("keep_with_image", {})],
    "sample": [("sample", {"size": 30, "seed": 2})],
    "at_most_sampling": [("at_most", {"size": 31})],
    "at_most_keeping_all": [("at_most", {"size": 1000})],
    "resize_long_side": [RESIZE],
    "lisa_like": [("one_sample_per_question", {}), ("keep_with_image", {}), RESIZE, ("sample", {"size": 12})],
    "two_draws": [("sample", {"size": 30, "seed": 5}), ("keep_with_image", {}), RESIZE, ("at_most", {"size": 8})],
    "draw_first_then_list_step": [("at_most", {"size": 35}), ("one_sample_per_question", {"seed": 1}), RESIZE],
    "draws_back_to_back": [("keep_multiple_choice", {}), ("sample", {"size": 20}), ("at_most", {"size": 9}), RESIZE],
    "filtered_then_capped_above_its_rows": [("keep_multiple_choice", {}), ("keep_with_image", {}), RESIZE, ("at_most", {"size": 100})],
}  # fmt: skip


@pytest.mark.parametrize("chain", list(CHAINS))
def test_streamed_steps_give_the_list_functions_rows_counts_and_errors(tmp_path, chain):
    path = mixed_source(tmp_path / "src")
    steps = CHAINS[chain]
    expected_rows, expected_counts = listed(path, steps, seed=4)
    for workers in (1, 3):
        rows, counts = streamed(path, steps, seed=4, workers=workers)
        assert rows == expected_rows
        assert [c.to_json() for c in counts] == [c.to_json() for c in expected_counts]
    drawn = any(name in ("sample", "at_most") for name, _ in steps)
    assert any(r.error for r in rows) or drawn, (
        "error rows pass through every step but a draw that misses them"
    )
    assert sum(c.errors for c in counts) > 0
    assert sum(not r.error for r in rows) >= 5


def test_a_cap_on_a_source_the_filters_emptied_keeps_nothing_and_a_sample_of_it_fails_alike(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"problem": f"p{i}", "solution": "A"}) + "\n" for i in range(3)))
    capped = [("keep_with_image", {}), ("at_most", {"size": 3})]
    assert (
        streamed(path, capped)
        == listed(path, capped)
        == ([], [StepCounts("keep_with_image", 3, 0, {"no_image": 3}), StepCounts("at_most", 0, 0)])
    )
    sampled = [("keep_with_image", {}), ("sample", {"size": 1})]
    with pytest.raises(ValueError, match=r"size must be in \[1, 0\]"):
        listed(path, sampled)
    with pytest.raises(ValueError, match=r"size must be in \[1, 0\]"):
        open_path(path, steps=sampled)


@pytest.mark.parametrize(
    ("layout", "write", "steps"),
    [
        ("lisa", write_lisa, [("one_sample_per_question", {"seed": 1}), ("resize_long_side", {})]),
        ("geoqav", write_geoqav, [("keep_multiple_choice", {}), ("resize_long_side", {})]),
        ("sat", write_sat, [("sample", {"size": 2, "seed": 3})]),
        ("scienceqa_hub", write_scienceqa_hub, [("keep_with_image", {}), ("at_most", {"size": 2})]),
        ("chartqa", write_chartqa, [("at_most", {"size": 100})]),
    ],
)
def test_the_published_layouts_with_the_papers_steps_stream_as_the_lists_ran(tmp_path, layout, write, steps):
    path = write(tmp_path / layout)
    expected = listed(path, steps, layout=layout)
    assert streamed(path, steps, layout=layout) == expected
    assert expected[0] and not all(r.error for r in expected[0])


def test_step_counts_wait_for_the_rows_to_be_read(tmp_path):
    path = mixed_source(tmp_path / "src")
    records, counts = open_path(path, steps=[("keep_with_image", {}), RESIZE, ("sample", {"size": 5})])
    # a draw's earlier steps were counted at open, the rest only once the records are read
    with pytest.raises(RuntimeError, match="read to its end"):
        counts()
    rows = list(records)
    assert len(rows) == 5 and [c.step for c in counts()] == ["keep_with_image", "resize_long_side", "sample"]


def test_a_sample_the_source_cannot_meet_fails_at_open_with_the_lists_message(tmp_path, monkeypatch):
    path = mixed_source(tmp_path / "src")
    steps = [("keep_with_image", {}), RESIZE, ("sample", {"size": 40})]
    with pytest.raises(ValueError) as old:
        listed(path, steps)
    assert "sample: size must be in [1, 36] (the rows available), got 40" in str(old.value)
    with pytest.raises(ValueError) as new:
        open_path(path, steps=steps)  # raised by the opening itself, not by reading the records
    assert str(new.value) == str(old.value)

    def not_before_open(*args, **kwargs):
        raise AssertionError("the output folder was made before the sources were opened")

    monkeypatch.setattr("modomodo.data.curate.tempfile.mkdtemp", not_before_open)
    spec = SourceSpec("path", path=str(path), steps=tuple(steps))
    with pytest.raises(
        CurationError, match=r"source 'd' \(.*rows.jsonl\): sample: size must be in \[1, 36\]"
    ):
        curate({"d": spec}, tmp_path / "out", seed=0, workers=2)
    assert not (tmp_path / "out").exists()


def test_curate_reports_the_lists_counts_and_quarantines_the_same_rows(tmp_path):
    path = mixed_source(tmp_path / "src")
    steps = CHAINS["lisa_like"]
    expected_rows, expected_counts = listed(path, steps, seed=6)
    spec = SourceSpec("path", path=str(path), steps=tuple(steps))
    report = curate({"d": spec}, tmp_path / "out", seed=6, workers=3)
    saved = json.loads((tmp_path / "out" / "curation.json").read_text())
    assert saved["steps"] == {"d": {"train": [c.to_json() for c in expected_counts]}}
    quarantined = [json.loads(line) for line in (tmp_path / "out" / QUARANTINE_FILE).read_text().splitlines()]
    errors = [r for r in expected_rows if r.error]
    assert [q["origin"] for q in quarantined if q["reason"] == "unreadable_row"] == [r.origin for r in errors]
    assert errors and len(quarantined) + report.rows["d"]["train"] == len(expected_rows)


def test_resize_runs_on_curates_workers(tmp_path, monkeypatch):
    path = mixed_source(tmp_path / "src")
    threads: set[str] = set()
    real = preprocess.normalise_image

    def on_a_thread(*args):
        threads.add(threading.current_thread().name)
        time.sleep(0.002)  # long enough that the window's rows wait for a free thread
        return real(*args)

    monkeypatch.setattr(preprocess, "normalise_image", on_a_thread)
    spec = SourceSpec("path", path=str(path), steps=(RESIZE,))
    curate({"d": spec}, tmp_path / "one", seed=0, workers=1)
    assert threads == {threading.main_thread().name}  # one worker: inline, whatever the CPUs
    threads.clear()
    curate({"d": spec}, tmp_path / "three", seed=0, workers=3)
    assert 1 < len(threads) <= 3 and all(name.startswith("modomodo-map") for name in threads), threads


# --- bounded memory ----------------------------------------------------------------------------------


class Tracked:
    """Rides along in a row's fields (every step copies the fields it is given), so the number of
    these alive is the number of the source's rows, in any form, held somewhere at once."""

    lock = threading.Lock()
    alive = peak = 0

    def __init__(self) -> None:
        with Tracked.lock:
            Tracked.alive += 1
            Tracked.peak = max(Tracked.peak, Tracked.alive)

    def __del__(self) -> None:
        with Tracked.lock:
            Tracked.alive -= 1


def test_a_source_with_steps_holds_a_bounded_number_of_rows_whatever_its_length(tmp_path, monkeypatch):
    n, workers = 2000, 2
    images = [None if i % 10 == 9 else png(24, 12 + i % 5) for i in range(n)]
    table = pa.table(
        {
            "image": images,
            "problem": [f"How many? {i}" for i in range(n)],
            "solution": [str(i) for i in range(n)],
        }
    )
    pq.write_table(table, tmp_path / "rows.parquet")
    real_read = source_steps.read_raw_records

    def tracked_read(path, **options):
        return (
            Record({**r.fields, "tracker": Tracked()}, r.origin, r.error) for r in real_read(path, **options)
        )

    monkeypatch.setattr(source_steps, "read_raw_records", tracked_read)
    Tracked.alive = Tracked.peak = 0
    steps = (
        ("keep_with_image", {}),
        ("resize_long_side", {"max_side": 16}),
        ("sample", {"size": 300, "seed": 1}),
    )
    report = curate(
        {"d": SourceSpec("path", path=str(tmp_path / "rows.parquet"), answer_kind="text", steps=steps)},
        tmp_path / "out",
        seed=0,
        workers=workers,
    )
    assert report.rows["d"]["train"] == 300 and report.steps["d"]["train"][1]["changed"] == {"resized": 1800}
    # resize's window and curation's window, 2 x workers each, plus the row each step holds
    assert Tracked.peak <= 4 * workers + 6, f"{Tracked.peak} of {n} rows alive at once"
    assert Tracked.alive == 0
