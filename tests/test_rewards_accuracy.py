"""Accuracy reward: exact match after normalisation, numbers, option letters and option texts."""

from __future__ import annotations

import pytest

from modomodo.data.schema import Example
from modomodo.rewards import (
    RewardConfigError,
    RewardContext,
    accuracy_reward,
    answers_match,
    choice_index,
    normalise_answer,
)

OPTIONS = ("red", "blue", "green")
MC = RewardContext(solution="B", answer_kind="mc", options=OPTIONS)


def answer(text: str) -> str:
    return f"<think>thinking</think> <answer>{text}</answer>"


@pytest.mark.parametrize(
    "prediction",
    [
        "B",
        "b",
        "(B)",
        "(b)",
        "B.",
        "B)",
        "B:",
        "[B]",
        "**B**",
        "  B  ",
        "B) blue",
        "B. blue",
        "(B) blue",
        "B: blue",
        "blue",
        "Blue.",
        "  BLUE ",
        "Ｂ",
    ],
)
def test_correct_letter_and_option_forms_score_one(prediction: str) -> None:
    assert accuracy_reward(answer(prediction), MC) == 1.0


@pytest.mark.parametrize(
    "prediction",
    ["A", "C", "red", "A) blue", "B red", "The answer is B", "Option B", "B/C", "BB", "D", "", "bluish"],
)
def test_wrong_or_unreadable_answers_score_zero(prediction: str) -> None:
    assert accuracy_reward(answer(prediction), MC) == 0.0


def test_the_letter_decides_when_followed_by_text() -> None:
    # Documented: after "B)" the text is not checked, so a contradicting text does not matter...
    assert accuracy_reward(answer("B) red"), MC) == 1.0
    # ...and a right text after a wrong letter does not help.
    assert accuracy_reward(answer("A) blue"), MC) == 0.0


def test_letters_beyond_the_options_name_nothing() -> None:
    two = RewardContext(solution="B", answer_kind="mc", options=("red", "blue"))
    assert choice_index("C", two.options) is None
    assert choice_index("C") == 2  # without options every letter A-H names a choice
    assert choice_index("I") is None


def test_text_answer_with_options_accepts_the_letter() -> None:
    ctx = RewardContext(solution="blue", answer_kind="text", options=OPTIONS)
    assert accuracy_reward(answer("B"), ctx) == 1.0
    assert accuracy_reward(answer("(b)"), ctx) == 1.0
    assert accuracy_reward(answer("BLUE"), ctx) == 1.0
    assert accuracy_reward(answer("A"), ctx) == 0.0


def test_an_article_is_not_an_option_letter() -> None:
    ctx = RewardContext(solution="dog", answer_kind="text", options=("cat", "dog"))
    assert accuracy_reward(answer("a dog"), ctx) == 0.0  # not read as "A" (cat), not equal to "dog"
    assert accuracy_reward(answer("A) dog"), ctx) == 0.0  # the letter decides


@pytest.mark.parametrize(
    ("prediction", "solution", "expected"),
    [
        ("7", "7.0", True),
        ("7.00", "7", True),
        (".5", "0.5", True),
        ("-0.5", "-.5", True),
        ("+3", "3", True),
        ("7.", "7", True),
        ("-7", "7", False),
        ("7", "70", False),
        ("0.1", "0.10000000000000001", False),  # exact decimal comparison, not float
        ("1e3", "1000", False),  # no exponent notation
        ("Left", "left", True),
        ("  the   left\nside. ", "the left side", True),
        ("left side", "leftside", False),
        ('"yes"', "yes", True),
        ("50%", "50", True),  # surrounding punctuation, documented
    ],
)
def test_answers_match(prediction: str, solution: str, expected: bool) -> None:
    assert answers_match(prediction, solution) is expected
    ctx = RewardContext(solution=solution, answer_kind="text")
    assert accuracy_reward(answer(prediction), ctx) == (1.0 if expected else 0.0)


def test_normalise_answer_keeps_the_sign_of_a_number() -> None:
    assert normalise_answer("(-7)") == "-7"
    assert normalise_answer("  (B).  ") == "b"
    assert normalise_answer("- - x") == "x"


def test_only_the_last_answer_block_counts() -> None:
    assert accuracy_reward("<answer>A</answer> hmm <answer>B</answer>", MC) == 1.0
    assert accuracy_reward("<answer>B</answer> hmm <answer>A</answer>", MC) == 0.0


def test_the_reasoning_is_never_read() -> None:
    assert accuracy_reward("<think>The answer is B</think><answer>A</answer>", MC) == 0.0
    assert accuracy_reward("<think>B</think>", MC) == 0.0


def test_multi_line_answers_are_read_whole() -> None:
    assert accuracy_reward("<think>x</think><answer>\n  B\n</answer>", MC) == 1.0
    ctx = RewardContext(solution="two lines", answer_kind="text")
    assert accuracy_reward("<answer>two\nlines</answer>", ctx) == 1.0


def test_context_from_an_example() -> None:
    example = Example(
        id="sat-1",
        domain="sat",
        image=b"",
        problem="Which colour?",
        solution="B",
        answer_kind="mc",
        options=OPTIONS,
    )
    ctx = RewardContext.from_example(example)
    assert ctx == MC
    assert accuracy_reward(answer("blue"), ctx) == 1.0


@pytest.mark.parametrize(
    ("solution", "kind", "options", "message"),
    [
        ("", "text", (), "non-empty"),
        ("   ", "mc", (), "non-empty"),
        ("B", "yesno", (), "answer_kind"),
        ("Z", "mc", (), "names no option"),
        ("C", "mc", ("red", "blue"), "names no option"),
        ("[1, 2, 3]", "box", (), "box"),
        ("B", "mc", ("red", 3), "options"),
    ],
)
def test_invalid_contexts_are_refused(solution: str, kind: str, options: tuple, message: str) -> None:
    with pytest.raises(RewardConfigError, match=message):
        RewardContext(solution=solution, answer_kind=kind, options=options)


def test_context_options_become_a_tuple() -> None:
    ctx = RewardContext(solution="red", answer_kind="mc", options=["red", "blue"])  # type: ignore[arg-type]
    assert ctx.options == ("red", "blue")
    assert choice_index(ctx.solution, ctx.options) == 0
