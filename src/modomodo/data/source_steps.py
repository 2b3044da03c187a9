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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from modomodo.data import preprocess
from modomodo.data.preprocess import StepCounts
from modomodo.data.record_checks import CurationError
from modomodo.data.schema import Example
from modomodo.data.sources import Record, SourceError, SourceSpec, normalise_fields, read_raw_records
from modomodo.data.synthetic import UnknownTaskError, check_task, generate

StepRun = Callable[[Iterable[Record], Mapping[str, int], int], tuple[list[Record], StepCounts]]


@dataclass(frozen=True)
class StepInfo:
    """A preprocessing step the config can name."""

    run: StepRun
    """``(records, params, seed) -> (kept records, counts)``; ``seed`` is ``data.seed``, used when
    the step takes a seed and the config gives none."""
    on: Literal["raw", "fields", "any"]
    """What the step reads: the source's raw rows, adapted Example fields, or either."""
    params: Mapping[str, bool]
    """Its parameters (all integers), each mapped to whether it is required."""


def _at_most(records: Iterable[Record], *, size: int, seed: int) -> tuple[list[Record], StepCounts]:
    """Keep every record when there are at most ``size``, else a seeded ``sample`` of ``size``."""
    rows = list(records)
    if len(rows) > size:
        out, counts = preprocess.sample(rows, size=size, seed=seed)
        return out, StepCounts(
            "at_most", counts.rows_in, counts.rows_out, counts.dropped, errors=counts.errors
        )
    return rows, StepCounts("at_most", len(rows), len(rows), errors=sum(1 for r in rows if r.error))


STEPS: Mapping[str, StepInfo] = {
    "one_sample_per_question": StepInfo(
        lambda records, p, seed: preprocess.one_sample_per_question(records, seed=p.get("seed", seed)),
        "raw",
        {"seed": False},
    ),
    "keep_multiple_choice": StepInfo(
        lambda records, p, seed: preprocess.keep_multiple_choice(records), "any", {}
    ),
    "keep_with_image": StepInfo(lambda records, p, seed: preprocess.keep_with_image(records), "any", {}),
    "sample": StepInfo(
        lambda records, p, seed: preprocess.sample(records, size=p["size"], seed=p.get("seed", seed)),
        "any",
        {"size": True, "seed": False},
    ),
    "at_most": StepInfo(
        lambda records, p, seed: _at_most(records, size=p["size"], seed=p.get("seed", seed)),
        "any",
        {"size": True, "seed": False},
    ),
    "resize_long_side": StepInfo(
        lambda records, p, seed: preprocess.resize_long_side(
            records, max_side=p.get("max_side", preprocess.PAPER_LONG_SIDE)
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
) -> tuple[Iterator[Record], list[StepCounts]]:
    """The Example-field records of the source at ``path`` after its ``steps``, with each step's
    counts. The source (and a layout's columns, for sources with a schema) is checked at once;
    without steps the rows are read lazily, with steps they are run here (the steps take lists).
    A step that cannot run (``sample`` larger than the source) raises ``ValueError``."""
    problem = step_problem(steps)
    if problem is not None:
        raise ValueError(f"steps[{problem[0]}]: {problem[1]}")
    adapt = _adapter(path, layout, frame, answer_kind)
    records: Iterable[Record] = read_raw_records(path, external_images=external_images)
    counts: list[StepCounts] = []
    adapted = False
    for name, params in steps:
        info = STEPS[name]
        if info.on == "fields" and not adapted:
            records, adapted = map(adapt, records), True
        records, step_counts = info.run(records, params, seed)
        counts.append(step_counts)
    return iter(records if adapted else map(adapt, records)), counts


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
    domain: str, spec: SourceSpec, seed: int
) -> tuple[Iterator[tuple[str | None, Record]], dict[str, list[dict[str, Any]]]]:
    """A domain's rows as ``(split, record)`` (split ``None``: "decide by test_fraction"), and the
    counts of its preprocessing steps by split.

    Synthetic names, paths, layouts and steps are checked (and the steps run) here, before
    anything is written.
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
        return stream, {}
    parts: list[tuple[str | None, Iterator[Record]]] = []
    steps: dict[str, list[dict[str, Any]]] = {}
    for split, path, prefix in (("train", spec.path, "row"), ("test", spec.test_path, "testrow")):
        if not path:
            continue
        try:
            records, counts = open_path(path, **_path_options(spec), seed=seed)
        except ValueError as exc:  # a step that cannot run; SourceError/LayoutError name the path
            if isinstance(exc, SourceError):
                raise
            raise CurationError(f"source {domain!r} ({path}): {exc}; nothing was written") from exc
        if counts:
            steps[split] = [c.to_json() for c in counts]
        by_fraction = split == "train" and not spec.test_path and spec.test_fraction
        parts.append((None if by_fraction else split, _with_ids(records, domain, prefix)))
    return _chain(*parts), steps


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
