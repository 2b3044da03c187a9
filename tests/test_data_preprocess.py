"""The paper's preprocessing steps: what each keeps, drops and changes, and the counts it reports."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from modomodo.data.answers import parse_boxes
from modomodo.data.layouts import adapt_row, get_layout
from modomodo.data.preprocess import (
    keep_multiple_choice,
    keep_with_image,
    one_sample_per_question,
    resize_long_side,
    sample,
)
from modomodo.data.sources import Record, read_raw_records


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 90, 90)).save(out, format="PNG")
    return out.getvalue()


def rows(*fields: dict) -> list[Record]:
    return [Record(f, f"src#{i}") for i, f in enumerate(fields)]


BROKEN = Record({}, "src#x", "not JSON")


def test_one_sample_per_question_splits_lists_and_shuffles_with_the_seed():
    records = rows(
        {"image": b"i1", "problem": ["the cup", "what holds coffee", "the mug"], "solution": "(1,1),(9,9)"},
        {"image": b"i2", "problem": "the dog", "solution": "(2,2),(8,8)"},
        {"image": b"i3", "problem": [], "solution": "(2,2),(8,8)"},
    ) + [BROKEN]
    out, counts = one_sample_per_question(records, seed=3)
    assert sorted(r.fields.get("problem") for r in out if not r.error) == [
        "the cup",
        "the dog",
        "the mug",
        "what holds coffee",
    ]
    assert {r.origin for r in out if r.fields.get("image") == b"i1"} == {
        "src#0?q=0",
        "src#0?q=1",
        "src#0?q=2",
    }
    assert [r.error for r in out if r.error] in (
        ["problem lists no question", "not JSON"],
        ["not JSON", "problem lists no question"],
    )
    assert counts.to_json() == {
        "step": "one_sample_per_question",
        "rows_in": 4,
        "rows_out": 6,
        "dropped": {},
        "changed": {"questions": 3, "rows_split": 1},
        "errors": 2,
    }
    again, _ = one_sample_per_question(records, seed=3)
    other, _ = one_sample_per_question(records * 3, seed=4)
    assert [r.origin for r in again] == [r.origin for r in out]
    assert [r.origin for r in other] != sorted(r.origin for r in other)  # shuffled, not in source order


def test_resize_long_side_shrinks_to_640_and_rescales_pixel_boxes():
    lisa = get_layout("lisa")
    big = adapt_row(
        lisa, {"image": png(1280, 960), "problem": "the cup", "solution": "(100,100),(500,500)"}, "a"
    )
    small = adapt_row(
        lisa, {"image": png(320, 200), "problem": "the cup", "solution": "(100,100),(500,500)"}, "b"
    )
    assert parse_boxes(big.fields["solution"])[0].corners == (128, 96, 640, 480)  # 0-1000 -> pixels
    bad = Record(
        {"image": b"not an image", "problem": "p", "solution": "[1, 1, 2, 2]", "answer_kind": "box"}, "c"
    )
    out, counts = resize_long_side([big, small, bad, BROKEN])
    with Image.open(io.BytesIO(out[0].fields["image"])) as image:
        assert image.size == (640, 480)
    assert parse_boxes(out[0].fields["solution"])[0].corners == (64, 48, 320, 240)
    assert out[0].fields["meta"]["resized_from"] == "1280x960"
    assert out[1].fields == small.fields  # under 640: untouched, bytes and all
    assert out[2].error.startswith("bad_image") and out[3] is BROKEN
    assert (counts.rows_in, counts.rows_out, counts.changed, counts.errors) == (4, 4, {"resized": 1}, 2)


def test_resize_long_side_keeps_text_answers_unchanged():
    record = Record({"image": png(700, 100), "problem": "p", "solution": "B", "answer_kind": "mc"}, "a")
    (out,), counts = resize_long_side([record], max_side=350)
    assert out.fields["solution"] == "B" and counts.changed == {"resized": 1}
    with Image.open(io.BytesIO(out.fields["image"])) as image:
        assert image.size == (350, 50)


@pytest.mark.parametrize(
    ("solution", "kept"),
    [
        ("B", True),
        ("<answer> C </answer>", True),
        ("(A)", True),
        ("<answer>D.</answer>", True),
        ("<answer> 3 </answer>", False),
        ("<answer>B and C</answer>", False),
        ("The answer is B", False),
        ("I", False),
        (None, False),
    ],
)
def test_keep_multiple_choice(solution, kept):
    out, counts = keep_multiple_choice(rows({"image": b"i", "problem": "p", "solution": solution}))
    assert bool(out) == kept
    assert counts.dropped == ({} if kept else {"not_multiple_choice": 1})


def test_keep_with_image_counts_what_it_drops_and_passes_errors_on():
    records = rows(
        {"image": b"png", "question": "q"}, {"image": None, "question": "q"}, {"question": "q"}
    ) + [BROKEN]
    out, counts = keep_with_image(records)
    assert [r.origin for r in out] == ["src#0", "src#x"]
    assert (counts.rows_in, counts.rows_out, counts.dropped, counts.errors) == (4, 2, {"no_image": 2}, 1)


def test_sample_is_seeded_in_source_order_and_refuses_too_few_rows():
    records = rows(*({"i": i} for i in range(100)))
    out, counts = sample(records, size=15, seed=42)
    again, _ = sample(records, size=15, seed=42)
    other, _ = sample(records, size=15, seed=43)
    indices = [r.fields["i"] for r in out]
    assert indices == sorted(indices) and len(set(indices)) == 15
    assert indices == [r.fields["i"] for r in again] and indices != [r.fields["i"] for r in other]
    assert counts.dropped == {"not_sampled": 85} and counts.rows_out == 15
    with pytest.raises(ValueError, match=r"size must be in \[1, 100\]"):
        sample(records, size=101, seed=0)


def test_scienceqa_from_a_saved_hub_dataset_keeps_image_problems_with_lettered_options(tmp_path):
    import datasets

    from modomodo.data.curate import CurationLimits, validate_record

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "question": datasets.Value("string"),
            "choices": datasets.Sequence(datasets.Value("string")),
            "answer": datasets.Value("int8"),
            "hint": datasets.Value("string"),
        }
    )
    columns = {
        "image": [png(30, 20), None, png(40, 20)],
        "question": ["Which is a mammal?", "Which is hot?", "Which is a fish?"],
        "choices": [["frog", "whale"], ["ice", "fire"], ["trout", "cat", "owl"]],
        "answer": [1, 1, 0],
        "hint": ["", "", "Look closely."],
    }
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(tmp_path / "sqa"))
    kept, counts = keep_with_image(read_raw_records(tmp_path / "sqa"))
    assert counts.dropped == {"no_image": 1}
    layout = get_layout("scienceqa_hub")
    examples = [
        validate_record(
            {"id": f"sqa-{i}", **adapt_row(layout, r.fields, r.origin).fields},
            domain="sqa",
            known_domains={"sqa"},
            limits=CurationLimits(),
        )
        for i, r in enumerate(kept)
    ]
    assert [(e.problem, e.solution) for e in examples] == [
        ("Which is a mammal?\nA. frog\nB. whale", "B"),
        ("Context: Look closely.\nWhich is a fish?\nA. trout\nB. cat\nC. owl", "A"),
    ]


def test_lisa_from_jsonl_split_adapted_and_resized(tmp_path):
    import json

    from modomodo.data.layouts import read_layout

    (tmp_path / "big.png").write_bytes(png(1280, 640))
    row = {
        "image_path": "big.png",
        "problem": ["the lamp", "what gives light"],
        "solution": "(0,0),(500,500)",
    }
    (tmp_path / "lisa.jsonl").write_text(json.dumps(row) + "\n")
    raw = list(read_raw_records(tmp_path / "lisa.jsonl"))
    split, _ = one_sample_per_question(raw, seed=0)
    layout = get_layout("lisa")
    adapted = [adapt_row(layout, r.fields, r.origin) for r in split]
    resized, counts = resize_long_side(adapted)
    assert counts.changed == {"resized": 2} and counts.errors == 0
    assert {parse_boxes(r.fields["solution"])[0].corners for r in resized} == {(0, 0, 320, 160)}
    # read_layout on the unsplit file names the missing step instead of guessing.
    (record,) = read_layout(tmp_path / "lisa.jsonl", layout)
    assert "one_sample_per_question" in record.error
