"""The built-in synthetic multi-domain suite: offline stand-ins for the paper's datasets and benchmarks.

Five training domains mirror the paper's five in answer form and reward (``det`` ~ COCO, ``ref`` ~
LISA, ``geo`` ~ GeoQAV, ``spatial`` ~ SAT, ``sci`` ~ ScienceQA). ``ref``, ``spatial`` and ``sci`` have
in-domain test splits, as LISA, SAT and ScienceQA do; four out-of-domain benchmarks need the same
skills in new combinations and surfaces. See ``docs/synthetic-suite.md`` for the skill table.

Determinism: example ``i`` of ``(name, split, seed)`` is drawn from its own RNG, seeded by SHA-256 of
``(GENERATOR_VERSION, seed, name, split, i)``. The same arguments therefore give identical examples
and byte-identical PNGs, and ``generate(..., n)`` is a prefix of ``generate(..., n + k)``. Train and
test never share a problem: a problem belongs to the test split of its domain iff the SHA-256 of its
content (picture, question, answer) falls in the lowest quarter, and each split redraws until it gets
one of its own, so the partition holds for every seed at once.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Literal

from modomodo.data import benchmark_tasks, tasks
from modomodo.data.draw import render_png
from modomodo.data.schema import AnswerKind, Example
from modomodo.data.task_parts import Generator, Task

GENERATOR_VERSION = "synthetic-v8"
"""Bump when any generator changes what it draws; it seeds every RNG, so all data changes with it."""
SPLITS: tuple[str, ...] = ("train", "test")
_TEST_SHARE = 64  # of 256: a quarter of the problem space is reserved for test splits
_MAX_REDRAWS = 1000  # far beyond need: a test draw succeeds with probability ~1/4


class UnknownTaskError(ValueError):
    """A generator name or split that the suite does not have."""


@dataclass(frozen=True)
class DomainInfo:
    """A training domain of the suite."""

    answer_kind: AnswerKind
    generator: Generator
    description: str
    skills: tuple[str, ...]
    """Skills its questions exercise (see :data:`modomodo.data.task_parts.SKILLS`)."""
    answer_forms: tuple[str, ...]
    paper_train_size: int
    """Training examples of its counterpart in the paper (Table 1), for presets that mirror the paper."""


@dataclass(frozen=True)
class BenchmarkInfo:
    """An evaluation benchmark of the suite (always generated with split ``test``)."""

    split: Literal["in", "out"]
    """``in``: the test split of a training domain; ``out``: a benchmark no domain trains on."""
    answer_kind: AnswerKind
    generator: Generator
    description: str
    skills: tuple[str, ...]
    answer_forms: tuple[str, ...]
    size: int
    """Suggested number of examples: a tenth of its paper counterpart, so that sample-count-weighted
    In/Out-Scores weigh the benchmarks as the paper's do."""


DOMAINS: dict[str, DomainInfo] = {
    "det": DomainInfo(
        "box", tasks.detection, "COCO-like: box every shape of one category, or 'No Objects'",
        ("shape", "locate", "count"), ("box",), 5997,
    ),
    "ref": DomainInfo(
        "box", tasks.referring, "LISA-like: one box for a referring expression ('the red triangle')",
        ("colour", "shape", "locate"), ("box",), 1326,
    ),
    "geo": DomainInfo(
        "mc", tasks.geometry, "GeoQAV-like: width, height, area or side difference of a shaded rectangle; MC",
        ("measure", "count", "arith"), ("letter",), 1969,
    ),
    "spatial": DomainInfo(
        "text", tasks.spatial, "SAT-like: how many shapes of a colour (two thirds), or left/right/above/below between two objects, their distance, a neighbour's colour",
        ("colour", "shape", "relation", "measure", "count"), ("word", "number"), 15000,
    ),
    "sci": DomainInfo(
        "mc", tasks.science, "ScienceQA-like: how many shapes, which colour most shapes have (seven tenths), or an object's colour or shape, the property objects share; MC",
        ("colour", "shape", "count"), ("letter",), 6218,
    ),
}  # fmt: skip
TRAIN_DOMAINS: tuple[str, ...] = tuple(DOMAINS)


