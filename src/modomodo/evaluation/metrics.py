"""Benchmark metrics: a registry of ``metric(completion, example) -> score in [0, 1]``.

The paper scores LISA-test by mean IoU and every other benchmark by exact match (digest 3.1);
those are the defaults (:func:`default_metric`). Each benchmark's customary metric is registered
beside them as an option:

================  ===========================================================================
metric            rule
================  ===========================================================================
exact_match       the project's answer match (:mod:`modomodo.data.answers`) against the
                  solution or any reference in ``meta["answers"]``: the paper's default
mean_iou          continuous IoU of the box answer (the ``iou_continuous`` reward)
relaxed_accuracy  ChartQA: numbers within 5% relative error of the reference (``%`` read as
                  /100; a zero reference needs an exact match), other text equal ignoring case
anls              InfoVQA/DocVQA: 1 - normalised Levenshtein distance to the closest reference
                  (lower-cased, whitespace collapsed), 0 when that distance is 0.5 or more
mathvista         MathVista's rule-based extraction (see :mod:`.answer_rules`)
mmmu              MMMU's option-letter and open-answer parsing (see :mod:`.answer_rules`)
================  ===========================================================================

Every metric reads the model's answer through :func:`~modomodo.rewards.extract_answer` (the last
``<answer>`` block): a completion without one scores 0, as it does for the rewards.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Protocol

from modomodo.data.schema import ANSWER_KINDS, Example
from modomodo.rewards import RewardContext, answers_match, extract_answer, iou_continuous

RELAXED_TOLERANCE = 0.05
"""ChartQA's relaxed accuracy: the largest relative error of a correct number."""
ANLS_THRESHOLD = 0.5
"""ANLS: a normalised edit distance at or above this scores 0."""


class MetricError(ValueError):
    """A metric is unknown, registered twice, or configured for answers it cannot score."""


class MetricFn(Protocol):
    """A benchmark metric: ``fn(completion, example) -> float`` in ``[0, 1]``; never raises on a
    hostile completion."""

    def __call__(self, completion: str, example: Example, /) -> float: ...


_METRICS: dict[str, MetricFn] = {}
_KINDS: dict[str, frozenset[str]] = {}
METRICS: Mapping[str, MetricFn] = MappingProxyType(_METRICS)
"""Every registered metric by name (read-only; :func:`register_metric` is the way in)."""


def register_metric(
    name: str, *, answer_kinds: Iterable[str] = ANSWER_KINDS
) -> Callable[[MetricFn], MetricFn]:
    """Decorator registering a metric under ``name``; ``answer_kinds`` are the answers it can score."""
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise MetricError(f"metric name must be a non-empty string without whitespace, got {name!r}")
    if name in _METRICS:
        raise MetricError(f"metric {name!r} is already registered")
    kinds = frozenset(answer_kinds)
    if not kinds or not kinds <= set(ANSWER_KINDS):
        raise MetricError(f"metric {name!r}: answer_kinds must be a non-empty subset of {ANSWER_KINDS}")

    def decorate(fn: MetricFn) -> MetricFn:
        _METRICS[name] = fn
        _KINDS[name] = kinds
        return fn

    return decorate


def get_metric(name: str) -> MetricFn:
    """The metric registered as ``name``; an error listing the known names otherwise."""
    if not isinstance(name, str) or name not in _METRICS:
        raise MetricError(f"unknown metric {name!r}; known metrics: {sorted(_METRICS)}")
    return _METRICS[name]


def check_metric(name: str, kinds: Iterable[str]) -> None:
    """Refuse (before any generation) a metric given a benchmark whose answers it cannot score."""
    get_metric(name)
    unscorable = sorted(set(kinds) - _KINDS[name])
    if unscorable:
        raise MetricError(
            f"metric {name!r} cannot score {unscorable} answers; it scores {sorted(_KINDS[name])}"
        )


def default_metric(answer_kind: str) -> str:
    """The paper's metric for an answer kind: mean IoU for boxes, exact match otherwise."""
    return "mean_iou" if answer_kind == "box" else "exact_match"


def references(example: Example) -> list[str]:
    """Every accepted answer: the solution, then any others in ``meta["answers"]`` (a JSON list)."""
    refs = [example.solution]
    try:
        extra = json.loads(example.meta.get("answers", "[]"))
    except json.JSONDecodeError:
        extra = []
    refs += [a for a in extra if isinstance(a, str) and a not in refs] if isinstance(extra, list) else []
    return refs


@register_metric("exact_match", answer_kinds=("mc", "text"))
def exact_match(completion: str, example: Example) -> float:
    answer = extract_answer(completion)
    if answer is None:
        return 0.0
    return float(any(answers_match(answer, ref, example.options) for ref in references(example)))


@register_metric("mean_iou", answer_kinds=("box",))
def mean_iou(completion: str, example: Example) -> float:
    return iou_continuous(completion, RewardContext(example.solution, example.answer_kind, example.options))


@register_metric("relaxed_accuracy", answer_kinds=("text",))
def relaxed_accuracy(completion: str, example: Example) -> float:
    answer = extract_answer(completion)
    if answer is None:
        return 0.0
    return float(any(relaxed_match(answer, ref) for ref in references(example)))


@register_metric("anls", answer_kinds=("text",))
def anls(completion: str, example: Example) -> float:
    answer = extract_answer(completion)
    return 0.0 if answer is None else anls_score(answer, references(example))


def relaxed_match(prediction: str, target: str, tolerance: float = RELAXED_TOLERANCE) -> bool:
    """ChartQA's relaxed correctness of one prediction against one target."""
    prediction, target = prediction.strip(), target.strip()
    pred, ref = _to_float(prediction), _to_float(target)
    if pred is not None and ref:  # a zero target falls through to the exact comparison
        return abs(pred - ref) / abs(ref) <= tolerance
    return prediction.lower() == target.lower()


def anls_score(prediction: str, targets: Iterable[str], threshold: float = ANLS_THRESHOLD) -> float:
    """Average-normalised-Levenshtein similarity of one answer to its closest target."""
    pred = " ".join(prediction.lower().split())
    best = 0.0
    for target in targets:
        ref = " ".join(target.lower().split())
        length = max(len(pred), len(ref))
        distance = edit_distance(pred, ref) / length if length else 0.0
        best = max(best, 1.0 - distance if distance < threshold else 0.0)
    return best


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), O(len(a) * len(b))."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _to_float(text: str) -> float | None:
    try:
        return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


from modomodo.evaluation import answer_rules  # noqa: E402,F401  (registers mathvista and mmmu)
