"""Hostile completions: every reward returns a finite value in [0, 1] quickly and never raises.

The time bound (2 s per scored completion, measured on every example) guards against blow-ups
such as catastrophic regex backtracking; it is a correctness bound, not a benchmark.
"""

from __future__ import annotations

import math
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modomodo.data.answers import Box
from modomodo.rewards import (
    MAX_SCAN_CHARS,
    RewardContext,
    RewardSet,
    RewardSpec,
    continuous_score,
    default_reward_set,
    parse_boxes,
    visual_rft_score,
)

TIME_BOUND_S = 2.0  # generous: a shared CI core can be slow; a regex blow-up takes far longer
GT_ONE = "[{'Position': [10, 20, 110, 220], 'Confidence': 1}]"
GT_MANY = "[" + ", ".join(f"[{10 * i}, {10 * i}, {10 * i + 30}, {10 * i + 30}]" for i in range(20)) + "]"
OPTIONS = ("red", "blue", "green", "7")


def _ungated(kind_rewards: tuple[str, ...]) -> RewardSet:
    return RewardSet(tuple(RewardSpec(name, 1.0) for name in kind_rewards), gate_on_format=False)


CASES: list[tuple[RewardContext, RewardSet]] = [
    (RewardContext("B", "mc", OPTIONS), default_reward_set("mc")),
    (RewardContext("B", "mc", OPTIONS), _ungated(("format", "accuracy"))),
    (RewardContext("7", "text", OPTIONS), _ungated(("format", "accuracy"))),
    (RewardContext("left side", "text"), default_reward_set("text")),
]
for solution in (GT_ONE, GT_MANY, "No Objects"):
    box = RewardContext(solution, "box")
    CASES += [
        (box, default_reward_set("box", iou="iou_continuous")),
        (box, default_reward_set("box", iou="iou_visual_rft")),
        (box, _ungated(("format", "accuracy", "iou_continuous", "iou_visual_rft"))),
    ]

FRAGMENTS = [
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "<answer",
    "answer>",
    "<",
    ">",
    "/",
    " ",
    "\n",
    "\t",
    "B",
    "b",
    "(B)",
    "B.",
    "B) red",
    "blue",
    "7",
    "7.0",
    "-",
    ".",
    "left side",
    "No Objects",
    "Ｂ",
    "\x00",
    "\ud800",
    "\u202e",
    "🙂",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    "'",
    '"',
    "'Position'",
    '"Confidence"',
    "0.5",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e308",
    "-1e309",
    "1e999",
    "9" * 40,
    "1" * 400,
    "0" * 33,
    "[10, 20, 110, 220]",
    "{'Position': [10, 20, 110, 220], 'Confidence': 0.9}",
    "[[[[",
    "]]]]",
    "\\",
    "`",
]

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.sampled_from(["nan", "inf", "-Infinity", "1e999", "1e-999", "-0", ".5", "5.", "0x10", "1_000"]),
)


@st.composite
def box_answers(draw: st.DrawFn) -> str:
    items = []
    for _ in range(draw(st.integers(0, 30))):
        coords = ", ".join(draw(numbers) for _ in range(draw(st.sampled_from([4, 4, 4, 3, 5]))))
        items.append(
            draw(
                st.sampled_from([f"[{coords}]", f"{{'Position': [{coords}], 'Confidence': {draw(numbers)}}}"])
            )
        )
    return draw(st.sampled_from(["[{}]", "[{},", "{}]", "[{}]]"])).format(", ".join(items))


finite = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**30), 10**30))


@st.composite
def valid_box_answers(draw: st.DrawFn) -> str:
    """Box lists that parse, with any finite numbers: huge, tiny, negative, corners swapped."""
    items = [
        f"{{'Position': {list(draw(st.tuples(finite, finite, finite, finite)))!r}, 'Confidence': {draw(finite)!r}}}"
        for _ in range(draw(st.integers(0, 150)))
    ]
    return "[" + ", ".join(items) + "]"


soup = st.lists(st.sampled_from(FRAGMENTS), max_size=300).map("".join)
answers = st.one_of(st.text(max_size=200), soup, box_answers(), valid_box_answers())
completions = st.one_of(
    st.text(max_size=2_000),
    soup,
    st.builds(
        lambda think, ans: f"<think>{think}</think> <answer>{ans}</answer>", st.text(max_size=200), answers
    ),
    st.builds(lambda head, ans, tail: f"{head}<answer>{ans}</answer>{tail}", soup, answers, soup),
)


def assert_bounded(completion: str) -> None:
    for ctx, rewards in CASES:
        start = time.perf_counter()
        breakdown = rewards.score(completion, ctx)
        elapsed = time.perf_counter() - start
        assert elapsed < TIME_BOUND_S, f"{elapsed:.3f} s for a {len(completion)}-char completion"
        assert list(breakdown.parts) == [spec.name for spec in rewards.specs]
        for value in breakdown.parts.values():
            assert type(value) is float and 0.0 <= value <= 1.0
        assert type(breakdown.total) is float and math.isfinite(breakdown.total)
        assert 0.0 <= breakdown.total <= rewards.max_total


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(completions)
def test_any_completion_scores_in_range_and_in_time(completion: str) -> None:
    assert_bounded(completion)


