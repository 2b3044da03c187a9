"""Benchmark metrics: the registry, and each metric on known cases from its benchmark's definition."""

from __future__ import annotations

import json

import pytest

from modomodo.data.schema import Example
from modomodo.evaluation.answer_rules import mmmu_choice, mmmu_open_predictions
from modomodo.evaluation.metrics import (
    METRICS,
    MetricError,
    anls_score,
    check_metric,
    default_metric,
    edit_distance,
    get_metric,
    register_metric,
    relaxed_match,
)


def example(solution: str, kind: str = "text", options: tuple[str, ...] = (), **meta: str) -> Example:
    return Example("b-1", "bench", b"png", "question", solution, kind, options, dict(meta))


def done(answer: str) -> str:
    return f"<think> reasoning </think> <answer> {answer} </answer>"


def score(metric: str, answer: str | None, ex: Example) -> float:
    return get_metric(metric)(done(answer) if answer is not None else "no answer block", ex)


def test_registry_lists_every_metric_and_refuses_unknown_or_mismatched_ones():
    assert {"exact_match", "mean_iou", "relaxed_accuracy", "anls", "mathvista", "mmmu"} <= set(METRICS)
    with pytest.raises(MetricError, match="known metrics: .*anls"):
        get_metric("ansl")
    with pytest.raises(MetricError, match=r"cannot score \['box'\]"):
        check_metric("anls", ["text", "box"])
    check_metric("mean_iou", ["box"])
    with pytest.raises(MetricError, match="already registered"):
        register_metric("anls")
    assert (default_metric("box"), default_metric("mc"), default_metric("text")) == (
        "mean_iou",
        "exact_match",
        "exact_match",
    )


@pytest.mark.parametrize("metric", ["exact_match", "relaxed_accuracy", "anls", "mathvista", "mmmu"])
def test_a_completion_without_an_answer_block_scores_zero(metric):
    ex = example("B", "mc", ("x", "y")) if metric in ("mathvista", "mmmu") else example("12")
    assert score(metric, None, ex) == 0.0


def test_exact_match_is_the_projects_answer_match_against_any_reference():
    assert score("exact_match", "B", example("B", "mc", ("red", "blue"))) == 1.0
    assert score("exact_match", "blue", example("B", "mc", ("red", "blue"))) == 1.0
    assert score("exact_match", "A", example("B", "mc", ("red", "blue"))) == 0.0
    infovqa = example("2019", answers=json.dumps(["2019", "in 2019"]))
    assert score("exact_match", "In 2019", infovqa) == 1.0
    assert score("exact_match", "7.0", example("7")) == 1.0


def test_mean_iou_is_the_continuous_iou():
    box = example("[{'Position': [0, 0, 10, 10], 'Confidence': 1}]", "box")
    assert score("mean_iou", "[0, 0, 10, 10]", box) == 1.0
    assert score("mean_iou", "[0, 0, 10, 5]", box) == pytest.approx(0.5)
    assert score("mean_iou", "not a box", box) == 0.0


@pytest.mark.parametrize(
    ("prediction", "target", "correct"),
    [
        ("52", "50", True),  # 4% off
        ("52.5", "50", True),  # exactly 5%
        ("53", "50", False),  # 6% off
        ("12%", "0.12", True),  # a percentage reads as /100
        ("-47.5", "-50", True),
        ("0.01", "0", False),  # a zero target needs an exact match
        ("0", "0", True),
        ("Yes", "yes", True),
        ("Yes ", "No", False),
        ("nan", "50", False),
    ],
)
def test_chartqa_relaxed_accuracy(prediction, target, correct):
    assert relaxed_match(prediction, target) is correct
    assert score("relaxed_accuracy", prediction, example(target)) == float(correct)


def test_anls_known_cases():
    assert edit_distance("the cat", "teh cat") == 2
    assert anls_score("teh cat", ["the cat"]) == pytest.approx(1 - 2 / 7)
    assert anls_score("  The   CAT ", ["the cat"]) == 1.0  # case and whitespace are normalised
    assert anls_score("abce", ["abcd"]) == pytest.approx(0.75)
    assert anls_score("ab", ["ac"]) == 0.0  # a distance of 0.5 is at the threshold: 0
    assert anls_score("dog", ["cat"]) == 0.0
    assert anls_score("2019", ["in 2019", "2019"]) == 1.0  # the closest reference counts
    assert anls_score("", [""]) == 1.0
    assert score("anls", "teh cat", example("the cat")) == pytest.approx(1 - 2 / 7)


