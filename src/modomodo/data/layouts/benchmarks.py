"""The out-of-domain benchmarks (and ScienceQA-test) in their Hub / lmms-eval layouts.

- ``scienceqa_hub`` (``derek-thomas/ScienceQA``): ``answer`` is an int index into ``choices``; the
  problem is ``Context: {hint}`` (when there is one), the question and the lettered options.
- ``chartqa`` (``HuggingFaceM4/ChartQA``): ``query`` and ``label`` (a one-element list or a string);
  ``chartqa_lmms`` (``lmms-lab/ChartQA``, what lmms-eval reads): ``question``, ``answer``, ``type``.
- ``infovqa`` / ``docvqa`` (``lmms-lab/DocVQA``): ``answers`` is a list; every answer is kept in
  ``meta["answers"]`` (JSON) for ANLS and exact match, the first is the solution.
- ``mathvista`` (``AI4Math/MathVista`` testmini): the image is ``decoded_image`` (or ``image`` when
  that holds the bytes); multiple choice keeps the choice *text* as the solution (curation turns it
  into the letter), ``question_type``, ``answer_type``, ``precision`` and ``unit`` go to ``meta``.
- ``mmmu`` (``MMMU/MMMU`` val): ``options`` is a Python-repr string; the example's images are
  those the question and options reference (``<image 1>``..``<image 7>``, in order, as lmms-eval
  passes them), all present ones when none is referenced; the first is ``image``, the others
  ``extra_images``. The ``<image N>`` references stay in the text as published (lmms-eval keeps
  them too).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from modomodo.data.layouts.base import (
    AdaptContext,
    Fields,
    Layout,
    RowError,
    image_bytes,
    register_layout,
    string_list,
    text,
)
from modomodo.data.prompts import format_options
from modomodo.data.schema import OPTION_LETTERS

SCIENCEQA_EXTRA = frozenset(
    {"hint", "task", "grade", "subject", "topic", "category", "skill", "lecture", "solution"}
)
SCIENCEQA_META = ("subject", "topic", "category", "skill", "grade")
MMMU_IMAGES = tuple(f"image_{i}" for i in range(1, 8))
_IMAGE_REF = re.compile(r"<image (\d+)>")


def _id(ctx: AdaptContext, row: Mapping[str, Any], column: str) -> str | None:
    """``{layout}-{value}`` from the row's own id column (unique across benchmarks), if any."""
    value = row.get(column)
    return f"{ctx.layout}-{value}" if isinstance(value, str | int) and str(value).strip() else None


def _options(choices: list[str], column: str) -> tuple[str, ...]:
    if not 2 <= len(choices) <= len(OPTION_LETTERS) or not all(c.strip() for c in choices):
        raise RowError(f"{column} needs 2-{len(OPTION_LETTERS)} non-blank options, got {len(choices)}")
    return tuple(choices)


def adapt_scienceqa(row: Mapping[str, Any], ctx: AdaptContext) -> dict[str, Any]:
    if row.get("image") is None:
        raise RowError("no image; the paper keeps only ScienceQA problems with one (keep_with_image)")
    options = _options(string_list(row["choices"], "choices"), "choices")
    answer = row["answer"]
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(options):
        raise RowError(f"answer must be an int index into the {len(options)} choices, got {answer!r}")
    hint = row.get("hint")
    context = f"Context: {hint.strip()}\n" if isinstance(hint, str) and hint.strip() else ""
    return Fields(
        image=image_bytes(row, "image"),
        problem=f"{context}{text(row, 'question').strip()}\n{format_options(options)}",
        solution=OPTION_LETTERS[answer],
        answer_kind="mc",
        options=options,
        meta={k: str(row[k]) for k in SCIENCEQA_META if isinstance(row.get(k), str | int)},
    ).to_dict()


