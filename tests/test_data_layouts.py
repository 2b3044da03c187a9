"""Published-layout adapters: rows in each dataset's published form become valid Example fields;
hostile rows (wrong columns, bad boxes, a wrong frame) become error records naming the problem."""

from __future__ import annotations

import io
import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from modomodo.data.answers import parse_boxes
from modomodo.data.curate import CurationLimits, validate_record
from modomodo.data.layouts import LAYOUTS, LayoutError, adapt_row, boxes_to_pixels, get_layout, read_layout
from modomodo.data.layouts.base import RowError
from modomodo.data.record_checks import Rejected, normalise_image


def png(width: int = 200, height: int = 100, colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def jpeg(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 240)).save(out, format="JPEG")
    return out.getvalue()


def adapt(layout: str, row: dict, **kwargs):
    return adapt_row(get_layout(layout), row, f"{layout}#0", **kwargs)


def curated(layout: str, row: dict, domain: str = "d", **kwargs):
    """The row through its adapter and curation's validation: the Example curation would keep."""
    record = adapt(layout, row, **kwargs)
    assert record.error is None, record.error
    fields = {"id": "row-0", **record.fields}  # curation numbers rows without an id of their own
    return validate_record(fields, domain=domain, known_domains={domain}, limits=CurationLimits())


COCO_PROBLEM = (
    "Detect all objects belonging to the category 'dog' in the image, and provide the bounding boxes "
    "(between 0 and 1000, integer) and confidence (between 0 and 1, with two decimal places).\n"
    "If no object belonging to the category 'dog' in the image, return 'No Objects'.\n"
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
)


# --- training sets ----------------------------------------------------------------------------------


def test_coco_boxes_on_the_1000_grid_become_pixels_of_the_image():
    row = {
        "image": png(200, 100),
        "problem": COCO_PROBLEM,
        "solution": "<answer>[{'Position': [1, 364, 98, 649], 'Confidence': 1}, "
        "{'Position': [500, 0, 1000, 1000], 'Confidence': 1}]</answer>",
    }
    example = curated("visual_rft_coco", row)
    assert example.answer_kind == "box"
    boxes = parse_boxes(example.solution)
    assert [b.corners for b in boxes] == [(0.2, 36.4, 19.6, 64.9), (100, 0, 200, 100)]
    # The prompt no longer asks for the 0-1000 grid: the stored boxes are pixels.
    assert "between 0 and 1000" not in example.problem and "in pixels of the image" in example.problem
    assert "Output the thinking" not in example.problem
    assert example.meta["box_frame"] == "qwen1000"


def test_a_1000_grid_box_on_an_exif_turned_image_is_read_in_the_frame_it_is_shown_in():
    # A 200x100 JPEG whose EXIF turns it 90 degrees is curated (and shown) as 100x200: the box's
    # 0-1000 grid spans that frame. Read against the header's 200x100 it was [0, 0, 200, 100]: a
    # box outside the stored image, quarantined.
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    out = io.BytesIO()
    Image.new("RGB", (200, 100), (10, 120, 240)).save(out, format="JPEG", exif=exif.tobytes())
    row = {"image": out.getvalue(), "problem": "dog", "solution": "[0, 0, 1000, 1000]"}
    example = curated("visual_rft_coco", row)
    assert Image.open(io.BytesIO(example.image)).size == (100, 200)
    assert [b.corners for b in parse_boxes(example.solution)] == [(0, 0, 100, 200)]


def test_a_1000_grid_box_on_a_small_image_is_kept_not_quarantined_as_outside():
    # Before frames were declared, [100, 100, 900, 900] on a 64x48 image read as pixels: outside.
    example = curated(
        "visual_rft_coco", {"image": png(64, 48), "problem": "dog", "solution": "[100, 100, 900, 900]"}
    )
    assert parse_boxes(example.solution)[0].corners == (6.4, 4.8, 57.6, 43.2)


@pytest.mark.parametrize(
    "solution",
    [
        "<answer> (100,200),(500,800) </answer>",
        "(100, 200), (500, 800)",
        "<answer>(100,200),(500,800)</answer>",
    ],
)
def test_lisa_corner_pairs_with_spaces_inside_the_tags(solution):
    row = {"image": png(300, 150), "problem": "Output the bounding box of the cup.", "solution": solution}
    example = curated("lisa", row)
    assert parse_boxes(example.solution)[0].corners == (30, 30, 150, 120)


