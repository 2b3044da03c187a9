"""Prompt templates, answer notation and the SFT reference completion."""

from __future__ import annotations

import re

import pytest

from modomodo.data.prompts import (
    BOX_EXAMPLE_OUTPUT,
    BOX_INSTRUCTION,
    DEFAULT_RATIONALE,
    MC_INSTRUCTION,
    NO_OBJECTS,
    TEXT_INSTRUCTION,
    format_boxes,
    format_options,
    reference_completion,
    render_prompt,
    strip_instruction,
    to_conversation,
)
from modomodo.data.schema import Example
from modomodo.rewards import FORMAT_REGEX, is_well_formatted, parse_boxes

FORMAT = r"<think>.*?</think>\s*<answer>.*?</answer>"  # the project's format rule, written out


def _example(kind: str, problem: str = "Q?", solution: str = "A", **kw) -> Example:
    return Example("x-train-000000", "x", b"", problem, solution, kind, **kw)


def test_format_rule_written_here_is_the_rewards_one():
    assert FORMAT == FORMAT_REGEX


def test_mc_prompt_is_the_lineage_template_with_two_spaces():
    problem = f"Which colour?\n{format_options(['red', 'green', 'blue'])}"
    prompt = render_prompt(_example("mc", problem, options=("red", "green", "blue")))
    assert prompt == (
        "Which colour?\nA. red\nB. green\nC. blue  Output the thinking process in <think> </think> "
        "and final answer (option) in <answer> </answer> tags."
    )
    assert prompt.endswith("  " + MC_INSTRUCTION)


def test_text_prompt_asks_for_a_short_answer():
    prompt = render_prompt(_example("text", "Where is it?", "left"))
    assert (
        prompt == f"Where is it?  {TEXT_INSTRUCTION}"
        and "(short answer)" in prompt
        and "(option)" not in prompt
    )


def test_box_prompt_ends_with_the_visual_rft_format_lines():
    prompt = render_prompt(_example("box", "Find the red square.", "[]"))
    assert prompt == f"Find the red square.\n{BOX_INSTRUCTION}"
    assert prompt.endswith(
        "tags.The output answer format should be as follows:\n"
        "<think> ... </think> <answer>[{'Position': [x1, y1, x2, y2], 'Confidence': number}, ...]</answer>\n"
        "Please strictly follow the format."
    )


def test_example_outputs_shown_to_the_model_satisfy_the_format_rule():
    assert re.fullmatch(FORMAT, BOX_EXAMPLE_OUTPUT.strip(), re.DOTALL)
    assert is_well_formatted(BOX_EXAMPLE_OUTPUT)


def test_unknown_answer_kind_is_refused():
    with pytest.raises(ValueError, match="unknown answer kind"):
        render_prompt(_example("essay"))


def test_boxes_are_written_canonically_and_parse_back():
    text = format_boxes([(28, 56, 56, 84), (0.5, 1.0, 2.25, 3)])
    assert (
        text
        == "[{'Position': [28, 56, 56, 84], 'Confidence': 1}, {'Position': [0.5, 1, 2.25, 3], 'Confidence': 1}]"
    )
    assert [b.corners for b in parse_boxes(text)] == [(28, 56, 56, 84), (0.5, 1, 2.25, 3)]
    assert format_boxes([]) == NO_OBJECTS and parse_boxes(NO_OBJECTS) == []


@pytest.mark.parametrize("options", [["only"], [str(i) for i in range(9)]])
def test_option_count_is_bounded(options):
    with pytest.raises(ValueError, match="2 to 8 options"):
        format_options(options)


def test_reference_completion_uses_the_rationale_or_a_plain_default():
    with_rationale = _example("text", solution="left", meta={"rationale": "the red circle is at row 1 col 1"})
    assert reference_completion(with_rationale) == (
        "<think> the red circle is at row 1 col 1 </think> <answer> left </answer>"
    )
    bare = reference_completion(_example("mc", solution="B"))
    assert bare == f"<think> {DEFAULT_RATIONALE} </think> <answer> B </answer>" and is_well_formatted(bare)


def test_conversation_is_one_user_turn_with_the_image_first():
    ex = _example("text", "Where is it?", "left")
    assert to_conversation(ex) == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": render_prompt(ex)}]}
    ]


@pytest.mark.parametrize(
    "stored",
    [
        "What is it?  " + MC_INSTRUCTION,
        "What is it?  " + MC_INSTRUCTION.replace("(option)", "(number)"),
        "What is it?\n" + BOX_INSTRUCTION,
        "What is it?",
    ],
)
def test_a_stored_instruction_is_cut_from_the_problem(stored):
    assert strip_instruction(stored) == "What is it?"