def adapt_chartqa(row: Mapping[str, Any], ctx: AdaptContext) -> dict[str, Any]:
    label = row["label"]
    labels = [label] if isinstance(label, str) else string_list(label, "label")
    if not labels or not all(s.strip() for s in labels):
        raise RowError(f"label must hold a non-blank answer, got {labels!r}")
    return Fields(
        image=image_bytes(row, "image"),
        problem=text(row, "query").strip(),
        solution=labels[0].strip(),
        answer_kind="text",
        meta={"answers": json.dumps([s.strip() for s in labels], ensure_ascii=False)},
    ).to_dict()


def adapt_chartqa_lmms(row: Mapping[str, Any], ctx: AdaptContext) -> dict[str, Any]:
    """lmms-eval's copy of ChartQA: ``question`` and ``answer`` instead of ``query`` and ``label``."""
    return adapt_chartqa({"image": row["image"], "query": row["question"], "label": row["answer"]}, ctx)


def adapt_document_vqa(row: Mapping[str, Any], ctx: AdaptContext) -> dict[str, Any]:
    answers = [a.strip() for a in string_list(row["answers"], "answers")]
    if not answers or not all(answers):
        raise RowError(f"answers must be a non-empty list of non-blank strings, got {answers!r}")
    return Fields(
        image=image_bytes(row, "image"),
        problem=text(row, "question").strip(),
        solution=answers[0],
        answer_kind="text",
        meta={"answers": json.dumps(answers, ensure_ascii=False)},
        id=_id(ctx, row, "questionId"),
    ).to_dict()


def _precision(value: Any, answer_type: str) -> float | int | None:
    """MathVista's decimal places: a whole, non-negative number, which a float answer needs; None
    when absent. Anything else (text, bytes, a fraction, infinity) is a row error, not a crash."""
    if isinstance(value, float) and math.isnan(value):  # Parquet/pandas "no precision"
        value = None
    whole = (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )
    if value is None and answer_type != "float":
        return None
    if not whole or int(value) != value:
        needs = "a float answer needs a whole, non-negative precision"
        raise RowError(
            f"{needs if answer_type == 'float' else 'precision must be whole and non-negative'}, got {value!r}"
        )
    return value


def adapt_mathvista(row: Mapping[str, Any], ctx: AdaptContext) -> dict[str, Any]:
    image = next((row[c] for c in ("decoded_image", "image") if isinstance(row.get(c), bytes)), None)
    if image is None:
        raise RowError("neither decoded_image nor image holds image bytes")
    question_type, answer_type = text(row, "question_type"), text(row, "answer_type")
    answer = row["answer"]
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str) or not answer.strip():
        raise RowError(f"answer must be a non-empty string, got {answer!r}")
    precision = _precision(row.get("precision"), answer_type)
    unit = row.get("unit")
    meta = {
        "question_type": question_type,
        "answer_type": answer_type,
        "precision": "" if precision is None else str(int(precision)),
        "unit": unit.strip() if isinstance(unit, str) else "",
    }
    question = text(row, "question").strip()
    if question_type == "multi_choice":
        options = _options(string_list(row["choices"], "choices"), "choices")
        if answer.strip() not in [o.strip() for o in options]:
            raise RowError(f"the answer {answer!r} is none of the choices {list(options)}")
        return Fields(
            image=image,
            problem=f"{question}\n{format_options(options)}",
            solution=answer.strip(),
            answer_kind="mc",
            options=options,
            meta=meta,
            id=_id(ctx, row, "pid"),
        ).to_dict()
    if question_type != "free_form":
        raise RowError(f"question_type must be multi_choice or free_form, got {question_type!r}")
    return Fields(image, question, answer.strip(), "text", meta=meta, id=_id(ctx, row, "pid")).to_dict()