def test_a_source_declaring_pixels_keeps_pixel_boxes():
    row = {"image": png(300, 150), "problem": "the cup", "solution": "(10,20),(110,120)"}
    example = curated("lisa", row, frame="pixel")
    assert parse_boxes(example.solution)[0].corners == (10, 20, 110, 120)


@pytest.mark.parametrize(
    ("solution", "frame", "needle"),
    [
        ("(100,200),(1500,800)", None, "outside the qwen1000 frame"),  # pixel boxes declared as 0-1000
        ("[0.1, 0.2, 3.5, 0.4]", "unit", "outside the unit frame"),
        ("[1, 2, 3]", None, "neither a box list"),
        ("[nan, 1, 30, 30]", None, "neither a box list"),
        ("(1,2),(3,4),(5,6)", None, "neither a box list"),
    ],
)
def test_bad_boxes_and_wrong_frames_are_error_records(solution, frame, needle):
    record = adapt("lisa", {"image": png(), "problem": "the cup", "solution": solution}, frame=frame)
    assert record.error and needle in record.error
    assert "image" not in record.fields  # quarantine previews never carry image bytes


def test_a_pixel_box_outside_the_image_is_left_to_curation_which_quarantines_it():
    record = adapt(
        "lisa", {"image": png(50, 50), "problem": "the cup", "solution": "(10,10),(80,40)"}, frame="pixel"
    )
    assert record.error is None
    with pytest.raises(Exception, match="outside the 50x50 image"):
        validate_record(
            {"id": "r", **record.fields}, domain="d", known_domains={"d"}, limits=CurationLimits()
        )


def test_a_lisa_row_with_several_questions_asks_for_the_split_step():
    record = adapt("lisa", {"image": png(), "problem": ["the cup", "the mug"], "solution": "(1,1),(9,9)"})
    assert "run preprocess.one_sample_per_question first" in record.error


def test_every_layouts_metric_is_registered_and_scores_its_answers():
    from modomodo.evaluation.metrics import check_metric

    for layout in LAYOUTS.values():
        check_metric(layout.metric, layout.answer_kinds)


def test_unit_frame_scales_by_width_and_height():
    assert boxes_to_pixels([(0.25, 0.5, 0.75, 1.0)], "unit", (400, 200)) == [(100, 100, 300, 200)]
    with pytest.raises(RowError, match="declares no box frame"):
        boxes_to_pixels([(1, 2, 3, 4)], None, (10, 10))


@pytest.mark.parametrize("layout", ["geoqav", "scienceqa", "sat", "sat_test"])
def test_question_layouts_read_options_and_letters_like_a_path_source(layout):
    row = {
        "image": png(),
        "problem": "Which side is the cup on?\nA. left\nB. right  Output the thinking process in <think> "
        "</think> and final answer (option) in <answer> </answer> tags.",
        "solution": "<answer> B </answer>",
    }
    example = curated(layout, row)
    assert (example.answer_kind, example.solution, example.options) == ("mc", "B", ("left", "right"))
    assert example.problem == "Which side is the cup on?\nA. left\nB. right"


def test_sat_natural_language_answers_stay_text():
    example = curated(
        "sat",
        {
            "image": png(),
            "problem": "Is the cup left or right of the plate?",
            "solution": "<answer>left</answer>",
        },
    )
    assert (example.answer_kind, example.solution) == ("text", "left")


def test_geoqav_accepts_the_8k_sets_extra_columns_and_keeps_them_as_meta():
    row = {
        "image": png(),
        "problem": "x?\nA. 1\nB. 2",
        "solution": "A",
        "original_question": "x",
        "original_answer": "1",
    }
    assert curated("geoqav", row).meta == {"original_answer": "1", "original_question": "x"}


# --- benchmarks -------------------------------------------------------------------------------------


