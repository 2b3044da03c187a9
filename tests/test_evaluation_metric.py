"""The evaluation metric: what one greedy completion scores on a benchmark (``scoring_rewards``), and
how benchmarks add up to In-Score and Out-Score (``aggregate``). Every expected number is worked out
by hand here. Fast."""

from __future__ import annotations

import json

import pytest
from tiny import build_test_model

from modomodo.config import EvalConfig
from modomodo.data.synthetic import generate
from modomodo.evaluation.evaluate import BenchmarkScore, aggregate, evaluate_policy, scoring_rewards
from modomodo.policy.load import load_policy
from modomodo.rewards import RewardContext

BOX = "[{'Position': [84, 84, 112, 112], 'Confidence': 1}]"
"""A 28x28 box: shifting it right by 7 px leaves IoU 21/35 = 0.6, by 21 px 7/49 = 1/7."""


def _box(dx: int) -> str:
    return f"[{{'Position': [{84 + dx}, 84, {112 + dx}, 112], 'Confidence': 1}}]"


def _formatted(answer: str) -> str:
    return f"<think> I look. </think> <answer> {answer} </answer>"


@pytest.mark.parametrize(
    ("kind", "solution", "options", "completion", "score", "format_part"),
    [
        ("box", BOX, (), _formatted(BOX), 1.0, 1.0),
        ("box", BOX, (), _formatted(_box(7)), 0.6, 1.0),
        # Mean IoU, not Visual-RFT's thresholded match (which gives 0 below IoU 0.5).
        ("box", BOX, (), _formatted(_box(21)), 1 / 7, 1.0),
        ("box", BOX, (), _formatted(_box(28)), 0.0, 1.0),
        # Not gated by format: a right answer without the <think> block still scores; format is
        # recorded as its own part with weight 0.
        ("box", BOX, (), f"<answer> {BOX} </answer>", 1.0, 0.0),
        ("box", BOX, (), "no answer tag at all", 0.0, 0.0),
        ("mc", "B", ("2", "4", "3", "1"), _formatted("B"), 1.0, 1.0),
        ("mc", "B", ("2", "4", "3", "1"), _formatted("A"), 0.0, 1.0),
        ("mc", "B", ("2", "4", "3", "1"), "<answer> B </answer>", 1.0, 0.0),
        ("text", "green", (), _formatted("green"), 1.0, 1.0),
        ("text", "green", (), _formatted("red"), 0.0, 1.0),
    ],
)
def test_one_completions_score_is_its_task_part_alone(
    kind, solution, options, completion, score, format_part
):
    result = scoring_rewards(kind).score(completion, RewardContext(solution, kind, options))
    assert result.total == pytest.approx(score)
    assert result.parts["format"] == format_part
    task = "iou_continuous" if kind == "box" else "accuracy"
    assert set(result.parts) == {task, "format"} and result.parts[task] == pytest.approx(score)


def test_in_and_out_scores_weigh_benchmarks_by_their_sample_counts():
    scores = [
        BenchmarkScore("chart", "in", 10, 0.5),
        BenchmarkScore("gridqa", "in", 30, 0.9),
        BenchmarkScore("mixmc", "out", 5, 0.2),
        BenchmarkScore("mathcount", "out", 15, 0.6),
    ]
    # In: (10 x 0.5 + 30 x 0.9) / 40 = 32 / 40 = 0.8 (the unweighted mean would be 0.7).
    assert aggregate(scores, "in") == pytest.approx(0.8)
    # Out: (5 x 0.2 + 15 x 0.6) / 20 = 10 / 20 = 0.5 (unweighted: 0.4).
    assert aggregate(scores, "out") == pytest.approx(0.5)


def test_a_split_without_samples_has_no_score_rather_than_zero():
    only_in = [BenchmarkScore("chart", "in", 4, 0.75)]
    assert aggregate(only_in, "out") is None
    assert aggregate([], "in") is None
    # A benchmark with no examples weighs nothing; alone, its split has no score.
    assert aggregate([*only_in, BenchmarkScore("gridqa", "in", 0, 0.0)], "in") == pytest.approx(0.75)
    assert aggregate([BenchmarkScore("mixmc", "out", 0, 0.0)], "out") is None


@pytest.fixture(scope="module")
def benchmarks():
    return {
        "chart": generate("chart", "test", 3, seed=0),
        "ref": generate("ref", "test", 2, seed=0),
        "mixmc": [],
    }


def test_evaluation_records_each_samples_score_and_aggregates_them(benchmarks, tmp_path):
    model_dir = build_test_model(tmp_path / "tiny", [e for ex in benchmarks.values() for e in ex])
    model, processor = load_policy(model_dir, "fp32")
    splits = {"chart": "in", "ref": "in", "mixmc": "out"}
    seen: list[tuple[str, float]] = []
    result = evaluate_policy(
        model,
        processor,
        benchmarks,
        splits,
        EvalConfig(max_new_tokens=4, batch_size=2),
        tmp_path / "eval",
        on_benchmark=lambda name, score: seen.append((name, score)),
    )
    samples = [json.loads(line) for line in (tmp_path / "eval" / "samples.jsonl").read_text().splitlines()]
    assert [s["id"] for s in samples] == [e.id for name in ("chart", "ref") for e in benchmarks[name]]
    examples = {e.id: e for ex in benchmarks.values() for e in ex}
    for sample in samples:  # each record's score is the metric of its own completion
        ex = examples[sample["id"]]
        expected = scoring_rewards(ex.answer_kind).score(
            sample["completion"], RewardContext(ex.solution, ex.answer_kind, ex.options)
        )
        assert (sample["score"], sample["parts"]) == (expected.total, expected.parts)
    by_name = {s.benchmark: s for s in result.scores}
    chart = [s["score"] for s in samples if s["benchmark"] == "chart"]
    ref = [s["score"] for s in samples if s["benchmark"] == "ref"]
    assert (by_name["chart"].n, by_name["ref"].n, by_name["mixmc"].n) == (3, 2, 0)
    assert by_name["chart"].score == pytest.approx(sum(chart) / 3)
    assert result.in_score == pytest.approx((sum(chart) + sum(ref)) / 5)
    assert result.out_score is None, "an empty out-of-domain split has no score"
    assert seen == [(s.benchmark, s.score) for s in result.scores]
    saved = json.loads((tmp_path / "eval" / "scores.json").read_text())
    assert (saved["in_score"], saved["out_score"], saved["max_new_tokens"]) == (result.in_score, None, 4)


def test_a_benchmark_without_a_split_is_refused(benchmarks, tmp_path):
    with pytest.raises(ValueError, match=r"benchmarks without an in/out split: \['ref'\]"):
        evaluate_policy(None, None, benchmarks, {"chart": "in", "mixmc": "out"}, EvalConfig(), tmp_path)
