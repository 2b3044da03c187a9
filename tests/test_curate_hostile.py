"""Hostile data and names against the curate stage (issue 13, findings 3 and 4): a bad row is
quarantined or its source fails with a clear error, never a traceback and never a half-written
output folder; no name and no image path reads or writes outside the folders it is given."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from modomodo.config import ConfigError, load_config
from modomodo.data.curate import QUARANTINE_FILE, CurationError, curate, read_curated
from modomodo.data.shards import SHARD_SCHEMA
from modomodo.data.sources import SourceSpec
from modomodo.stages.curate import source_specs


def _png(colour=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _row(i: int, **changes) -> dict:
    row = {
        "id": f"r{i}",
        "image": base64.b64encode(_png((i % 250, 10, 10))).decode(),
        "problem": f"What colour is shape {i}?",
        "solution": "red",
        "answer_kind": "text",
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not None}


def _jsonl(path: Path, lines: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)
    )
    return path


def _quarantined(out: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in (out / QUARANTINE_FILE).read_text(encoding="utf-8").splitlines()]
    return {line["origin"].rsplit(":", 1)[-1]: line for line in lines}


def _no_leftovers(parent: Path) -> None:
    assert not [p.name for p in parent.iterdir() if ".curating-" in p.name], "a temporary folder was left"


# Finding 4: names and image paths ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../../ESCAPED", "/tmp/ESCAPED", "a/b", "", "9lives", "x" * 65, "é"])
def test_a_domain_name_that_is_not_a_plain_identifier_is_a_config_error(tmp_path, name):
    source = _jsonl(tmp_path / "rows.jsonl", [_row(1)])
    override = f"data.domains={json.dumps({name: {'source': str(source), 'rewards': [{'name': 'format'}]}})}"
    with pytest.raises(ConfigError, match="not a plain identifier"):
        load_config("smoke", [override])
    with pytest.raises(CurationError, match="not a plain identifier"):
        curate({name: SourceSpec("path", path=source)}, tmp_path / "a" / "b" / "c" / "out", seed=0)
    assert not list(tmp_path.rglob("*ESCAPED*")) and not Path("/tmp/ESCAPED").exists()


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("data.benchmarks=[nope]", "unknown benchmarks \\['nope'\\]"),
        ("data.benchmarks=['../x']", "not a plain identifier"),
    ],
)
def test_benchmark_names_are_checked_at_config_load(override, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config("smoke", [override])


def test_an_image_path_outside_the_source_folder_is_quarantined_unless_allowed(tmp_path):
    secret = tmp_path / "secret.png"  # outside the source's folder
    secret.write_bytes(_png())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "inside.png").write_bytes(_png((1, 2, 3)))
    rows = [
        _row(1, image=None, image_path="inside.png"),
        _row(2, image=None, image_path="../secret.png"),
        _row(3, image=None, image_path=str(secret)),
    ]
    source = _jsonl(tmp_path / "data" / "rows.jsonl", rows)
    report = curate({"colour": SourceSpec("path", path=source)}, tmp_path / "out", seed=0)
    assert report.rows["colour"]["train"] == 1
    quarantined = _quarantined(tmp_path / "out")
    assert set(quarantined) == {"2", "3"}
    assert all("outside the source's folder" in q["detail"] for q in quarantined.values())

    allowed = curate(
        {"colour": SourceSpec("path", path=source, external_images=True)}, tmp_path / "out2", seed=0
    )
    assert allowed.rows["colour"]["train"] == 3


def test_the_config_switch_reaches_the_source(tmp_path):
    source = _jsonl(tmp_path / "rows.jsonl", [_row(1)])
    domains = {"colour": {"source": str(source), "rewards": [{"name": "format"}], "external_images": True}}
    cfg = load_config("smoke", [f"data.domains={json.dumps(domains)}", "data.benchmarks=[chart]"])
    assert source_specs(cfg)["colour"].external_images is True
    synthetic = {"det": {"rewards": [{"name": "format"}], "external_images": True}}
    with pytest.raises(ConfigError, match="applies to path sources only"):
        load_config("smoke", [f"data.domains={json.dumps(synthetic)}"])


# Finding 3: one bad row never aborts curation ----------------------------------------------------


def test_hostile_jsonl_rows_are_quarantined_and_the_rest_curated(tmp_path):
    deep = b'{"id": "deep", "problem": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    lines = [
        _row(1),
        b'{"id": "s1", "image": "%s", "problem": "lone \\ud800 surrogate", "solution": "red", '
        b'"answer_kind": "text"}' % _row(2)["image"].encode(),
        # quarantined for its missing solution, with a lone surrogate in another field
        b'{"id": "s2", "problem": "p", "note": "\\udc80", "answer_kind": "text"}',
        b'{"id": "s3", "image": "%s", "problem": "p", "solution": "red", "answer_kind": "text", '
        b'"meta": {"k": "\\udfff"}}' % _row(3)["image"].encode(),
        deep,
        b"\xff\xfe not utf-8",
        _row(4),
    ]
    source = _jsonl(tmp_path / "rows.jsonl", lines)
    report = curate({"colour": SourceSpec("path", path=source)}, tmp_path / "out", seed=0)
    assert report.rows["colour"]["train"] == 2
    assert [e.id for e in read_curated(tmp_path / "out", "colour", "train")] == ["r1", "r4"]
    quarantined = _quarantined(tmp_path / "out")
    assert {k: q["reason"] for k, q in quarantined.items()} == {
        "2": "bad_text",
        "3": "missing_field",
        "4": "bad_text",
        "5": "unreadable_row",
        "6": "unreadable_row",
    }
    assert "nested too deeply" in quarantined["5"]["detail"]
    assert quarantined["3"]["fields"]["note"] == "\udc80"  # kept, escaped, the line valid JSON


def _parquet(path: Path, n: int, *, problem_of=lambda i: f"What colour is shape {i}?") -> Path:
    rows = [
        {
            "id": f"p{i}",
            "domain": "colour",
            "image": _png((i % 250, 0, 0)),
            "problem": problem_of(i),
            "solution": "red",
            "answer_kind": "text",
            "options": [],
            "meta": "{}",
        }
        for i in range(n)
    ]
    table = pa.Table.from_pylist(rows, schema=SHARD_SCHEMA)
    pq.write_table(table, path, row_group_size=4, compression="none", use_dictionary=False)
    return path


def test_invalid_utf8_in_a_parquet_string_fails_that_source_cleanly(tmp_path):
    path = _parquet(
        tmp_path / "rows.parquet", 12, problem_of=lambda i: "MARKER-STRING" if i == 9 else f"q{i}"
    )
    data = path.read_bytes()
    assert data.count(b"MARKER-STRING") >= 1  # the value, and its page's and chunk's statistics
    path.write_bytes(data.replace(b"MARKER-STRING", b"\xff\xfe\xfd-STRING-XX"))
    out = tmp_path / "out"
    try:
        report = curate({"colour": SourceSpec("path", path=path)}, out, seed=0)
    except CurationError as exc:  # the source fails as a whole, named, and nothing is written
        assert "source 'colour'" in str(exc) and str(path) in str(exc)
        assert not out.exists()
    else:  # or the one row is quarantined
        assert report.rows["colour"]["train"] == 11
    _no_leftovers(tmp_path)


def test_a_corrupt_parquet_page_mid_file_leaves_no_output_and_a_rerun_works(tmp_path):
    path = _parquet(tmp_path / "rows.parquet", 16)
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_row_groups == 4
    # The page header of a column in the third row group: the first two were already curated.
    start = metadata.row_group(2).column(SHARD_SCHEMA.get_field_index("problem")).data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + 16] = b"\x13" * 16
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(CurationError, match="could not be read to the end") as error:
        curate({"colour": SourceSpec("path", path=path)}, out, seed=0)
    assert "nothing was written" in str(error.value)
    assert not out.exists()
    _no_leftovers(tmp_path)
    _parquet(path, 16)  # the source repaired: the same output folder curates at once
    assert curate({"colour": SourceSpec("path", path=path)}, out, seed=0).rows["colour"]["train"] == 16


def test_output_goes_into_an_existing_empty_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # KFP creates an output artifact's folder before the component runs
    source = _jsonl(tmp_path / "rows.jsonl", [_row(1)])
    curate({"colour": SourceSpec("path", path=source)}, out, seed=0)
    assert (out / "curation.json").is_file()
    _no_leftovers(tmp_path)


# Finding 5: silent data problems ------------------------------------------------------------------


def test_a_malformed_box_solution_is_quarantined_not_kept_as_text(tmp_path):
    rows = [
        _row(1, solution="[1, 1, 30, 30]"),
        _row(2, solution="[nan, 1, 30, 30]"),
        _row(3, solution="[[1, 1, 30, 30],]"),
        _row(4, solution="[{'Position': [1, 1, 30], 'Confidence': 1}]"),
        _row(5, solution="red"),
    ]
    for row in rows:
        del row["answer_kind"]  # inferred, as for paper-style rows
    source = _jsonl(tmp_path / "rows.jsonl", rows)
    report = curate({"mixed": SourceSpec("path", path=source)}, tmp_path / "out", seed=0)
    kinds = {e.id: e.answer_kind for e in read_curated(tmp_path / "out", "mixed", "train")}
    assert kinds == {"r1": "box", "r5": "text"}
    assert report.quarantined["mixed"] == {"bad_box": 3}


def test_a_path_domain_declares_its_answer_kind_in_the_config(tmp_path):
    rows = [_row(1, solution="B", options=["x", "y"]), _row(2, solution="A", options=["x", "y"])]
    for row in rows:
        del row["answer_kind"]
    source = _jsonl(tmp_path / "rows.jsonl", rows)
    domains = {"quiz": {"source": str(source), "rewards": [{"name": "format"}], "answer_kind": "mc"}}
    cfg = load_config("smoke", [f"data.domains={json.dumps(domains)}", "data.benchmarks=[chart]"])
    assert source_specs(cfg)["quiz"].answer_kind == "mc"
    bad = {"quiz": {**domains["quiz"], "answer_kind": "essay"}}
    with pytest.raises(ConfigError, match="answer_kind"):
        load_config("smoke", [f"data.domains={json.dumps(bad)}"])


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    import numpy as np

    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, format="PNG")
    assert Image.open(io.BytesIO(buffer.getvalue())).mode == "I;16"
    source = _jsonl(tmp_path / "rows.jsonl", [_row(1, image=base64.b64encode(buffer.getvalue()).decode())])
    curate({"gray": SourceSpec("path", path=source)}, tmp_path / "out", seed=0)
    [example] = read_curated(tmp_path / "out", "gray", "train")
    stored = np.asarray(Image.open(io.BytesIO(example.image)).convert("L"), dtype=float)
    assert stored.max() == 255 and stored.min() == 0
    assert (stored == 255).mean() < 0.01  # clipping made 99.6% of the pixels white
    assert abs(stored.mean() - ramp.mean() / 256) < 1