def test_scienceqa_hub_answer_index_becomes_a_letter_and_the_hint_a_context():
    row = {
        "image": png(),
        "question": "Which animal is a mammal?",
        "choices": ["frog", "whale", "trout"],
        "answer": 1,
        "hint": "Look at the picture.",
        "task": "closed choice",
        "grade": "grade4",
        "subject": "natural science",
        "topic": "biology",
        "category": "Classify",
        "skill": "Identify mammals",
        "lecture": "...",
        "solution": "A whale is a mammal.",
    }
    example = curated("scienceqa_hub", row)
    assert (example.solution, example.options) == ("B", ("frog", "whale", "trout"))
    assert (
        example.problem
        == "Context: Look at the picture.\nWhich animal is a mammal?\nA. frog\nB. whale\nC. trout"
    )
    assert example.meta["subject"] == "natural science"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"answer": 3}, "int index"),
        ({"answer": "1"}, "int index"),
        ({"answer": True}, "int index"),
        ({"image": None}, "no image"),
    ],
)
def test_scienceqa_hub_bad_rows(change, needle):
    row = {"image": png(), "question": "q", "choices": ["a", "b", "c"], "answer": 1, **change}
    assert needle in adapt("scienceqa_hub", row).error


def test_chartqa_label_list_and_string():
    for label in (["42"], "42"):
        example = curated(
            "chartqa", {"image": png(), "query": "How many?", "label": label, "human_or_machine": 0}
        )
        assert (example.problem, example.solution, example.answer_kind) == ("How many?", "42", "text")


def test_chartqa_in_lmms_evals_copy():
    example = curated(
        "chartqa_lmms", {"image": png(), "question": "How many?", "answer": "12", "type": "human_test"}
    )
    assert (example.problem, example.solution) == ("How many?", "12")


def test_mathvista_hub_parquet_reads_the_decoded_image_struct(tmp_path):
    row = {
        "pid": "7",
        "question": "How many bars?",
        "image": "images/7.jpg",  # the Hub's file name; the bytes are in decoded_image
        "decoded_image": {"bytes": jpeg(), "path": "7.jpg"},
        "choices": None,
        "unit": None,
        "precision": None,
        "answer": "4",
        "question_type": "free_form",
        "answer_type": "integer",
        "metadata": {"split": "testmini"},
        "query": "Hint: ...",
    }
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "testmini.parquet")
    (record,) = read_layout(tmp_path / "testmini.parquet", get_layout("mathvista"))
    assert record.error is None and record.fields["image"] == row["decoded_image"]["bytes"]
    assert (record.fields["id"], record.fields["solution"]) == ("mathvista-7", "4")


@pytest.mark.parametrize("layout", ["infovqa", "docvqa"])
def test_document_vqa_keeps_every_answer(layout):
    row = {"image": png(), "question": "Which year?", "answers": ["2019", "in 2019"], "questionId": 7}
    example = curated(layout, row)
    assert example.id == f"{layout}-7" and example.solution == "2019"
    assert json.loads(example.meta["answers"]) == ["2019", "in 2019"]
    assert "answers must be a non-empty list" in adapt(layout, {**row, "answers": []}).error


MATHVISTA_BASE = {"pid": "1", "query": "...", "metadata": {"split": "testmini"}, "image": "images/1.jpg"}


def test_mathvista_multiple_choice_keeps_the_choice_text_until_curation_letters_it():
    row = {
        **MATHVISTA_BASE,
        "decoded_image": jpeg(),
        "question": "What fraction is blue?",
        "choices": ["3/11", "8/11", "6/11"],
        "answer": "8/11",
        "question_type": "multi_choice",
        "answer_type": "text",
        "precision": None,
        "unit": None,
    }
    record = adapt("mathvista", row)
    assert record.fields["solution"] == "8/11" and record.fields["answer_kind"] == "mc"
    example = curated("mathvista", row)
    assert (example.id, example.solution, example.options[1]) == ("mathvista-1", "B", "8/11")
    assert example.meta["question_type"] == "multi_choice"


