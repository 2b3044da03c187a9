"""The paper's training sets as the lineage publishes them: ``image, problem, solution`` columns.

- ``visual_rft_coco``: Visual-RFT's COCO subset (``laolao77/ViRFT_COCO``); the solution is
  ``<answer>[{'Position': [x1, y1, x2, y2], 'Confidence': 1}, ...]</answer>`` on Qwen2-VL's 0-1000
  grid. The problem's "(between 0 and 1000, integer)" is rewritten to the pixel frame the schema
  stores, so prompt and reference agree.
- ``lisa`` / ``lisa_test``: LISA grounding (``yiqingliang/lisa-problems-dataset[-test]``); the
  solution is ``(x1,y1),(x2,y2)`` (Visual-RFT's recipe, often ``<answer> (x1,y1),(x2,y2) </answer>``
  with spaces inside the tags) or a box list as for COCO; 0-1000 grid by default.
- ``geoqav``, ``sat`` / ``sat_test``, ``scienceqa``: question and answer problems
  (``yiqingliang/*-problems-dataset``); read like a path source (``<answer>`` removed, templated
  instruction cut, options read from ``A. ...`` lines, answer kind inferred).

A source whose boxes are in another frame declares it (``frame: pixel``); nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from modomodo.data.answers import parse_boxes
from modomodo.data.layouts.base import (
    AdaptContext,
    Fields,
    Layout,
    RowError,
    image_bytes,
    pixel_solution,
    register_layout,
    text,
)
from modomodo.data.sources import normalise_fields

PAPER_COLUMNS = frozenset({"image", "problem", "solution"})
GEOQAV_EXTRA = frozenset({"original_question", "original_answer"})
"""Columns the 8k multimodal-open-r1 set carries beside the paper's three."""
_NUM = r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*"
_CORNER_PAIR = re.compile(rf"\(\s*{_NUM},{_NUM}\)\s*,\s*\({_NUM},{_NUM}\)")
COCO_FRAME_PHRASE = "(between 0 and 1000, integer)"
PIXEL_FRAME_PHRASE = "(in pixels of the image, integer)"
"""What replaces :data:`COCO_FRAME_PHRASE` in a problem: the stored boxes are pixels."""


def _problem_solution(row: Mapping[str, Any]) -> dict[str, Any]:
    """The paper's columns normalised as a path source's (``sources.normalise_fields``)."""
    if isinstance(row.get("problem"), list | tuple):
        raise RowError("problem lists several questions; run preprocess.one_sample_per_question first")
    for column in ("problem", "solution"):
        text(row, column)
    return normalise_fields({"problem": row["problem"], "solution": row["solution"]})


def adapt_question(row: Mapping[str, Any], ctx: AdaptContext) -> dict[str, Any]:
    """GeoQAV, SAT, ScienceQA rows: options and answer kind as a path source infers them."""
    fields = _problem_solution(row)
    if fields["answer_kind"] == "box":
        raise RowError(f"the solution reads as boxes, not an answer: {fields['solution'][:80]!r}")
    meta = {k: row[k] for k in sorted(GEOQAV_EXTRA) if isinstance(row.get(k), str)}
    return Fields(
        image=image_bytes(row, "image"),
        problem=fields["problem"],
        solution=fields["solution"],
        answer_kind=fields["answer_kind"],
        options=tuple(fields.get("options") or ()),
        meta=meta,
    ).to_dict()


def adapt_boxes(row: Mapping[str, Any], ctx: AdaptContext) -> dict[str, Any]:
    """COCO and LISA rows: the box solution converted from the source's frame to pixels."""
    image = image_bytes(row, "image")
    fields = _problem_solution(row)
    solution = fields["solution"]
    pair = _CORNER_PAIR.fullmatch(solution.strip())
    if pair:
        boxes: list[Any] = [tuple(float(v) for v in pair.groups())]
    else:
        parsed = parse_boxes(solution)
        if parsed is None:
            raise RowError(f"the solution is neither a box list nor (x1,y1),(x2,y2): {solution[:120]!r}")
        boxes = parsed
    problem = fields["problem"].replace(COCO_FRAME_PHRASE, PIXEL_FRAME_PHRASE)
    return Fields(
        image=image,
        problem=problem,
        solution=pixel_solution(boxes, ctx.frame, image),
        answer_kind="box",
        meta={"box_frame": ctx.frame or ""},
    ).to_dict()


for _name, _description in (
    ("visual_rft_coco", "Visual-RFT COCO subset (laolao77/ViRFT_COCO), boxes on the 0-1000 grid"),
    ("lisa", "LISA-train as the paper's lineage converts it, boxes on the 0-1000 grid"),
    ("lisa_test", "LISA-test, same columns as LISA-train"),
):
    register_layout(
        Layout(
            _name,
            required=PAPER_COLUMNS,
            adapt=adapt_boxes,
            answer_kinds={"box"},
            frame="qwen1000",
            metric="mean_iou",
            description=_description,
        )
    )

for _name, _extra, _description in (
    ("geoqav", GEOQAV_EXTRA, "GeoQAV (multimodal-open-r1-8k-verified, filtered to multiple choice)"),
    ("sat", frozenset(), "SAT-train as converted for the paper (image, problem, solution)"),
    ("sat_test", frozenset(), "SAT-test (the SAT val split), same columns"),
    ("scienceqa", frozenset(), "ScienceQA as converted for the paper (image, problem, solution)"),
):
    register_layout(
        Layout(
            _name,
            required=PAPER_COLUMNS,
            optional=_extra,
            adapt=adapt_question,
            answer_kinds={"mc", "text"},
            description=_description,
        )
    )
