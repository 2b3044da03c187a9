"""Format reward, answer extraction and the documented regex."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modomodo.rewards import (
    FORMAT_PATTERN,
    FORMAT_REGEX,
    MAX_SCAN_CHARS,
    RewardConfigError,
    RewardContext,
    extract_answer,
    format_example,
    format_reward,
    is_well_formatted,
)

CTX = RewardContext(solution="B", answer_kind="mc")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "rewards.md"


def test_the_documented_regex_is_the_one_in_use() -> None:
    assert f"```\n{FORMAT_REGEX}\n```" in DOCS.read_text(encoding="utf-8")
    assert FORMAT_PATTERN.pattern == FORMAT_REGEX
    assert FORMAT_PATTERN.flags & re.DOTALL


@pytest.mark.parametrize(
    "answer", ["B", "left", "7", "[{'Position': [1, 2, 3, 4], 'Confidence': 1}]", "No Objects"]
)
def test_format_example_satisfies_the_regex(answer: str) -> None:
    example = format_example(answer)
    assert FORMAT_PATTERN.fullmatch(example)
    assert is_well_formatted(example)
    assert extract_answer(example) == answer


def test_format_example_is_the_papers_figure_2_target() -> None:
    assert format_example("B") == "<think> ... </think> <answer> B </answer>"


def test_format_example_refuses_answers_with_tags() -> None:
    with pytest.raises(RewardConfigError, match="tags"):
        format_example("B</answer>")


@pytest.mark.parametrize(
    "completion",
    [
        "<think> ... </think> <answer> B </answer>",  # the paper's Fig. 2 target
        "<think>\nreasoning\n</think>\n<answer>\nB\n</answer>",  # open-r1's newline form
        "<think>a</think><answer>B</answer>",
        "  \n<think>a</think>\t<answer>B</answer>\n ",  # surrounding whitespace is stripped
        "<think></think><answer></answer>",
        "<think>multi\nline\n</think><answer>[1, 2,\n 3, 4]</answer>",
    ],
)
def test_well_formatted_completions_pass(completion: str) -> None:
    assert format_reward(completion, CTX) == 1.0


@pytest.mark.parametrize(
    "completion",
    [
        "B",
        "<answer>B</answer>",
        "<think>a</think>",
        "<think>a</think> B",
        "Sure! <think>a</think><answer>B</answer>",  # text before the reasoning
        "<think>a</think><answer>B</answer> done",  # text after the answer
        "<think>a</think> text <answer>B</answer>",  # text between the blocks
        "<answer>B</answer><think>a</think>",  # wrong order
        "<Think>a</Think><Answer>B</Answer>",  # tags are case-sensitive
        "<think>a<think>b</think></think><answer>B</answer>",  # nested reasoning
        "<think>a</think><answer>A</answer><answer>B</answer>",  # two answers (a hedge)
        "<think>a</think><answer>A<answer>B</answer></answer>",  # nested answers
        "<think>a <answer>A</answer></think><answer>B</answer>",  # an answer inside the reasoning
        "<think>a</think><answer>B",  # truncated
    ],
)
def test_malformed_completions_fail(completion: str) -> None:
    assert format_reward(completion, CTX) == 0.0


def test_completions_longer_than_the_scan_cap_fail_format() -> None:
    head, tail = "<think>", "</think><answer>B</answer>"
    at_cap = head + "x" * (MAX_SCAN_CHARS - len(head) - len(tail)) + tail
    assert len(at_cap) == MAX_SCAN_CHARS
    assert format_reward(at_cap, CTX) == 1.0
    assert format_reward(at_cap[: -len(tail)] + "x" + tail, CTX) == 0.0


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>A</think><answer> B </answer>", "B"),
        ("<answer>A</answer> then <answer>C</answer>", "C"),  # the last block only
        ("<answer>\n  multi\nline\n</answer>", "multi\nline"),
        ("<answer>A</answer><answer>unclosed", "A"),  # the last *complete* block
        ("<answer>a<answer>b</answer>", "b"),
        ("<answer></answer>", ""),
        ("no tags at all", None),
        ("</answer><answer>", None),
        ("<answer>never closed", None),
    ],
)
def test_extract_answer(completion: str, expected: str | None) -> None:
    assert extract_answer(completion) == expected


def test_extract_answer_sees_only_the_last_scan_window() -> None:
    block = "<answer>B</answer>"
    assert extract_answer("x" * 200_000 + block) == "B"
    assert extract_answer("<answer>" + "x" * MAX_SCAN_CHARS + "</answer>") is None
