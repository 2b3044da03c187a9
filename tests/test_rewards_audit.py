"""Offline audit of a JSONL file of completions."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from modomodo.rewards import default_reward_set
from modomodo.rewards.audit import render_table, score_records

DOMAINS = {"sat": default_reward_set("mc"), "coco": default_reward_set("box", iou="iou_visual_rft")}
GOOD_MC = "<think>blue</think> <answer>B</answer>"


def line(**fields: object) -> str:
    return json.dumps(fields) + "\n"


@pytest.mark.parametrize(
    ("solution", "options", "kind"),
    [
        ("[{'Position': [1, 2, 3, 4], 'Confidence': 1}]", [], "box"),
        ("[1, 2, 3, 4]", [], "box"),
        ("No Objects", [], "box"),
        ("B", ["red", "blue"], "mc"),
        ("B", [], "text"),  # without options a letter is a literal answer
        ("left", ["left", "right"], "text"),
        ("7", [], "text"),
    ],
)
def test_answer_kind_is_inferred_as_curation_does(solution: str, options: list[str], kind: str) -> None:
    [result] = score_records(
        [line(completion=GOOD_MC, solution=solution, options=options, rewards=["format"])], {}
    )
    assert result["answer_kind"] == kind


def test_domain_lines_use_the_domains_reward_set() -> None:
    [result] = score_records(
        [line(completion=GOOD_MC, solution="B", options=["red", "blue"], domain="sat")], DOMAINS
    )
    assert result == {
        "line": 1,
        "domain": "sat",
        "answer_kind": "mc",
        "answer": "B",
        "parts": {"format": 1.0, "accuracy": 1.0},
        "total": 3.0,
    }


def test_reward_lists_with_and_without_weights() -> None:
    lines = [
        line(completion=GOOD_MC, solution="blue", options=["red", "blue"], rewards=["format", "accuracy"]),
        line(completion="<answer>B</answer>", solution="B", rewards=[{"name": "accuracy", "weight": 3}]),
        line(completion="<answer>B</answer>", solution="B", rewards=["format", {"name": "accuracy"}]),
    ]
    first, second, third = score_records(lines, DOMAINS)
    assert (first["answer_kind"], first["parts"], first["total"]) == (
        "text",
        {"format": 1.0, "accuracy": 1.0},
        2.0,
    )
    assert (second["domain"], second["parts"], second["total"]) == (None, {"accuracy": 1.0}, 3.0)  # no gate
    assert third["total"] == 0.0  # format listed, so the gate applies


def test_box_lines() -> None:
    completion = "<think>x</think><answer>[{'Position': [0, 0, 10, 6], 'Confidence': 0.9}]</answer>"
    [result] = score_records([line(completion=completion, solution="[0, 0, 10, 10]", domain="coco")], DOMAINS)
    assert result["answer_kind"] == "box"
    assert result["parts"] == {"format": 1.0, "iou_visual_rft": pytest.approx(0.6)}


def test_bad_lines_give_errors_and_the_audit_goes_on() -> None:
    lines = [
        "{not json\n",
        line(completion=GOOD_MC, solution="B", domain="nope"),
        line(solution="B", domain="sat"),
        line(completion=GOOD_MC, solution="B"),
        line(completion=GOOD_MC, solution="B", domain="sat", rewards=["format"]),
        line(completion=GOOD_MC, solution="B", rewards=["nope"]),
        line(completion=GOOD_MC, solution="B", rewards=[]),
        line(completion=GOOD_MC, solution="B", rewards=[{"name": "accuracy", "weight": -1}]),
        line(completion=GOOD_MC, solution="B", rewards=[{"name": "accuracy", "w": 1}]),
        line(completion=GOOD_MC, solution="B", options="red", domain="sat"),
        line(completion=GOOD_MC, solution="left", rewards=["iou_continuous"]),
        line(completion=GOOD_MC, solution="Z", answer_kind="mc", domain="sat"),
        "[1, 2]\n",
        "\n",
        line(completion=GOOD_MC, solution="B", domain="sat"),
    ]
    results = score_records(lines, DOMAINS)
    errors = {result["line"]: result["error"] for result in results if "error" in result}
    assert sorted(errors) == list(range(1, 14))
    assert all(message.startswith(f"line {number}: ") for number, message in errors.items())
    assert "invalid JSON" in errors[1]
    assert "unknown domain 'nope'; known domains: ['coco', 'sat']" in errors[2]
    assert "'completion' is missing" in errors[3]
    assert "exactly one of 'domain' or 'rewards'" in errors[4] and "exactly one" in errors[5]
    assert "unknown reward 'nope'" in errors[6]
    assert "non-empty list" in errors[7]
    assert "finite number >= 0" in errors[8]
    assert "a reward must be a name" in errors[9]
    assert "'options' must be a list of strings" in errors[10]
    assert "needs answer_kind 'box'" in errors[11]
    assert "names no option" in errors[12]
    assert "expected a JSON object" in errors[13]
    assert results[-1]["line"] == 15 and results[-1]["total"] == 3.0  # blank line 14 skipped


def test_decoded_records_are_accepted() -> None:
    [result] = score_records([{"completion": GOOD_MC, "solution": "B", "domain": "sat"}], DOMAINS)
    assert result["total"] == 3.0


def test_render_table_shows_every_line_and_never_reads_answers_as_markup() -> None:
    results = score_records(
        [
            line(completion="<think>x</think><answer>[red]B[/red]</answer>", solution="B", domain="sat"),
            line(completion=GOOD_MC, solution="B", domain="nope"),
            line(
                completion="<think>x</think><answer>[0, 0, 10, 10]</answer>",
                solution="[0, 0, 10, 10]",
                domain="coco",
            ),
        ],
        DOMAINS,
    )
    table = render_table(results)
    assert table.row_count == 3
    assert [column.header for column in table.columns] == [
        "line",
        "domain",
        "answer",
        "format",
        "accuracy",
        "iou_visual_rft",
        "total",
        "error",
    ]
    out = io.StringIO()
    Console(file=out, width=250, color_system=None).print(table)
    text = out.getvalue()
    assert "[red]B[/red]" in text
    assert "unknown domain 'nope'" in text
    assert "3.000" in text and "1.000" in text