def _big_box_list(n: int) -> str:
    rng = random.Random(n)
    return (
        "["
        + ", ".join(
            f"{{'Position': [{rng.randint(0, 900)}, {rng.randint(0, 900)}, {rng.randint(0, 1000)}, {rng.randint(0, 1000)}],"
            f" 'Confidence': {rng.random():.2f}}}"
            for _ in range(n)
        )
        + "]"
    )


ADVERSARIAL = {
    "100 KB of random unicode": "".join(
        random.Random(0).choice("ab<>/{}[]:,'\" 0123456789thinkswer\n🙂") for _ in range(100_000)
    ),
    "100 KB inside the think block": "<think>" + "x" * 100_000 + "</think><answer>B</answer>",
    "a well-formed completion at the scan cap": "<think>"
    + "y" * (MAX_SCAN_CHARS - 40)
    + "</think><answer>B</answer>",
    "tags repeated 20k times": "</think><answer>" * 20_000,
    "answer opened 20k times": "<answer>" * 20_000 + "B</answer>",
    "nesting 10k deep": "<think>" * 10_000 + "</think>" * 10_000 + "<answer>B</answer>",
    "regex bait": "<think>" + "</think> <answer>" * 5_000 + "</answer>" * 5_000,
    "1k boxes (fit the window)": "<think>x</think><answer>" + _big_box_list(1_000) + "</answer>",
    "5k boxes (beyond the window)": "<think>x</think><answer>" + _big_box_list(5_000) + "</answer>",
    "4k bare boxes (fit the window)": "<think>x</think><answer>["
    + ", ".join(["[1, 2, 3, 4]"] * 4_000)
    + "]</answer>",
    "64k-digit number": "<think>x</think><answer>" + "7" * 60_000 + "</answer>",
    "brackets 30k deep": "<think>x</think><answer>" + "[" * 30_000 + "]" * 30_000 + "</answer>",
    "huge coordinates": "<think>x</think><answer>[-1e308, -1e308, 1e308, 1e308]</answer>",
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_completions_score_in_range_and_in_time(name: str) -> None:
    assert "fit the window" not in name or len(ADVERSARIAL[name]) <= MAX_SCAN_CHARS
    assert_bounded(ADVERSARIAL[name])


@pytest.mark.parametrize(
    "text",
    ["[1, 2, 3, 4]" + " " * 60_000, " \n" * 30_000 + "[1, 2, 3, 4]", "[1, 2, 3, 4]" + " x" * 30_000],
)
def test_box_parsing_is_linear_around_whitespace(text: str) -> None:
    start = time.perf_counter()
    parsed = parse_boxes(text)
    assert time.perf_counter() - start < TIME_BOUND_S
    assert parsed == ([Box(1, 2, 3, 4)] if text.strip().endswith("]") else None)


def test_thousands_of_boxes_are_parsed_and_capped() -> None:
    parsed = parse_boxes(_big_box_list(5_000))
    assert parsed is not None and len(parsed) == 5_000
    gt = [Box(0, 0, 100, 100)]
    for score in (continuous_score, visual_rft_score):
        start = time.perf_counter()
        value = score(gt, parsed)
        assert time.perf_counter() - start < TIME_BOUND_S
        assert 0.0 <= value <= 1.0


coords = st.integers(min_value=0, max_value=1_000)
boxes_strategy = st.lists(
    st.builds(
        lambda x, y, w, h, c: Box(x, y, x + w, y + h, c),
        coords,
        coords,
        st.integers(1, 300),
        st.integers(1, 300),
        st.floats(0, 1),
    ),
    max_size=12,
    unique_by=lambda box: box.corners,
)


@settings(max_examples=200, deadline=None)
@given(boxes_strategy, boxes_strategy)
def test_hungarian_is_never_below_greedy(gt: list[Box], pred: list[Box]) -> None:
    # Without duplicate predictions both divide by max(#gt, #pred); the optimal assignment's IoU sum
    # bounds that of any one-to-one matching, the thresholded greedy one included.
    assert continuous_score(gt, pred) >= visual_rft_score(gt, pred) - 1e-12


@settings(max_examples=200, deadline=None)
@given(boxes_strategy, st.randoms(use_true_random=False))
def test_continuous_score_ignores_order_and_rewards_a_perfect_copy(gt: list[Box], rng: random.Random) -> None:
    shuffled = gt[:]
    rng.shuffle(shuffled)
    assert continuous_score(gt, shuffled) == pytest.approx(1.0)
    assert continuous_score(shuffled, gt) == pytest.approx(continuous_score(gt, shuffled))
