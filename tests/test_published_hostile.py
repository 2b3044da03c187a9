"""Hostile published files: wrong columns, a corrupt image, a box outside the declared frame, a
truncated Parquet file. Each is refused before any row is read (a file whose schema is wrong or
unreadable), or its row is quarantined by the curate stage, run on a config that names the file
with its layout (and frame), with a reason and a detail naming the problem; the good rows of the
same file are kept."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from published_layouts import (
    LISA_TEST_SIZE,
    objects_image,
    write_chartqa,
    write_chartqa_lmms,
    write_lisa_test,
    write_mmmu,
    write_sat,
    write_sat_test,
    write_visual_rft_coco,
)

from modomodo.config import load_config
from modomodo.data.curate import QUARANTINE_FILE, CurationReport
from modomodo.data.layouts import LayoutError, get_layout, read_layout
from modomodo.data.sources import SourceError
from modomodo.stages.curate import curate_stage

ACCURACY = [{"name": "format"}, {"name": "accuracy"}]


def _read(path: Path, layout: str, **kwargs):
    return list(read_layout(path, get_layout(layout), **kwargs))


def _curate(tmp_path: Path, *, domains=None, benchmarks=None) -> tuple[CurationReport, list[dict]]:
    """The curate stage on a config naming the hostile file (a clean SAT training set or ChartQA
    benchmark fills the other section), and the lines of its quarantine file."""
    clean = tmp_path / "clean"
    domains = domains or {"sat": {"source": str(write_sat(clean)), "layout": "sat", "rewards": ACCURACY}}
    benchmarks = benchmarks or {"chartqa": {"path": str(write_chartqa(clean)), "layout": "chartqa"}}
    cfg = load_config(
        "smoke", [f"data.domains={json.dumps(domains)}", f"data.benchmarks={json.dumps(benchmarks)}"]
    )
    report = curate_stage(cfg, tmp_path / "curated")
    lines = (tmp_path / "curated" / QUARANTINE_FILE).read_text().splitlines()
    return report, [json.loads(line) for line in lines]


def _rewrite_dataset(path: Path, change) -> Path:
    """A copy of a saved dataset with ``change(rows)`` applied (images kept encoded)."""
    loaded = datasets.load_from_disk(str(path))
    for name, feature in loaded.features.items():
        if isinstance(feature, datasets.Image):
            loaded = loaded.cast_column(name, datasets.Image(decode=False))
    rows = change([dict(r) for r in loaded])
    out = path.with_name(path.name + "-hostile")
    datasets.Dataset.from_list(rows, features=loaded.features).save_to_disk(str(out))
    return out


def test_a_parquet_file_with_another_layouts_columns_is_refused_naming_them(tmp_path):
    path = write_chartqa(tmp_path)
    table = pq.read_table(path)
    pq.write_table(table.rename_columns(["image", "question", "label", "human_or_machine"]), path)
    with pytest.raises(LayoutError, match=r"missing \['query'\]; unexpected \['question'\]"):
        read_layout(path, get_layout("chartqa"))


def test_a_saved_dataset_without_a_required_column_is_refused_before_any_row_is_read(tmp_path):
    path = write_mmmu(tmp_path)
    datasets.load_from_disk(str(path)).remove_columns("options").save_to_disk(str(tmp_path / "no-options"))
    with pytest.raises(LayoutError, match=r"columns differ from layout 'mmmu': missing \['options'\]"):
        read_layout(tmp_path / "no-options", get_layout("mmmu"))


def test_a_one_split_dataset_dict_with_another_layouts_columns_is_refused_too(tmp_path):
    # load_dataset("lmms-lab/ChartQA", split=None).save_to_disk(...) writes a DatasetDict; read as the
    # HuggingFaceM4 layout, every row used to become its own error record instead of one refusal.
    split = datasets.load_from_disk(str(write_chartqa_lmms(tmp_path)))
    datasets.DatasetDict({"test": split}).save_to_disk(str(tmp_path / "dict"))
    assert [r.error for r in _read(tmp_path / "dict", "chartqa_lmms")] == [None] * 3
    with pytest.raises(
        LayoutError, match=r"missing \['label', 'query'\]; unexpected \['answer', 'question', 'type'\]"
    ):
        read_layout(tmp_path / "dict", get_layout("chartqa"))


def test_a_jsonl_row_with_unexpected_columns_is_quarantined_and_the_others_are_kept(tmp_path):
    path = write_sat_test(tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["answer"] = "left"  # a ChartQA-style column in a SAT file
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report, (line,) = _curate(tmp_path, benchmarks={"sat_val": {"path": str(path), "layout": "sat_test"}})
    assert report.rows["sat_val"] == {"train": 0, "test": 2}
    assert report.quarantined["sat_val"] == {"unreadable_row": 1}
    assert (line["reason"], line["split"]) == ("unreadable_row", "test")
    assert line["detail"] == "columns differ from layout 'sat_test': unexpected ['answer']"
    assert line["fields"]["problem"] == rows[1]["problem"], "the row's text is kept in the quarantine"


def test_a_corrupt_image_in_a_box_layout_is_quarantined_naming_the_decode_failure(tmp_path):
    # A box layout decodes the image to convert its 0-1000 boxes to pixels: the row fails there.
    path = _rewrite_dataset(
        write_visual_rft_coco(tmp_path),
        lambda rows: [
            {**r, "image": {"bytes": r["image"]["bytes"][:40], "path": None}} if i == 2 else r
            for i, r in enumerate(rows)
        ],
    )
    coco = {"source": str(path), "layout": "visual_rft_coco",
            "rewards": [{"name": "format"}, {"name": "iou_visual_rft"}]}  # fmt: skip
    report, (line,) = _curate(tmp_path, domains={"coco": coco})
    assert report.rows["coco"] == {"train": 3, "test": 0}
    assert report.quarantined["coco"] == {"unreadable_row": 1}
    assert line["detail"].startswith("visual_rft_coco: the image does not decode")
    assert "category 'car'" in line["fields"]["problem"] and line["split"] == "train"


def test_a_corrupt_second_mmmu_image_is_quarantined_naming_image_2(tmp_path):
    path = _rewrite_dataset(
        write_mmmu(tmp_path),
        lambda rows: [
            {**r, "image_2": {"bytes": b"\x89PNG not really", "path": None}} if i == 0 else r
            for i, r in enumerate(rows)
        ],
    )
    report, (line,) = _curate(tmp_path, benchmarks={"mmmu": {"path": str(path), "layout": "mmmu"}})
    assert report.rows["mmmu"]["test"] == 2 and report.quarantined["mmmu"] == {"bad_image": 1}
    assert line["detail"].startswith("image 2: "), "curation checks every image and names the bad one"
    assert line["fields"]["problem"].startswith("How many dots")


def test_a_corrupt_image_the_adapter_passes_is_quarantined_by_curation_as_bad_image(tmp_path):
    path = write_sat_test(tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["image"] = base64.b64encode(b"GIF89a truncated").decode()
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert all(r.error is None for r in _read(path, "sat_test")), (
        "SAT's adapter does not decode images; curation does"
    )
    report, (line,) = _curate(tmp_path, benchmarks={"sat_val": {"path": str(path), "layout": "sat_test"}})
    assert report.rows["sat_val"]["test"] == 2 and report.quarantined["sat_val"] == {"bad_image": 1}
    assert line["reason"] == "bad_image" and "Is the red box" in line["fields"]["problem"]


def test_a_box_outside_the_declared_frame_is_quarantined_naming_the_frame(tmp_path):
    path = _rewrite_dataset(
        write_lisa_test(tmp_path),
        lambda rows: [
            {**r, "solution": "<answer> (100,100),(1200,900) </answer>"} if i == 1 else r
            for i, r in enumerate(rows)
        ],
    )
    report, (line,) = _curate(tmp_path, benchmarks={"lisa": {"path": str(path), "layout": "lisa_test"}})
    assert report.rows["lisa"]["test"] == 2 and report.quarantined["lisa"] == {"unreadable_row": 1}
    assert "box [100.0, 100.0, 1200.0, 900.0] lies outside the qwen1000 frame (0-1000)" in line["detail"]
    assert line["fields"]["problem"] == "the red ball"


def test_a_pixel_box_outside_its_image_is_quarantined_as_bad_box(tmp_path):
    # The source declares pixel boxes; a box past the 1000x500 image is not converted, it is refused.
    pixels = ["(100,50),(300,450)", "(600,200),(900,700)", "(400,100),(550,300)"]  # the middle one: y2 > 500
    path = _rewrite_dataset(
        write_lisa_test(tmp_path),
        lambda rows: [
            {**r, "solution": f"<answer> {box} </answer>"} for r, box in zip(rows, pixels, strict=True)
        ],
    )
    lisa = {"path": str(path), "layout": "lisa_test", "frame": "pixel"}
    report, (line,) = _curate(tmp_path, benchmarks={"lisa": lisa})
    assert report.quarantined["lisa"] == {"bad_box": 1} and report.rows["lisa"]["test"] == 2
    width, height = LISA_TEST_SIZE
    assert (
        line["detail"] == f"box [600.0, 200.0, 900.0, 700.0] is empty or outside the {width}x{height} image"
    )
    assert line["fields"]["problem"] == "the red ball"


def test_a_truncated_parquet_file_is_refused_naming_the_file(tmp_path):
    path = write_chartqa(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=rf"{path.name}: not a readable Parquet file"):
        read_layout(path, get_layout("chartqa"))


def test_an_s3_path_is_refused_with_how_to_read_it(tmp_path):
    with pytest.raises(SourceError, match="upload the dataset as a store artifact"):
        read_layout("s3://bucket/chartqa/test.parquet", get_layout("chartqa"))


def test_fixture_images_are_drawn_not_blank():
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(objects_image((100, 50), [("dog", (10, 10, 40, 40), (220, 30, 30))]))) as image:
        colours = {c for _, c in image.getcolors(10_000)}
    assert (220, 30, 30) in colours and (255, 255, 255) in colours