def _in_domain(name: str, size: int) -> BenchmarkInfo:
    d = DOMAINS[name]
    return BenchmarkInfo("in", d.answer_kind, d.generator, d.description, d.skills, d.answer_forms, size)


BENCHMARKS: dict[str, BenchmarkInfo] = {
    "ref": _in_domain("ref", 340),
    "spatial": _in_domain("spatial", 193),
    "sci": _in_domain("sci", 202),
    "chart": BenchmarkInfo(
        "out", "text", benchmark_tasks.chart, "ChartQA-like: how many bars, or how tall the tallest bar is; short answer",
        ("count", "measure"), ("number",), 250,
    ),
    "gridqa": BenchmarkInfo(
        "out", "text", benchmark_tasks.grid_reading, "InfoVQA-like: on a ruled table, sci's 'how many shapes' or spatial's colour count, answered in words",
        ("colour", "count"), ("number",), 280,
    ),
    "mathcount": BenchmarkInfo(
        "out", "mc", benchmark_tasks.math_count, "MathVista-like: spatial's colour count as MC, or subtract a colour and count the rest; MC",
        ("colour", "count", "arith"), ("letter",), 100,
    ),
    "mixmc": BenchmarkInfo(
        "out", "mc", benchmark_tasks.mixed_choice, "MMMU-like: sci's 'how many shapes' and 'which colour most' on a pale blue surface; MC",
        ("colour", "count"), ("letter",), 90,
    ),
}  # fmt: skip


def generate(name: str, split: str, n: int, seed: int) -> list[Example]:
    """Draw ``n`` examples of domain or benchmark ``name`` for ``split`` (``train`` or ``test``).

    Out-of-domain benchmarks have only a ``test`` split. Ids are ``{name}-{split}-{i:06d}``.
    """
    check_task(name, split)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if name in DOMAINS:
        generator, partitioned = DOMAINS[name].generator, True
    else:
        generator, partitioned = BENCHMARKS[name].generator, False
    return [_example(generator, name, split, seed, i, partitioned) for i in range(n)]


def check_task(name: str, split: str) -> None:
    """Raise :class:`UnknownTaskError` unless the suite can generate ``name`` for ``split``."""
    if split not in SPLITS:
        raise UnknownTaskError(f"unknown split {split!r}; splits: {SPLITS}")
    if name in BENCHMARKS and name not in DOMAINS and split != "test":
        raise UnknownTaskError(f"{name!r} is an out-of-domain benchmark: it has only a 'test' split")
    if name not in DOMAINS and name not in BENCHMARKS:
        raise UnknownTaskError(
            f"unknown domain or benchmark {name!r}; known: {sorted({*DOMAINS, *BENCHMARKS})}"
        )


def _example(
    generator: Generator, name: str, split: str, seed: int, index: int, partitioned: bool
) -> Example:
    rng = random.Random(_digest(f"{GENERATOR_VERSION}|{seed}|{name}|{split}|{index}"))
    for _ in range(_MAX_REDRAWS):
        task = generator(rng)
        if not partitioned or _split_of(task) == split:
            return _to_example(task, f"{name}-{split}-{index:06d}", name)
    raise RuntimeError(f"{name}: no {split} problem in {_MAX_REDRAWS} draws; is the generator constant?")


def _split_of(task: Task) -> str:
    return "test" if hashlib.sha256(task.content_key.encode()).digest()[0] < _TEST_SHARE else "train"


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _to_example(task: Task, example_id: str, domain: str) -> Example:
    return Example(
        id=example_id,
        domain=domain,
        image=render_png(task.canvas),
        problem=task.problem,
        solution=task.solution,
        answer_kind=task.answer_kind,
        options=task.options,
        meta={
            "answer_form": task.answer_form,
            "generator": GENERATOR_VERSION,
            "qtype": task.qtype,
            "rationale": task.rationale,
            "skills": ",".join(task.skills),
            **({"decoy_rationale": task.decoy[0], "decoy_solution": task.decoy[1]} if task.decoy else {}),
        },
    )
