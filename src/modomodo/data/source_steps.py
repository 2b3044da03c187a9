"""A configured source opened for curation: its layout, its preprocessing steps, their counts.

A path source (a local file or folder, or a store artifact fetched into one) is read as raw rows
(:func:`~modomodo.data.sources.read_raw_records`), run through the configured steps of
:mod:`modomodo.data.preprocess` in the configured order, and adapted into Example fields: by its
layout (:mod:`modomodo.data.layouts`) when it names one, else as a path source always was
(:func:`~modomodo.data.sources.normalise_fields`).

Steps that need raw rows (LISA's ``one_sample_per_question`` splits the ``problem`` list) run
before the adapter, steps that need Example fields (``resize_long_side`` rescales pixel boxes)
after it; a step that works on either runs where it is listed. The config is checked against
:data:`STEPS` at load (:func:`step_problem`), so a step list the runner cannot honour never reaches
curation.

The steps stream (their ``*_stream`` twins): rows flow from the source through the steps to
curation, and each step's counts are read once the rows are. ``sample`` and ``at_most`` need the
number of rows entering them first, so :func:`open_path` reads the source through the earlier steps
once to count them (a ``size`` the source cannot meet fails there, before anything is written),
and the step reads it again for the rows. ``one_sample_per_question`` shuffles a whole split, so a
source using it holds that split in memory while it is curated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from modomodo.data import preprocess
from modomodo.data.preprocess import StepCounts, StepStream
from modomodo.data.record_checks import CurationError
from modomodo.data.schema import Example
from modomodo.data.sources import Record, SourceError, SourceSpec, normalise_fields, read_raw_records
from modomodo.data.streaming import default_workers
from modomodo.data.synthetic import UnknownTaskError, check_task, generate


@dataclass(frozen=True)
class StepInput:
    """What a step runs on when a source is opened."""

    records: Callable[[], Iterable[Record]]
    """The records entering the step. Most steps call it once; ``sample`` and ``at_most`` once per
    pass, each call reading the source afresh through the earlier steps."""
    rows: int | None
    """How many records enter the step, counted at open for a step with ``needs_rows``; else None."""
    seed: int
    """``data.seed``, used when the step takes a seed and the config gives none."""
    workers: int
    """Threads for a step's image work (``resize_long_side``)."""


StepRun = Callable[[StepInput, Mapping[str, int]], StepStream]


@dataclass(frozen=True)
class StepInfo:
    """A preprocessing step the config can name."""

    run: StepRun
    """``(input, params) -> the kept records, streamed, with their counts once read``."""
    on: Literal["raw", "fields", "any"]
    """What the step reads: the source's raw rows, adapted Example fields, or either."""
    params: Mapping[str, bool]
    """Its parameters (all integers), each mapped to whether it is required."""
    needs_rows: bool = False
    """It draws from the records entering it, so it needs their number before it yields one."""


STEPS: Mapping[str, StepInfo] = {
    "one_sample_per_question": StepInfo(
        lambda i, p: preprocess.held_stream(
            "one_sample_per_question",
            i.records(),
            partial(preprocess.one_sample_per_question, seed=p.get("seed", i.seed)),
        ),
        "raw",
        {"seed": False},
    ),
    "keep_multiple_choice": StepInfo(
        lambda i, p: preprocess.keep_multiple_choice_stream(i.records()), "any", {}
    ),
    "keep_with_image": StepInfo(lambda i, p: preprocess.keep_with_image_stream(i.records()), "any", {}),
    "sample": StepInfo(
        lambda i, p: preprocess.sample_stream(
            i.records, size=p["size"], seed=p.get("seed", i.seed), rows=i.rows
        ),
        "any",
        {"size": True, "seed": False},
        needs_rows=True,
    ),
    "at_most": StepInfo(
        lambda i, p: preprocess.at_most_stream(
            i.records, size=p["size"], seed=p.get("seed", i.seed), rows=i.rows
        ),
        "any",
        {"size": True, "seed": False},
        needs_rows=True,
    ),
    "resize_long_side": StepInfo(
        lambda i, p: preprocess.resize_long_side_stream(
            i.records(), max_side=p.get("max_side", preprocess.PAPER_LONG_SIDE), workers=i.workers
        ),
        "fields",
        {"max_side": False},
    ),
}
"""Every step a source's ``steps`` may name. ``at_most`` caps a benchmark at its configured
``size`` (a seeded sample only when the source has more rows)."""