def test_mathvista_free_form_float_records_precision_and_unit():
    row = {
        **MATHVISTA_BASE,
        "decoded_image": jpeg(),
        "question": "How long is the bar?",
        "choices": None,
        "answer": "1.45",
        "question_type": "free_form",
        "answer_type": "float",
        "precision": 2.0,
        "unit": "cm",
    }
    example = curated("mathvista", row)
    assert (example.answer_kind, example.solution) == ("text", "1.45")
    assert (example.meta["precision"], example.meta["unit"], example.meta["answer_type"]) == (
        "2",
        "cm",
        "float",
    )
    assert "whole, non-negative precision" in adapt("mathvista", {**row, "precision": None}).error
    assert (
        "none of the choices"
        in adapt("mathvista", {**row, "question_type": "multi_choice", "choices": ["1", "2"]}).error
    )


@pytest.mark.parametrize(
    ("answer_type", "precision"),
    [
        ("integer", b"\x89PNG"),
        ("integer", "2"),
        ("integer", -1.0),
        ("float", float("inf")),
        ("float", 2.5),
        ("float", True),
    ],
)
def test_a_precision_that_is_no_whole_number_is_a_row_error(answer_type, precision):
    # Found by the fuzzing test: bytes in ``precision`` crashed int() instead of quarantining the row.
    row = {
        **MATHVISTA_BASE,
        "decoded_image": jpeg(),
        "question": "How long is the bar?",
        "choices": None,
        "answer": "1.45" if answer_type == "float" else "3",
        "question_type": "free_form",
        "answer_type": answer_type,
        "precision": precision,
        "unit": "",
    }
    assert "whole" in adapt("mathvista", row).error


def test_mathvista_needs_image_or_decoded_image():
    row = {
        "question": "q",
        "choices": None,
        "answer": "1",
        "question_type": "free_form",
        "answer_type": "integer",
        "precision": None,
        "unit": None,
    }
    assert "missing ['decoded_image or image']" in adapt("mathvista", row).error
    assert curated("mathvista", {**row, "image": png()}).solution == "1"  # image holding bytes


def mmmu_row(**change):
    row = {
        "id": "validation_Art_1",
        "question": "Which painting, <image 1> or <image 2>, is older?",
        "options": "['<image 1>', '<image 2>', 'Both the same']",
        "answer": "A",
        "question_type": "multiple-choice",
        "explanation": "",
        "img_type": "['Paintings']",
        "topic_difficulty": "Easy",
        "subfield": "Art History",
        **{f"image_{i}": None for i in range(1, 8)},
    }
    row["image_1"], row["image_2"] = png(40, 30), png(20, 50, (0, 0, 255))
    row.update(change)
    return row


def test_mmmu_referenced_images_become_the_examples_images_in_order():
    row = mmmu_row()
    example = curated("mmmu", row)
    assert example.images == (row["image_1"], row["image_2"]), "each image as published, none pasted"
    assert example.problem == (
        "Which painting, <image 1> or <image 2>, is older?\nA. <image 1>\nB. <image 2>\nC. Both the same"
    ), "the <image N> references stay as published, as lmms-eval keeps them"
    assert (example.id, example.solution, example.meta["images"]) == (
        "mmmu-validation_Art_1",
        "A",
        "image_1,image_2",
    )


def test_mmmu_images_follow_the_published_order_whatever_order_the_question_names_them_in():
    row = mmmu_row(
        question="Is <image 3> a detail of <image 1>?",
        options="['yes', 'no']",
        image_3=png(30, 30, (0, 200, 0)),
        image_4=png(12, 12),  # present but not referenced: lmms-eval does not pass it
    )
    example = curated("mmmu", row)
    assert example.images == (row["image_1"], row["image_3"]) and example.meta["images"] == "image_1,image_3"


def test_mmmu_extra_images_are_normalised_by_the_rules_of_the_first():
    row = mmmu_row(image_2=jpeg(), image_3=png(20, 20), question="<image 1> <image 2> <image 3>?")
    example = curated("mmmu", row)
    limits = CurationLimits()
    assert example.extra_images == (normalise_image(jpeg(), limits)[0], row["image_3"])


