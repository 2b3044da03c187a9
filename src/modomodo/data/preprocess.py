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

Streaming: every step but ``one_sample_per_question`` (its shuffle needs all the rows) has a
``*_stream`` twin returning a :class:`StepStream`, an iterator of the kept records whose
``counts`` (the same :class:`StepCounts`) are known once it is read to the end; the list functions
collect it. ``sample_stream`` reads its source twice (count, then draw) and makes the same draw as
``sample``; ``at_most_stream`` (a benchmark's ``size``) is that draw, or every row when there are
no more than ``size``; ``resize_long_side_stream`` resizes on worker threads, in source order.
``held_stream`` presents a list step as a :class:`StepStream` that holds its output.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from modomodo.data.record_checks import CurationLimits, Rejected, normalise_image, rescale_box_solution
from modomodo.data.sources import Record
from modomodo.data.streaming import ordered_map

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
    """:func:`resize_long_side_stream`, collected into a list."""
    return _collect(resize_long_side_stream(records, max_side=max_side))


def resize_long_side_stream(
    records: Iterable[Record], *, max_side: int = PAPER_LONG_SIDE, workers: int = 1
) -> StepStream:
    """LISA/GeoQAV: images whose longer side exceeds ``max_side`` are shrunk (aspect kept; a JPEG
    stays JPEG, anything else becomes RGB PNG) and ``box`` solutions rescaled with them, exactly as
    curation's ``resize_long_side`` does.

    Runs on adapted Example fields (boxes already in pixels). A row the resize cannot handle (an
    image that does not decode, a box that is not one) becomes an error record with the reason.
    ``workers`` threads resize, in source order, ``2 * workers`` records in flight.
    """
    limits = CurationLimits(resize_long_side=max_side)

    def resize(record: Record) -> tuple[Record, str | None]:
        if record.error:
            return record, "error"
        fields = dict(record.fields)
        try:
            image, original, stored = normalise_image(fields.get("image"), limits)
        except Rejected as rejected:
            return Record(
                {k: v for k, v in fields.items() if k != "image"}, record.origin, str(rejected)
            ), "error"
        if stored == original:
            return Record(fields, record.origin), None
        try:
            if fields.get("answer_kind") == "box":
                fields["solution"] = rescale_box_solution(str(fields.get("solution")), original, stored)
        except Rejected as rejected:
            return Record(
                {k: v for k, v in fields.items() if k != "image"}, record.origin, str(rejected)
            ), "error"
        fields["image"] = image
        fields["meta"] = {**(fields.get("meta") or {}), "resized_from": f"{original[0]}x{original[1]}"}
        return Record(fields, record.origin), "resized"

    def run(tally: _Tally) -> Iterator[Record]:
        tally.changed["resized"] = 0
        for _, (out, what) in ordered_map(resize, records, workers=workers):
            tally.rows_in += 1
            tally.errors += what == "error"
            tally.changed["resized"] += what == "resized"
            yield out

    return StepStream("resize_long_side", run)


def keep_multiple_choice(
    records: Iterable[Record], *, column: str = "solution", pattern: re.Pattern[str] = MULTIPLE_CHOICE_ANSWER
) -> tuple[list[Record], StepCounts]:
    """:func:`keep_multiple_choice_stream`, collected into a list."""
    return _collect(keep_multiple_choice_stream(records, column=column, pattern=pattern))


def keep_multiple_choice_stream(
    records: Iterable[Record], *, column: str = "solution", pattern: re.Pattern[str] = MULTIPLE_CHOICE_ANSWER
) -> StepStream:
    """GeoQAV: keep the items whose answer ``column`` fully matches ``pattern`` (an option letter)."""

    def keep(record: Record) -> str | None:
        value = record.fields.get(column)
        return None if isinstance(value, str) and pattern.fullmatch(value) else "not_multiple_choice"

    return _filter(records, "keep_multiple_choice", keep)


def keep_with_image(records: Iterable[Record], *, column: str = "image") -> tuple[list[Record], StepCounts]:
    """:func:`keep_with_image_stream`, collected into a list."""
    return _collect(keep_with_image_stream(records, column=column))


def keep_with_image_stream(records: Iterable[Record], *, column: str = "image") -> StepStream:
    """ScienceQA: keep only problems that have an image."""
    return _filter(records, "keep_with_image", lambda r: None if r.fields.get(column) else "no_image")


def sample(records: Iterable[Record], *, size: int, seed: int) -> tuple[list[Record], StepCounts]:
    """SAT: ``size`` records drawn without replacement with ``seed``, kept in source order.

    Fewer records than ``size`` is an error (the configured size cannot be met), not a short sample.
    """
    rows = list(records)
    return _collect(sample_stream(lambda: rows, size=size, seed=seed))


def sample_stream(
    open_records: Callable[[], Iterable[Record]], *, size: int, seed: int, rows: int | None = None
) -> StepStream:
    """:func:`sample` in two passes over a source that ``open_records`` opens afresh each time.

    The first pass counts the rows, the draw is then made on row numbers (the very draw of
    :func:`sample`: ``sorted(random.Random(seed).sample(range(rows), size))``), and the second pass
    yields the drawn rows in source order. Memory holds ``size`` row numbers and one record, never
    the rows; the result is a function of the source's order, ``size`` and ``seed`` only. Fewer
    rows than ``size`` raises ``ValueError`` after the first pass, before any record is yielded.
    A caller that has counted the rows already passes ``rows``: the first pass is skipped and a
    ``size`` the rows cannot meet raises here, at once.
    """
    return StepStream("sample", _drawn(open_records, size, seed, rows, keep_all_up_to_size=False))


def at_most_stream(
    open_records: Callable[[], Iterable[Record]], *, size: int, seed: int, rows: int | None = None
) -> StepStream:
    """A benchmark capped at ``size``: every record when there are at most ``size``, else
    :func:`sample_stream`'s draw of ``size`` (same passes, same ``rows``); counted as ``at_most``."""
    return StepStream("at_most", _drawn(open_records, size, seed, rows, keep_all_up_to_size=True))


def _draw(rows: int, size: int, seed: int, keep_all_up_to_size: bool) -> Sequence[int]:
    """The row numbers :func:`sample_stream` (or :func:`at_most_stream`) keeps, ascending."""
    if keep_all_up_to_size and rows <= size:
        return range(rows)
    if size < 1 or size > rows:
        raise ValueError(f"sample: size must be in [1, {rows}] (the rows available), got {size}")
    return sorted(random.Random(seed).sample(range(rows), size))


def _drawn(
    open_records: Callable[[], Iterable[Record]],
    size: int,
    seed: int,
    rows: int | None,
    *,
    keep_all_up_to_size: bool,
) -> Callable[[_Tally], Iterator[Record]]:
    known = None if rows is None else _draw(rows, size, seed, keep_all_up_to_size)

    def run(tally: _Tally) -> Iterator[Record]:
        available = sum(1 for _ in open_records()) if rows is None else rows
        chosen = _draw(available, size, seed, keep_all_up_to_size) if known is None else known
        tally.rows_in = available
        if available > len(chosen):
            tally.dropped["not_sampled"] = available - len(chosen)
        wanted = iter(chosen)
        following = next(wanted, -1)
        if following < 0:
            return
        for index, record in enumerate(open_records()):
            if index == following:
                tally.errors += bool(record.error)
                yield record
                following = next(wanted, -1)
                if following < 0:
                    return
        raise ValueError(
            f"sample: the source gave fewer rows on its second pass than its first ({available})"
        )

    return run


@dataclass
class _Tally:
    rows_in: int = 0
    rows_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    changed: Counter[str] = field(default_factory=Counter)
    errors: int = 0


class StepStream(Iterator[Record]):
    """The records a step keeps, made as they are read (one record in memory at a time, or a
    bounded window where the step works in parallel); :attr:`counts` once the stream is read to
    its end. Read twice, it is empty the second time, like any iterator."""

    def __init__(self, step: str, run: Callable[[_Tally], Iterator[Record]]):
        self.step = step
        self._tally = _Tally()
        self._records = run(self._tally)
        self._done = False

    def __next__(self) -> Record:
        try:
            record = next(self._records)
        except StopIteration:
            self._done = True
            raise
        self._tally.rows_out += 1
        return record

    @property
    def counts(self) -> StepCounts:
        if not self._done:
            raise RuntimeError(f"{self.step}: the counts are known once the stream is read to its end")
        tally = self._tally
        return StepCounts(
            self.step, tally.rows_in, tally.rows_out, dict(tally.dropped), dict(tally.changed), tally.errors
        )


def held_stream(
    step: str, records: Iterable[Record], run: Callable[[Iterable[Record]], tuple[list[Record], StepCounts]]
) -> StepStream:
    """A list step (``run``, e.g. :func:`one_sample_per_question`) as a :class:`StepStream`: it runs
    on all of ``records`` when its first record is asked for, so memory holds its whole output until
    the stream is read (one split of the source, for ``one_sample_per_question``)."""

    def held(tally: _Tally) -> Iterator[Record]:
        out, counts = run(records)
        tally.rows_in, tally.errors = counts.rows_in, counts.errors
        tally.dropped.update(counts.dropped)
        tally.changed.update(counts.changed)
        yield from out

    return StepStream(step, held)


def _collect(stream: StepStream) -> tuple[list[Record], StepCounts]:
    out = list(stream)
    return out, stream.counts


def _filter(records: Iterable[Record], step: str, reason_to_drop) -> StepStream:
    def run(tally: _Tally) -> Iterator[Record]:
        for record in records:
            tally.rows_in += 1
            if record.error:
                tally.errors += 1
                yield record
                continue
            reason = reason_to_drop(record)
            if reason is None:
                yield record
            else:
                tally.dropped[reason] += 1

    return StepStream(step, run)
