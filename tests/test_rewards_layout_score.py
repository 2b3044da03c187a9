"""``modomodo rewards score --layout``: solutions in their published forms (Visual-RFT's COCO boxes
on the 0-1000 grid inside ``<answer>`` tags, LISA's ``(x1,y1),(x2,y2)``) are run through the layout
first and scored as pixel boxes, as curation stores them; without the layout such a solution was
read as text. Fast."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from modomodo.cli import app

COCO_PROBLEM = "Detect all objects belonging to the category 'dog' (between 0 and 1000, integer)."


def png(width: int = 200, height: int = 100) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 30)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def answer(*boxes: tuple[float, float, float, float]) -> str:
    listed = ", ".join(f"{{'Position': {list(b)}, 'Confidence': 1}}" for b in boxes)
    return f"<think> there it is </think> <answer>[{listed}]</answer>"


def score(tmp_path: Path, rows: list[dict], *flags: str):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["rewards", "score", "--input", str(path), "--json", *flags])
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    return result, lines


def coco_row(
    completion: str, solution: str = "<answer>[{'Position': [100, 100, 500, 500], 'Confidence': 1}]</answer>"
):
    return {"image": png(), "problem": COCO_PROBLEM, "solution": solution, "completion": completion,
            "rewards": ["iou_continuous"]}  # fmt: skip


def test_coco_boxes_on_the_1000_grid_are_scored_as_pixel_boxes_of_the_image(tmp_path):
    # [100, 100, 500, 500] on the grid of a 200 x 100 image is (20, 10, 100, 50) in pixels
    right, grid_copy = answer((20, 10, 100, 50)), answer((100, 100, 500, 500))
    result, (pixels, copied) = score(
        tmp_path, [coco_row(right), coco_row(grid_copy)], "--layout", "visual_rft_coco"
    )
    assert result.exit_code == 0, result.output
    assert pixels["answer_kind"] == "box" and pixels["total"] == pytest.approx(1.0)
    # the grid numbers copied as pixels, (100, 100, 500, 500), miss the pixel box (20, 10, 100, 50)
    assert copied["total"] == 0.0
    # without the layout the published solution is read as text, which no box reward scores
    plain = {k: v for k, v in coco_row(right).items() if k not in ("image", "problem")}
    _, (unadapted,) = score(tmp_path, [plain])
    assert "needs answer_kind 'box', got 'text'" in unadapted["error"]


@pytest.mark.parametrize("solution", ["(0,0),(1000,1000)", "<answer> (0,0),(1000,1000) </answer>"])
def test_lisa_corner_pairs_become_the_box_the_completion_is_scored_against(tmp_path, solution):
    row = {"image": png(), "problem": "the dog", "solution": solution, "completion": answer((0, 0, 200, 100)),
           "domain": "ref"}  # fmt: skip
    result, (scored,) = score(tmp_path, [row], "--layout", "lisa")
    assert result.exit_code == 0, result.output
    assert scored["domain"] == "ref" and scored["parts"]["iou_continuous"] == pytest.approx(1.0)
    # the same numbers declared as pixels of the image: the box leaves the 200 x 100 image
    result, (refused,) = score(tmp_path, [row], "--layout", "lisa", "--frame", "pixel")
    assert result.exit_code == 1 and refused["line"] == 1
    assert "bad_box" in refused["error"]


def test_bad_rows_are_errors_naming_their_line_and_the_rest_is_scored(tmp_path):
    good = coco_row(answer((20, 10, 100, 50)))
    off_grid = coco_row(
        answer((0, 0, 1, 1)), "<answer>[{'Position': [0, 0, 1200, 10], 'Confidence': 1}]</answer>"
    )
    extra = {**good, "colour": "red"}
    result, lines = score(tmp_path, [good, off_grid, extra], "--layout", "visual_rft_coco")
    assert result.exit_code == 1
    assert lines[0]["total"] == pytest.approx(1.0)
    assert lines[1]["line"] == 2 and "outside the qwen1000 frame" in lines[1]["error"]
    assert lines[2]["line"] == 3 and "unexpected ['colour']" in lines[2]["error"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--layout", "nope"], "unknown layout 'nope'; known layouts"),
        (["--layout", "lisa", "--frame", "inch"], "--frame must be one of"),
    ],
)
def test_a_bad_layout_or_frame_is_refused_before_scoring(tmp_path, flags, message):
    result, lines = score(tmp_path, [coco_row(answer((1, 1, 2, 2)))], *flags)
    assert result.exit_code == 2 and not lines
    assert message in " ".join(result.output.split())