@pytest.mark.parametrize(
    ("image", "reason", "needle"),
    [
        (b"\x89PNG not really", "bad_image", "image 2: "),
        (png(4, 40), "image_size", "image 2: 4x40 is outside"),
    ],
)
def test_a_bad_second_mmmu_image_is_rejected_naming_it(image, reason, needle):
    record = adapt("mmmu", mmmu_row(image_2=image))
    assert record.error is None, "the adapter passes the bytes on; curation checks every image"
    with pytest.raises(Rejected) as rejected:
        validate_record(
            {"id": "r", **record.fields}, domain="d", known_domains={"d"}, limits=CurationLimits()
        )
    assert rejected.value.reason == reason and rejected.value.detail.startswith(needle)


def test_mmmu_open_question_with_one_image():
    row = mmmu_row(
        question="How many apples are in <image 1>?", options="[]", answer="12", question_type="open"
    )
    example = curated("mmmu", row)
    assert (example.answer_kind, example.solution) == ("text", "12")
    assert example.image == row["image_1"]  # one image: stored as published (already RGB PNG)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"options": "['a', 'b'"}, "not a Python-repr list"),
        ({"options": "__import__('os')"}, "not a Python-repr list"),  # never evaluated
        ({"answer": "E"}, "not an option letter"),
        ({"image_2": None}, "image_2 holds no image bytes"),
        ({"question": "See <image 9>."}, "image_1..image_7"),
        ({"question_type": "essay"}, "multiple-choice or open"),
    ],
)
def test_mmmu_bad_rows(change, needle):
    assert needle in adapt("mmmu", mmmu_row(**change)).error


# --- columns ----------------------------------------------------------------------------------------


def test_missing_and_unexpected_columns_are_named():
    record = adapt("chartqa", {"image": png(), "question": "q", "label": ["1"]})
    assert record.error == "columns differ from layout 'chartqa': missing ['query']; unexpected ['question']"


def test_unknown_layout_lists_the_known_ones():
    with pytest.raises(LayoutError, match="known layouts: .*chartqa"):
        get_layout("chart_qa")


# --- readers ----------------------------------------------------------------------------------------


def test_saved_dataset_with_several_image_columns_reads_end_to_end(tmp_path):
    rows = [mmmu_row(), mmmu_row(id="validation_Art_2", answer="Z")]
    features = datasets.Features(
        {
            **{k: datasets.Value("string") for k in rows[0] if not k.startswith("image_")},
            **{f"image_{i}": datasets.Image() for i in range(1, 8)},
        }
    )
    columns = {k: [r[k] for r in rows] for k in features}
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(tmp_path / "mmmu"))
    good, bad = read_layout(tmp_path / "mmmu", get_layout("mmmu"))
    assert good.error is None and good.fields["id"] == "mmmu-validation_Art_1"
    assert "not an option letter" in bad.error and bad.origin.endswith("#1")


def test_saved_dataset_with_other_columns_is_refused_before_reading(tmp_path):
    features = datasets.Features({"image": datasets.Image(), "question": datasets.Value("string")})
    datasets.Dataset.from_dict({"image": [png()], "question": ["q"]}, features=features).save_to_disk(
        str(tmp_path / "hf")
    )
    with pytest.raises(LayoutError, match=r"missing \['label', 'query'\]; unexpected \['question'\]"):
        read_layout(tmp_path / "hf", get_layout("chartqa"))


def test_parquet_with_image_structs_reads_end_to_end(tmp_path):
    table = pa.table(
        {
            "image": [{"bytes": png(), "path": None}, {"bytes": None, "path": "missing.png"}],
            "query": ["How many?", "How many?"],
            "label": [["3"], ["4"]],
        }
    )
    pq.write_table(table, tmp_path / "chartqa.parquet")
    first, second = read_layout(tmp_path / "chartqa.parquet", get_layout("chartqa"))
    assert first.error is None and first.fields["solution"] == "3"
    assert "neither bytes nor a readable path" in second.error
    with pytest.raises(LayoutError, match="unexpected"):
        read_layout(tmp_path / "chartqa.parquet", get_layout("infovqa"))