MV_CHOICES = ("3/11", "8/11", "6/11")


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("B", True),
        ("(B) 8/11", True),
        ("8/11", True),
        ('The answer is "B".', True),
        ("b", True),
        ("the choice (B)", True),
        ("8/12", True),  # lmms-eval's fallback: the most similar choice
        ("C", False),
        ("6/11", False),
    ],
)
def test_mathvista_multiple_choice_is_scored_against_the_choice_text(answer, correct):
    ex = example(
        "B", "mc", MV_CHOICES, question_type="multi_choice", answer_type="text", precision="", unit=""
    )
    assert score("mathvista", answer, ex) == float(correct)


@pytest.mark.parametrize(
    ("answer", "solution", "answer_type", "precision", "unit", "correct"),
    [
        ("1.449", "1.45", "float", "2", "", True),  # str(round(1.449, 2)) == "1.45"
        ("1.4", "1.45", "float", "2", "", False),
        ("0.60", "0.6", "float", "1", "", True),
        ("1.45 cm", "1.45", "float", "2", "cm", True),  # the unit is dropped
        ("1.45.", "1.45", "float", "2", "", True),
        ("14.0", "14", "integer", "", "", True),
        ('The answer is "14".', "14", "integer", "", "", True),
        ("fourteen", "14", "integer", "", "", False),
        ("[2007, 2008]", "[2007, 2008]", "list", "", "", True),
        ("1e999", "1", "integer", "", "", False),  # overflow is a wrong answer, not a crash
    ],
)
def test_mathvista_free_form_precision_and_unit(answer, solution, answer_type, precision, unit, correct):
    ex = example(solution, question_type="free_form", answer_type=answer_type, precision=precision, unit=unit)
    assert score("mathvista", answer, ex) == float(correct)


MMMU_OPTIONS = ("the painting on the left", "the painting on the right", "both the same", "neither")


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("(B)", "B"),
        ("B", "B"),
        ("B.", "B"),
        ("The answer is B.", "B"),
        ("(A) is tempting but (B) is right", "B"),  # the last mention wins
        ("I am fairly sure it is the painting on the right", "B"),  # option text, over five words
        ("right", None),  # names no option: MMMU guesses at random, we score 0
    ],
)
def test_mmmu_option_letter_parsing(answer, letter):
    assert mmmu_choice(answer, MMMU_OPTIONS) == letter
    assert score("mmmu", answer, example("B", "mc", MMMU_OPTIONS)) == float(letter == "B")


@pytest.mark.parametrize(
    ("answer", "gold", "correct"),
    [
        ("so the total is 12 apples", "12", True),
        ("12", "12.0", True),
        ("1,200", "1200", True),
        ("13", "12", False),
        ("3.429", "['24/7', '3.429']", True),  # a list of accepted answers
        ("the colour is blue", "blue", True),
        ("the colour is red", "blue", False),
    ],
)
def test_mmmu_open_answers(answer, gold, correct):
    assert score("mmmu", answer, example(gold, question_type="open")) == float(correct)


def test_mmmu_open_parsing_keeps_the_key_phrase_and_its_numbers():
    predictions = mmmu_open_predictions("Thus the result is 3,000 m")
    assert predictions[:2] == ["3,000 m", 3000.0]  # MMMU's plain-number pattern also reads "000"


FUZZ_EXAMPLES = {
    "exact_match": example("B", "mc", ("red", "blue"), answers='["B", "blue"]'),
    "mean_iou": example("[{'Position': [0, 0, 10, 10], 'Confidence': 1}]", "box"),
    "relaxed_accuracy": example("50"),
    "anls": example("the cat", answers='["the cat", "a cat"]'),
    "mathvista": example("1.45", question_type="free_form", answer_type="float", precision="2", unit="cm"),
    "mmmu": example("['24/7', '3.429']", question_type="open"),
}
MC_FUZZ = {
    "mathvista": example(
        "B", "mc", MV_CHOICES, question_type="multi_choice", answer_type="text", precision="", unit=""
    ),
    "mmmu": example("B", "mc", MMMU_OPTIONS),
}


@pytest.mark.parametrize("metric", sorted(FUZZ_EXAMPLES))
def test_fuzzed_completions_score_in_the_unit_interval_without_raising(metric):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from(
        ["<answer>", "</answer>", "(B)", "B ", "1e999", "nan", "12%", ",", " is ", "=", "\n"]
    )
    completions = st.lists(st.one_of(pieces, st.text(max_size=12)), max_size=12).map("".join)
    examples = [FUZZ_EXAMPLES[metric]] + ([MC_FUZZ[metric]] if metric in MC_FUZZ else [])

    @settings(max_examples=60, deadline=None)
    @given(completions)
    def check(completion):
        for ex in examples:
            value = get_metric(metric)(completion, ex)
            assert 0.0 <= value <= 1.0

    check()