def adapt_mmmu(row: Mapping[str, Any], ctx: AdaptContext) -> dict[str, Any]:
    question = text(row, "question").strip()
    options_text = text(row, "options", allow_empty=True)
    try:
        parsed = ast.literal_eval(options_text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise RowError(f"options is not a Python-repr list: {type(exc).__name__}") from None
    options = string_list(parsed, "options")
    refs = sorted({int(n) for n in _IMAGE_REF.findall(question + " " + options_text)})
    if any(not 1 <= n <= len(MMMU_IMAGES) for n in refs):
        raise RowError(f"the question references images {refs}; MMMU has image_1..image_7")
    columns = [f"image_{n}" for n in refs] or [c for c in MMMU_IMAGES if row.get(c) is not None]
    if not columns:
        raise RowError("the item has no image")
    images = [image_bytes(row, c) for c in columns]
    answer = text(row, "answer").strip()
    question_type = text(row, "question_type")
    meta = {"question_type": question_type, "images": ",".join(columns)}
    first, extra = images[0], tuple(images[1:])
    if question_type == "multiple-choice":
        options = _options(options, "options")
        if answer not in OPTION_LETTERS[: len(options)]:
            raise RowError(f"answer {answer!r} is not an option letter of the {len(options)} options")
        return Fields(
            first,
            f"{question}\n{format_options(options)}",
            answer,
            "mc",
            options,
            meta,
            _id(ctx, row, "id"),
            extra,
        ).to_dict()
    if question_type != "open":
        raise RowError(f"question_type must be multiple-choice or open, got {question_type!r}")
    return Fields(
        first, question, answer, "text", meta=meta, id=_id(ctx, row, "id"), extra_images=extra
    ).to_dict()


register_layout(
    Layout(
        "scienceqa_hub",
        required={"image", "question", "choices", "answer"},
        optional=SCIENCEQA_EXTRA,
        adapt=adapt_scienceqa,
        answer_kinds={"mc"},
        description="ScienceQA on the Hub (derek-thomas/ScienceQA); answer is a choice index",
    )
)
register_layout(
    Layout(
        "chartqa",
        required={"image", "query", "label"},
        optional={"human_or_machine"},
        adapt=adapt_chartqa,
        answer_kinds={"text"},
        metric="relaxed_accuracy",
        description="ChartQA (HuggingFaceM4/ChartQA test, 2,500 in lmms-eval)",
    )
)
register_layout(
    Layout(
        "chartqa_lmms",
        required={"image", "question", "answer"},
        optional={"type"},
        adapt=adapt_chartqa_lmms,
        answer_kinds={"text"},
        metric="relaxed_accuracy",
        description="ChartQA as lmms-eval reads it (lmms-lab/ChartQA test, 2,500)",
    )
)
register_layout(
    Layout(
        "infovqa",
        required={"image", "question", "answers"},
        optional={"questionId", "answer_type", "image_url", "operation/reasoning", "ocr", "data_split"},
        adapt=adapt_document_vqa,
        answer_kinds={"text"},
        metric="anls",
        description="InfographicVQA val (lmms-lab/DocVQA InfographicVQA, 2,801)",
    )
)
register_layout(
    Layout(
        "docvqa",
        required={"image", "question", "answers"},
        optional={
            "questionId",
            "question_types",
            "docId",
            "ucsf_document_id",
            "ucsf_document_page_no",
            "data_split",
        },
        adapt=adapt_document_vqa,
        answer_kinds={"text"},
        metric="anls",
        description="DocVQA val (lmms-lab/DocVQA DocVQA)",
    )
)
register_layout(
    Layout(
        "mathvista",
        required={"question", "choices", "answer", "question_type", "answer_type", "precision", "unit"},
        optional={"pid", "query", "metadata"},
        any_of=({"image", "decoded_image"},),
        adapt=adapt_mathvista,
        answer_kinds={"mc", "text"},
        metric="mathvista",
        description="MathVista testmini (AI4Math/MathVista, 1,000)",
    )
)
register_layout(
    Layout(
        "mmmu",
        required={"question", "options", "answer", "question_type"},
        optional={"id", "explanation", "img_type", "topic_difficulty", "subfield", *MMMU_IMAGES},
        adapt=adapt_mmmu,
        answer_kinds={"mc", "text"},
        metric="mmmu",
        description="MMMU val (MMMU/MMMU, 900)",
        multi_image=True,
    )
)