Steps = Sequence[tuple[str, Mapping[str, int]]]
"""A source's steps in order: ``(name, params)``."""


def step_problem(steps: Steps) -> tuple[int, str] | None:
    """The first problem of a step list as ``(index, message)``, or None when it can run."""
    adapted_at: str | None = None
    for index, (name, params) in enumerate(steps):
        if name not in STEPS:
            return index, f"unknown step {name!r}; steps: {sorted(STEPS)}"
        info = STEPS[name]
        unknown = sorted(set(params) - set(info.params))
        if unknown:
            return (
                index,
                f"{name}: unknown parameter(s) {unknown}; its parameters: {sorted(info.params) or 'none'}",
            )
        missing = sorted(p for p, required in info.params.items() if required and p not in params)
        if missing:
            return index, f"{name}: parameter(s) {missing} required"
        if any(value < (0 if p == "seed" else 1) for p, value in params.items()):
            return index, f"{name}: parameters must be >= 1 (a seed >= 0), got {dict(params)}"
        if info.on == "raw" and adapted_at is not None:
            return index, f"{name} reads the source's raw rows, so it must come before {adapted_at}"
        if info.on == "fields" and adapted_at is None:
            adapted_at = name
    return None


def open_path(
    path: str | Path,
    *,
    layout: str | None = None,
    frame: str | None = None,
    steps: Steps = (),
    seed: int = 0,
    answer_kind: str | None = None,
    external_images: bool = False,
    workers: int | None = None,
) -> tuple[Iterator[Record], Callable[[], list[StepCounts]]]:
    """The Example-field records of the source at ``path`` after its ``steps``, streamed, and a
    function giving each step's counts once those records are read to their end (before that it
    raises ``RuntimeError``). The source (and a layout's columns, for sources with a schema) is
    checked at once. A step that cannot run (``sample`` larger than the source) raises
    ``ValueError`` here: a ``sample`` or ``at_most`` step's rows are counted at open.
    ``resize_long_side`` runs on ``workers`` threads (default: the CPUs, at most 8)."""
    problem = step_problem(steps)
    if problem is not None:
        raise ValueError(f"steps[{problem[0]}]: {problem[1]}")
    adapt = _adapter(path, layout, frame, answer_kind)
    chain = _Chain(
        partial(read_raw_records, path, external_images=external_images),
        adapt,
        tuple(steps),
        seed,
        workers or default_workers(),
    )
    return chain.open()


@dataclass
class _Chain:
    """A source's steps, opened as passes that each read the source afresh."""

    read: Callable[[], Iterable[Record]]
    adapt: Callable[[Record], Record]
    steps: Steps
    seed: int
    workers: int
    rows: dict[int, int] = field(default_factory=dict)
    """Records entering each ``needs_rows`` step, by its index; counted by :meth:`open` in order."""

    @property
    def adapt_at(self) -> int:
        """The index of the step the adapter runs before: the first that reads Example fields."""
        on_fields = (i for i, (name, _) in enumerate(self.steps) if STEPS[name].on == "fields")
        return next(on_fields, len(self.steps))

    def open(self) -> tuple[Iterator[Record], Callable[[], list[StepCounts]]]:
        """One counting pass per ``needs_rows`` step, in order (a ``size`` its rows cannot meet
        raises when the next pass builds the step), then the pass whose records curation reads."""
        counted: list[StepCounts] = []
        for index, (name, _) in enumerate(self.steps):
            if STEPS[name].needs_rows:
                records, streams = self._pass(index)
                self.rows[index] = sum(1 for _ in records)
                counted += [stream.counts for stream in streams]
        records, streams = self._pass(len(self.steps))
        return iter(records), lambda: [*counted, *(stream.counts for stream in streams)]

    def _pass(self, upto: int) -> tuple[Iterable[Record], list[StepStream]]:
        """The records entering ``steps[upto]`` (at the end: Example fields) read afresh, and the
        streams of the steps since the last ``needs_rows`` step before ``upto``: reading the
        records to their end reads those streams to theirs, so they give the counts of those
        steps. The earlier steps run inside that last step's own reads, which stop at its last
        drawn row."""
        start = max((index for index in self.rows if index < upto), default=None)
        # from the source, or from the step at ``start``, which opens its own passes
        records: Iterable[Record] = self.read() if start is None else ()
        adapt_at = self.adapt_at
        streams: list[StepStream] = []
        for index in range(start or 0, upto + 1):
            if index == adapt_at:
                records = map(self.adapt, records)
            if index == upto:
                break
            name, params = self.steps[index]
            entering = partial(self._entering, index) if index == start else partial(_given, records)
            stream = STEPS[name].run(
                StepInput(entering, self.rows.get(index), self.seed, self.workers), params
            )
            streams.append(stream)
            records = stream
        return records, streams

    def _entering(self, index: int) -> Iterable[Record]:
        return self._pass(index)[0]