def test_jsonl_rows_are_checked_one_by_one(tmp_path):
    (tmp_path / "cup.png").write_bytes(png(100, 100))
    lines = [
        {"image_path": "cup.png", "problem": "the cup", "solution": "<answer> (0,0),(500,500) </answer>"},
        {"image_path": "cup.png", "problem": "the cup", "solution": "(0,0),(5,5)", "extra": 1},
        {"problem": "the cup", "solution": "(0,0),(5,5)"},
    ]
    path = tmp_path / "lisa.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    good, extra, no_image, broken = read_layout(path, get_layout("lisa"))
    assert good.error is None and parse_boxes(good.fields["solution"])[0].corners == (0, 0, 50, 50)
    assert extra.error.endswith("unexpected ['extra']")
    assert no_image.error.endswith("missing ['image']")
    assert broken.error.startswith("not JSON")


def test_s3_paths_are_refused_with_the_way_that_works():
    with pytest.raises(Exception, match="upload the dataset as a store artifact"):
        read_layout("s3://bucket/chartqa", get_layout("chartqa"))


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_a_dataset_stored_as_an_artifact_is_fetched_once_and_refetched_when_it_changes(
    request, tmp_path, backend
):
    from modomodo.data.layouts import fetch_dataset
    from modomodo.store import LocalStore, S3Store

    if backend == "file":
        store = LocalStore(tmp_path / "store")
    else:  # real SeaweedFS (tests/servers.py)
        server = request.getfixturevalue("s3_server")
        store = S3Store(
            server.bucket,
            f"layouts/{tmp_path.name}",
            endpoint_url=server.endpoint,
            access_key=server.access_key,
            secret_key=server.secret_key,
        )
    features = datasets.Features(
        {"image": datasets.Image(), "query": datasets.Value("string"), "label": datasets.Value("string")}
    )

    def upload(label: str) -> None:
        folder = tmp_path / f"upload-{label}"
        datasets.Dataset.from_dict(
            {"image": [png()], "query": ["q"], "label": [label]}, features=features
        ).save_to_disk(str(folder))
        store.put_dir(folder, "datasets/chartqa")

    upload("7")
    local = fetch_dataset(store, "datasets/chartqa", tmp_path / "cache")
    (record,) = read_layout(local, get_layout("chartqa"))
    assert record.fields["solution"] == "7"
    arrow = next(local.glob("*.arrow"))
    inode = arrow.stat().st_ino
    assert fetch_dataset(store, "datasets/chartqa", tmp_path / "cache") == local
    assert arrow.stat().st_ino == inode  # the cached copy was reused, not downloaded again
    upload("8")
    (record,) = read_layout(
        fetch_dataset(store, "datasets/chartqa", tmp_path / "cache"), get_layout("chartqa")
    )
    assert record.fields["solution"] == "8"
    assert [p.name for p in (tmp_path / "cache" / "datasets").iterdir() if p.name.startswith(".")] == []


# --- fuzz -------------------------------------------------------------------------------------------

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "A",
            "['a', 'b']",
            "(1,2),(3,4)",
            "<answer>[1, 2, 3, 4]</answer>",
            "<image 1>",
            "multi_choice",
            "open",
        ]
    ),
    st.lists(st.text(max_size=8), max_size=4),
    st.just(png(16, 16)),
    st.binary(max_size=16),
)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_fuzzed_rows_end_as_fields_or_an_error_record(name):
    layout = LAYOUTS[name]
    column_names = sorted(layout.columns) + ["junk"]
    reached_adapter = []

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.dictionaries(st.sampled_from(column_names), _values, max_size=len(column_names)), st.data())
    def check(row, data):
        # Mostly rows with the layout's columns, so the fuzzing reaches the adapter itself.
        if data.draw(st.booleans()):
            row = {**{c: data.draw(_values) for c in layout.required}, **row}
            row.pop("junk", None)
        record = adapt_row(layout, row, "fuzz#0")
        assert record.error is None or (isinstance(record.error, str) and record.error)
        reached_adapter.append(record.error is None or not record.error.startswith("columns differ"))
        if record.error is None:
            assert record.fields["answer_kind"] in layout.answer_kinds
            fields = {"id": "row-0", **record.fields}
            try:
                validate_record(fields, domain="d", known_domains={"d"}, limits=CurationLimits())
            except Exception as exc:  # only curation's own rejection is allowed
                assert type(exc).__name__ == "Rejected", exc

    check()
    assert any(reached_adapter), "no fuzzed row got past the column check"
