"""The paper's preprocessing steps (digest 2.1), each a small pure function with counts.

Every step takes records (:class:`~modomodo.data.sources.Record`: raw rows of a published layout,
or the Example fields an adapter made) and returns the records it keeps plus a
:class:`StepCounts` for the curation report. A record that already carries an ``error`` passes
through untouched, so curation still quarantines it; a row a step drops on purpose (the paper's
filters) is counted under a named reason, never lost silently.

=========================  =====================  ============================================
step                       runs on                what it does
=========================  =====================  ============================================
one_sample_per_question    raw LISA rows          a row listing several questions becomes one
                                                  record per question; the list is shuffled
resize_long_side           adapted fields         longer side above ``max_side`` (640) shrunk,
                                                  box solutions rescaled (curation's resize)
keep_multiple_choice       raw GeoQAV rows        keeps rows whose answer is an option letter
keep_with_image            raw ScienceQA rows     keeps rows that have an image
sample                     any                    ``size`` rows drawn with a seed, source order
=========================  =====================  ============================================

ScienceQA's "options concatenated with letter labels" is the ``scienceqa_hub`` layout's problem.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from modomodo.data.record_checks import CurationLimits, Rejected, normalise_image, rescale_box_solution
from modomodo.data.sources import Record

PAPER_LONG_SIDE = 640
"""The paper resizes LISA (and GeoQAV) images whose longer side exceeds this."""
MULTIPLE_CHOICE_ANSWER = re.compile(r"\s*(?:<answer>)?\s*\(?([A-H])\)?\.?\s*(?:</answer>)?\s*")
"""An answer that is one option letter, bare or in ``<answer>`` tags: ``B``, ``(B)``, ``<answer> B </answer>``.
The paper keeps the GeoQAV items matching "the expected multiple-choice regex" without printing it;
this is ours."""


@dataclass(frozen=True)
class StepCounts:
    """What one preprocessing step did, for the curation report."""

    step: str
    rows_in: int
    rows_out: int
    dropped: dict[str, int] = field(default_factory=dict)
    """Rows removed on purpose, by reason (``not_multiple_choice``, ``no_image``, ``not_sampled``)."""
    changed: dict[str, int] = field(default_factory=dict)
    """Rows kept but altered, by kind (``resized``, ``questions``)."""
    errors: int = 0
    """Records that came in with an error (or got one here) and were passed on for quarantine."""

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": dict(sorted(self.dropped.items())),
            "changed": dict(sorted(self.changed.items())),
            "errors": self.errors,
        }


def one_sample_per_question(
    records: Iterable[Record], *, seed: int, column: str = "problem"
) -> tuple[list[Record], StepCounts]:
    """LISA: every question of an image-box pair becomes its own sample, then all are shuffled.

    A row whose ``column`` is a list of questions is split (origin ``...?q=1``); a row with one
    question (a string) stays as it is. An empty list is an error record.
    """
    out: list[Record] = []
    rows_in = errors = split_rows = 0
    for record in records:
        rows_in += 1
        questions = record.fields.get(column)
        if record.error or not isinstance(questions, list | tuple):
            errors += bool(record.error)
            out.append(record)
            continue
        if not questions:
            errors += 1
            out.append(Record(dict(record.fields), record.origin, f"{column} lists no question"))
            continue
        split_rows += 1
        out.extend(
            Record({**record.fields, column: question}, f"{record.origin}?q={index}")
            for index, question in enumerate(questions)
        )
    random.Random(seed).shuffle(out)
    changed = {"rows_split": split_rows, "questions": len(out) - (rows_in - split_rows)}
    return out, StepCounts("one_sample_per_question", rows_in, len(out), changed=changed, errors=errors)


def resize_long_side(
    records: Iterable[Record], *, max_side: int = PAPER_LONG_SIDE
) -> tuple[list[Record], StepCounts]:
    """LISA/GeoQAV: images whose longer side exceeds ``max_side`` are shrunk (aspect kept, RGB PNG)
    and ``box`` solutions rescaled with them, exactly as curation's ``resize_long_side`` does.

    Runs on adapted Example fields (boxes already in pixels). A row the resize cannot handle (an
    image that does not decode, a box that is not one) becomes an error record with the reason.
    """
    limits = CurationLimits(resize_long_side=max_side)
    out: list[Record] = []
    resized = errors = 0
    for record in records:
        if record.error:
            errors += 1
            out.append(record)
            continue
        fields = dict(record.fields)
        try:
            image, original, stored = normalise_image(fields.get("image"), limits)
            if stored != original:
                if fields.get("answer_kind") == "box":
                    fields["solution"] = rescale_box_solution(str(fields.get("solution")), original, stored)
                fields["image"] = image
                fields["meta"] = {
                    **(fields.get("meta") or {}),
                    "resized_from": f"{original[0]}x{original[1]}",
                }
                resized += 1
        except Rejected as rejected:
            errors += 1
            out.append(
                Record({k: v for k, v in fields.items() if k != "image"}, record.origin, str(rejected))
            )
            continue
        out.append(Record(fields, record.origin))
    counts = StepCounts("resize_long_side", len(out), len(out), changed={"resized": resized}, errors=errors)
    return out, counts


def keep_multiple_choice(
    records: Iterable[Record], *, column: str = "solution", pattern: re.Pattern[str] = MULTIPLE_CHOICE_ANSWER
) -> tuple[list[Record], StepCounts]:
    """GeoQAV: keep the items whose answer ``column`` fully matches ``pattern`` (an option letter)."""

    def keep(record: Record) -> str | None:
        value = record.fields.get(column)
        return None if isinstance(value, str) and pattern.fullmatch(value) else "not_multiple_choice"

    return _filter(records, "keep_multiple_choice", keep)


def keep_with_image(records: Iterable[Record], *, column: str = "image") -> tuple[list[Record], StepCounts]:
    """ScienceQA: keep only problems that have an image."""
    return _filter(records, "keep_with_image", lambda r: None if r.fields.get(column) else "no_image")


def sample(records: Iterable[Record], *, size: int, seed: int) -> tuple[list[Record], StepCounts]:
    """SAT: ``size`` records drawn without replacement with ``seed``, kept in source order.

    Fewer records than ``size`` is an error (the configured size cannot be met), not a short sample.
    """
    rows = list(records)
    if size < 1 or size > len(rows):
        raise ValueError(f"sample: size must be in [1, {len(rows)}] (the rows available), got {size}")
    chosen = sorted(random.Random(seed).sample(range(len(rows)), size))
    out = [rows[i] for i in chosen]
    counts = StepCounts(
        "sample",
        len(rows),
        size,
        dropped={"not_sampled": len(rows) - size} if len(rows) > size else {},
        errors=sum(1 for r in out if r.error),
    )
    return out, counts


def _filter(records: Iterable[Record], step: str, reason_to_drop) -> tuple[list[Record], StepCounts]:
    out: list[Record] = []
    dropped: Counter[str] = Counter()
    rows_in = errors = 0
    for record in records:
        rows_in += 1
        if record.error:
            errors += 1
            out.append(record)
            continue
        reason = reason_to_drop(record)
        if reason is None:
            out.append(record)
        else:
            dropped[reason] += 1
    return out, StepCounts(step, rows_in, len(out), dropped=dict(dropped), errors=errors)