def _given(records: Iterable[Record]) -> Iterable[Record]:
    return records


def _adapter(
    path: str | Path, layout: str | None, frame: str | None, answer_kind: str | None
) -> Callable[[Record], Record]:
    if layout:
        from modomodo.data.layouts import adapt_row, check_schema, get_layout

        chosen = get_layout(layout)
        check_schema(path, chosen)  # before any row is read: a saved dataset or Parquet has a schema
        return lambda r: r if r.error else adapt_row(chosen, r.fields, r.origin, frame=frame)  # type: ignore[arg-type]
    return lambda r: r if r.error else Record(normalise_fields(r.fields, answer_kind), r.origin)  # type: ignore[arg-type]


def open_source(
    domain: str, spec: SourceSpec, seed: int, *, workers: int | None = None
) -> tuple[Iterator[tuple[str | None, Record]], Callable[[], dict[str, list[dict[str, Any]]]]]:
    """A domain's rows as ``(split, record)`` (split ``None``: "decide by test_fraction"), and a
    function giving the counts of its preprocessing steps by split once the rows are read.

    Synthetic names, paths, layouts and steps are checked here, before anything is written (a
    ``sample`` or ``at_most`` step counts its rows here); ``workers`` threads resize images.
    """
    if spec.kind == "synthetic":
        counts = {split: n for split, n in (("train", spec.n_train), ("test", spec.n_test)) if n}
        for split in counts:
            try:
                check_task(domain, split)
            except UnknownTaskError as exc:
                raise CurationError(f"source {domain!r}: {exc}") from exc
        stream = (
            (split, Record(_fields(ex), f"synthetic:{ex.id}"))
            for split, n in counts.items()
            for ex in generate(domain, split, n, seed)
        )
        return stream, lambda: {}
    parts: list[tuple[str | None, Iterator[Record]]] = []
    steps: dict[str, Callable[[], list[StepCounts]]] = {}
    for split, path, prefix in (("train", spec.path, "row"), ("test", spec.test_path, "testrow")):
        if not path:
            continue
        try:
            records, counts = open_path(path, **_path_options(spec), seed=seed, workers=workers)
        except ValueError as exc:  # a step that cannot run; SourceError/LayoutError name the path
            if isinstance(exc, SourceError):
                raise
            raise CurationError(f"source {domain!r} ({path}): {exc}; nothing was written") from exc
        if spec.steps:
            steps[split] = counts
        by_fraction = split == "train" and not spec.test_path and spec.test_fraction
        parts.append((None if by_fraction else split, _with_ids(records, domain, prefix)))
    return _chain(*parts), lambda: {split: [c.to_json() for c in counts()] for split, counts in steps.items()}


def _path_options(spec: SourceSpec) -> dict[str, Any]:
    return {
        "layout": spec.layout,
        "frame": spec.frame,
        "steps": spec.steps,
        "answer_kind": spec.answer_kind,
        "external_images": spec.external_images,
    }


def _chain(*parts: tuple[str | None, Iterator[Record]]) -> Iterator[tuple[str | None, Record]]:
    for split, records in parts:
        for record in records:
            yield split, record


def _with_ids(records: Iterator[Record], domain: str, prefix: str) -> Iterator[Record]:
    """Give rows without an id a positional one: ``{domain}-{prefix}{index:06d}``."""
    for index, record in enumerate(records):
        if record.fields.get("id") is None:
            record = Record(
                {**record.fields, "id": f"{domain}-{prefix}{index:06d}"}, record.origin, record.error
            )
        yield record


def _fields(example: Example) -> dict[str, Any]:
    return {name: getattr(example, name) for name in Example.__dataclass_fields__}
