"""The curate stage: synthetic and file sources, hostile rows, normalisation, reproducible output."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from modomodo.data.curate import (
    QUARANTINE_FILE,
    QUARANTINE_REASONS,
    REPORT_FILE,
    CurationError,
    CurationLimits,
    CurationReport,
    curate,
    read_curated,
)
from modomodo.data.prompts import BOX_INSTRUCTION, MC_INSTRUCTION
from modomodo.data.shards import SHARD_SCHEMA, encode_meta, sha256_file, write_shard
from modomodo.data.sources import SourceError, SourceSpec
from modomodo.data.synthetic import GENERATOR_VERSION, generate


def synthetic(n_train: int = 0, n_test: int = 0) -> SourceSpec:
    return SourceSpec("synthetic", n_train=n_train, n_test=n_test)


def _png(size=(112, 112), mode="RGB", colour=(255, 255, 255), fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def _row(example, **changes) -> dict:
    """An Example as a JSONL record (image as base64), with fields replaced or removed (None)."""
    row = {
        "id": example.id,
        "domain": example.domain,
        "image": base64.b64encode(example.image).decode(),
        "problem": example.problem,
        "solution": example.solution,
        "answer_kind": example.answer_kind,
        "options": list(example.options),
        "meta": example.meta,
    }
    row.update({k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in changes.items()})
    return {k: v for k, v in row.items() if v is not None}


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _quarantine(out: Path) -> dict[str, str]:
    lines = [json.loads(line) for line in (out / QUARANTINE_FILE).read_text().splitlines()]
    return {line["id"]: line["reason"] for line in lines}


# --- synthetic sources -----------------------------------------------------------------------------


def test_synthetic_suite_curates_losslessly_with_a_complete_report(tmp_path):
    sources = {"det": synthetic(12), "ref": synthetic(10, 6), "chart": synthetic(n_test=8)}
    report = curate(sources, tmp_path / "out", seed=5, shard_rows=4)
    assert report.rows == {
        "chart": {"train": 0, "test": 8},
        "det": {"train": 12, "test": 0},
        "ref": {"train": 10, "test": 6},
    }
    assert report.quarantined == {"chart": {}, "det": {}, "ref": {}}
    assert (report.seed, report.generator_version) == (5, GENERATOR_VERSION)
    assert [s.rows for s in report.shards_of("det", "train")] == [4, 4, 4]
    for shard in report.shards:
        assert sha256_file(tmp_path / "out" / shard.path) == shard.sha256
    assert CurationReport.load(tmp_path / "out") == report
    for domain, split, n in [
        ("det", "train", 12),
        ("ref", "train", 10),
        ("ref", "test", 6),
        ("chart", "test", 8),
    ]:
        assert read_curated(tmp_path / "out", domain, split) == generate(domain, split, n, 5)


def test_same_seed_gives_byte_identical_output(tmp_path):
    sources = {"geo": synthetic(9, 3), "sci": synthetic(5, 5)}
    curate(sources, tmp_path / "a", seed=1)
    curate(sources, tmp_path / "b", seed=1)
    curate(sources, tmp_path / "c", seed=2)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert REPORT_FILE in {str(f) for f in files} and len(files) == 6  # 4 shards, report, quarantine
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a" / "geo/train-00000.parquet").read_bytes() != (
        tmp_path / "c" / "geo/train-00000.parquet"
    ).read_bytes()


def test_a_changed_shard_is_detected(tmp_path):
    curate({"sci": synthetic(4)}, tmp_path, seed=0)
    write_shard(generate("sci", "train", 4, 1), tmp_path / "sci" / "train-00000.parquet")
    with pytest.raises(CurationError, match="SHA-256 differs"):
        read_curated(tmp_path, "sci", "train")


@pytest.mark.parametrize(
    "sources,match",
    [
        ({"nope": synthetic(3)}, "unknown domain or benchmark"),
        ({"chart": synthetic(3)}, "only a 'test' split"),
    ],
)
def test_bad_synthetic_sources_fail_before_writing(tmp_path, sources, match):
    with pytest.raises(CurationError, match=match):
        curate(sources, tmp_path / "out", seed=0)
    assert not (tmp_path / "out").exists()


def test_missing_path_fails_before_writing(tmp_path):
    sources = {"sci": synthetic(3), "ref": SourceSpec("path", path=str(tmp_path / "missing.jsonl"))}
    with pytest.raises(SourceError, match="no such file"):
        curate(sources, tmp_path / "out", seed=0)
    assert not (tmp_path / "out").exists()


def test_output_folder_must_be_fresh(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(CurationError, match="not empty"):
        curate({"sci": synthetic(1)}, tmp_path, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "synthetic"}, "synthetic source: n_train, n_test must be >= 0 with a positive sum"),
        ({"kind": "synthetic", "n_train": 2, "path": "x.jsonl"}, "synthetic source: path, .* do not apply"),
        ({"kind": "path"}, "path source: 'path' is required"),
        ({"kind": "path", "path": "x.jsonl", "n_train": 3}, "n_train/n_test apply to synthetic sources only"),
        ({"kind": "path", "path": "x.jsonl", "test_fraction": 1.0}, r"test_fraction must be in \[0, 1\)"),
        (
            {"kind": "path", "path": "x.jsonl", "test_fraction": 0.2, "test_path": "y.jsonl"},
            "test_fraction .* excludes test_path",
        ),
        ({"kind": "path", "path": "x.jsonl", "answer_kind": "essay"}, "answer_kind must be one of .*'essay'"),
        ({"kind": "s3"}, "source kind must be 'synthetic' or 'path', got 's3'"),
    ],
)
def test_inconsistent_source_specs_are_refused(kwargs, message):
    with pytest.raises(SourceError, match=message):
        SourceSpec(**kwargs)


# --- hostile rows ----------------------------------------------------------------------------------


def test_hostile_rows_are_quarantined_with_their_reason_and_good_rows_survive(tmp_path):
    refs = generate("ref", "train", 4, 0)
    scis = [e for e in generate("sci", "train", 4, 0) if len(e.options) == 3]
    good = [_row(e, domain=None) for e in refs] + [_row(e, domain="ref") for e in scis]
    box, mc = refs[0], scis[0]
    hostile = {
        "corrupt": _row(box, id="corrupt", image=box.image[:60] + b"\x00garbage"),
        "giant": _row(box, id="giant", image=_png((5000, 10))),
        "nan-box": _row(box, id="nan-box", solution="[{'Position': [nan, 0, 28, 28], 'Confidence': 1}]"),
        "outside": _row(box, id="outside", solution="[{'Position': [0, 0, 200, 28], 'Confidence': 1}]"),
        "empty-box": _row(box, id="empty-box", solution="[{'Position': [28, 28, 28, 56], 'Confidence': 1}]"),
        "letter": _row(mc, id="letter", domain="ref", solution="E"),
        "one-option": _row(mc, id="one-option", domain="ref", options=["red"]),
        "empty": _row(box, id="empty", problem="   "),
        "long": _row(box, id="long", problem="why? " * 200),
        "no-solution": _row(box, id="no-solution", solution=""),
        box.id: _row(generate("ref", "train", 6, 0)[5], id=box.id),  # a second row with a seen id
        "stranger": _row(box, id="stranger", domain="zzz"),
        "misfiled": _row(box, id="misfiled", domain="spatial"),
        "no-image": _row(box, id="no-image", image=None),
        "kind": _row(box, id="kind", answer_kind="essay"),
        "meta": _row(box, id="meta", meta="{not json"),
    }
    expected = {
        "corrupt": "bad_image",
        "giant": "image_size",
        "nan-box": "bad_box",
        "outside": "bad_box",
        "empty-box": "bad_box",
        "letter": "bad_mc_answer",
        "one-option": "bad_options",
        "empty": "empty_problem",
        "long": "problem_too_long",
        "no-solution": "empty_solution",
        box.id: "duplicate_id",
        "stranger": "unknown_domain",
        "misfiled": "domain_mismatch",
        "no-image": "missing_field",
        "kind": "bad_answer_kind",
        "meta": "bad_meta",
        "ref-row000019": "unreadable_row",  # the broken line, named by its position
    }
    assert set(expected.values()) <= set(QUARANTINE_REASONS)
    rows = [*good[:3], *hostile.values(), "{broken json", *good[3:]]
    source = SourceSpec("path", path=str(_write_jsonl(tmp_path / "ref.jsonl", rows)))
    limits = CurationLimits(max_problem_chars=500)
    report = curate({"ref": source, "spatial": synthetic(2)}, tmp_path / "out", seed=0, limits=limits)
    assert _quarantine(tmp_path / "out") == expected
    counts: dict[str, int] = {}
    for reason in expected.values():
        counts[reason] = counts.get(reason, 0) + 1
    assert report.quarantined["ref"] == dict(sorted(counts.items()))
    kept = read_curated(tmp_path / "out", "ref", "train")
    assert [e.id for e in kept] == [e.id for e in refs + scis]
    assert [e.image for e in kept] == [e.image for e in refs + scis]  # the first of two equal ids is kept


def test_parquet_rows_are_validated_too(tmp_path):
    examples = generate("sci", "train", 5, 0)
    path = write_shard(examples, tmp_path / "sci.parquet").path
    bad = {
        **{name: [getattr(examples[0], name)] for name in SHARD_SCHEMA.names},
        "id": ["bad"],
        "solution": ["H"],
    }
    bad["options"], bad["meta"] = [list(examples[0].options)], [encode_meta(examples[0].meta)]
    table = pa.concat_tables([pq.read_table(path), pa.table(bad, schema=SHARD_SCHEMA)])
    pq.write_table(table, tmp_path / "mixed.parquet")
    curate({"sci": SourceSpec("path", path=str(tmp_path / "mixed.parquet"))}, tmp_path / "out", seed=0)
    assert read_curated(tmp_path / "out", "sci", "train") == examples
    assert _quarantine(tmp_path / "out") == {"bad": "bad_mc_answer"}


# --- normalisation ---------------------------------------------------------------------------------


def test_paper_style_save_to_disk_folder_is_adapted(tmp_path):
    images = [Image.new("RGB", (112, 112), (255, 255, 255)) for _ in range(3)]
    records = {
        "image": images,
        "problem": [
            f"Output the bounding box in the image corresponding to the instruction: the box.\n{BOX_INSTRUCTION}",
            f"What colour?\n(A) red\n(B) blue  {MC_INSTRUCTION}",
            "Where is the dot?",
        ],
        "solution": [
            "<answer>[{'Position': [28, 28, 56, 56], 'Confidence': 1}]</answer>",
            "<answer> B </answer>",
            "left",
        ],
    }
    features = datasets.Features(
        {"image": datasets.Image(), "problem": datasets.Value("string"), "solution": datasets.Value("string")}
    )
    datasets.Dataset.from_dict(records, features=features).save_to_disk(str(tmp_path / "hf"))
    curate({"lisa": SourceSpec("path", path=str(tmp_path / "hf"))}, tmp_path / "out", seed=0)
    box, mc, text = read_curated(tmp_path / "out", "lisa", "train")
    assert [e.id for e in (box, mc, text)] == ["lisa-row000000", "lisa-row000001", "lisa-row000002"]
    assert (box.answer_kind, box.solution) == ("box", "[{'Position': [28, 28, 56, 56], 'Confidence': 1}]")
    assert box.problem == "Output the bounding box in the image corresponding to the instruction: the box."
    assert (mc.answer_kind, mc.solution, mc.options) == ("mc", "B", ("red", "blue"))
    assert mc.problem == "What colour?\n(A) red\n(B) blue"
    assert (text.answer_kind, text.solution, text.options) == ("text", "left", ())
    assert Image.open(io.BytesIO(box.image)).format == "PNG"


def test_resize_shrinks_the_long_side_and_rescales_boxes(tmp_path):
    base = generate("ref", "train", 1, 0)[0]
    row = _row(
        base,
        image=_png((1280, 640), fmt="JPEG"),
        solution="[{'Position': [640, 320, 1280, 640], 'Confidence': 0.5}]",
    )
    source = SourceSpec("path", path=str(_write_jsonl(tmp_path / "big.jsonl", [row])))
    curate({"ref": source}, tmp_path / "out", seed=0, limits=CurationLimits(resize_long_side=640))
    (example,) = read_curated(tmp_path / "out", "ref", "train")
    image = Image.open(io.BytesIO(example.image))
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (640, 320))  # a resized JPEG stays JPEG
    assert example.solution == "[{'Position': [320, 160, 640, 320], 'Confidence': 1}]"
    assert example.meta["resized_from"] == "1280x640"


def test_transparent_images_become_rgb_on_white(tmp_path):
    base = generate("sci", "train", 1, 0)[0]
    row = _row(base, image=_png(mode="RGBA", colour=(0, 0, 0, 0)))
    curate(
        {"sci": SourceSpec("path", path=str(_write_jsonl(tmp_path / "a.jsonl", [row])))},
        tmp_path / "out",
        seed=0,
    )
    (example,) = read_curated(tmp_path / "out", "sci", "train")
    image = Image.open(io.BytesIO(example.image))
    assert image.mode == "RGB" and image.getpixel((5, 5)) == (255, 255, 255)


def test_test_fraction_splits_by_content_and_overlap_is_quarantined(tmp_path):
    examples = generate("spatial", "train", 40, 0)
    path = _write_jsonl(tmp_path / "all.jsonl", [_row(e) for e in examples])
    spec = SourceSpec("path", path=str(path), test_fraction=0.5)
    first = curate({"spatial": spec}, tmp_path / "a", seed=0)
    assert first.rows["spatial"]["train"] + first.rows["spatial"]["test"] == 40
    assert min(first.rows["spatial"].values()) > 0
    reordered = _write_jsonl(tmp_path / "rev.jsonl", [_row(e) for e in reversed(examples)])
    curate({"spatial": SourceSpec("path", path=str(reordered), test_fraction=0.5)}, tmp_path / "b", seed=0)
    assert {e.id for e in read_curated(tmp_path / "a", "spatial", "test")} == {
        e.id for e in read_curated(tmp_path / "b", "spatial", "test")
    }
    leak = _write_jsonl(
        tmp_path / "test.jsonl", [_row(examples[3], id="leak"), _row(generate("spatial", "test", 1, 0)[0])]
    )
    curate({"spatial": SourceSpec("path", path=str(path), test_path=str(leak))}, tmp_path / "c", seed=0)
    assert _quarantine(tmp_path / "c") == {"leak": "test_train_overlap"}
    assert len(read_curated(tmp_path / "c", "spatial", "test")) == 1


def test_overlap_is_caught_when_the_test_split_is_read_first(tmp_path):
    # The benchmark "chart" sorts before "spatial": its test rows are read before spatial's
    # training rows, one of which repeats a chart test row.
    bench = generate("chart", "test", 2, 0)
    rows = [_row(e) for e in generate("spatial", "train", 2, 0)] + [
        _row(bench[1], id="copied", domain="spatial")
    ]
    train = _write_jsonl(tmp_path / "train.jsonl", rows)
    sources = {"chart": SourceSpec("synthetic", n_test=2), "spatial": SourceSpec("path", path=str(train))}
    curate(sources, tmp_path / "c", seed=0)
    assert [e.id for e in read_curated(tmp_path / "c", "chart", "test")] == [e.id for e in bench]
    assert _quarantine(tmp_path / "c") == {"copied": "test_train_overlap"}
    assert len(read_curated(tmp_path / "c", "spatial", "train")) == 2


def test_unreadable_sources_fail_with_a_clear_error(tmp_path):
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    (tmp_path / "rows.csv").write_text("id,problem\n")
    (tmp_path / "empty").mkdir()
    splits = {s: datasets.Dataset.from_dict({"problem": ["q"], "solution": ["a"]}) for s in ("train", "test")}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "dd"))
    cases = [
        ("junk.parquet", "not a readable Parquet file"),
        ("rows.csv", "expected a .jsonl or .parquet file"),
        ("empty", "not a datasets.save_to_disk folder"),
        ("dd", "point at one split's folder"),
    ]
    for name, match in cases:
        with pytest.raises(SourceError, match=match):
            curate({"sci": SourceSpec("path", path=tmp_path / name)}, tmp_path / f"out-{name}", seed=0)
        assert not (tmp_path / f"out-{name}").exists()
