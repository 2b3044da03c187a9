"""``eval.metrics``: a benchmark scored with a configured metric instead of the paper's. The config
refuses a metric it cannot apply before any work; evaluation scores with the configured metric and
names it in ``scores.json``. Every expected number is worked out by hand here. Fast."""

from __future__ import annotations

import json

import pytest
from tiny import build_test_model
from typer.testing import CliRunner

from modomodo.cli import app
from modomodo.config import ConfigError, EvalConfig, config_from_dict, load_config
from modomodo.data.schema import Example
from modomodo.data.synthetic import generate
from modomodo.evaluation.evaluate import evaluate_policy, score_benchmark, scoring_rewards
from modomodo.evaluation.metrics import MetricError
from modomodo.policy.load import load_policy
from modomodo.rewards import RewardContext


def _text(i: int, solution: str) -> Example:
    return Example(f"chart-{i}", "chart", b"png", "question", solution, "text", (), {})


def _done(answer: str) -> str:
    return f"<think> I read the chart. </think> <answer> {answer} </answer>"


CHART = [_text(0, "50"), _text(1, "50"), _text(2, "red"), _text(3, "50")]
CHART_COMPLETIONS = [
    _done("52"),  # 4% off: relaxed accuracy 1, exact match 0
    _done("60"),  # 20% off: 0 for both
    _done("Red"),  # text equal ignoring case: 1 for both
    "50 without an answer block",  # 0 for both
]


def test_a_valid_metric_choice_loads_and_survives_the_round_trip():
    cfg = load_config("smoke", ["eval.metrics={chart: relaxed_accuracy, gridqa: anls, ref: mean_iou}"])
    assert cfg.eval.metrics == {"chart": "relaxed_accuracy", "gridqa": "anls", "ref": "mean_iou"}
    assert config_from_dict(cfg.to_dict()).eval.metrics == cfg.eval.metrics
    assert load_config("smoke").eval.metrics == {}, "no choice: each benchmark gets the paper's metric"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["eval.metrics={chart: nope}"], r"eval.metrics.chart: unknown metric 'nope'; known metrics: \["),
        (
            ["data.benchmarks=[chart, ref]", "eval.metrics={gridqa: anls}"],
            r"eval.metrics.gridqa: benchmark 'gridqa' is not configured; configured: \['chart', 'ref'\]",
        ),
        (["eval.metrics={nope: anls}"], r"eval.metrics.nope: benchmark 'nope' is not configured"),
        (
            ["eval.metrics={ref: anls}"],
            r"eval.metrics.ref: metric 'anls' cannot score \['box'\] answers; it scores \['text'\]",
        ),
        (["eval.metrics={mixmc: relaxed_accuracy}"], r"eval.metrics.mixmc: .*cannot score \['mc'\]"),
        (["eval.metrics={chart: mean_iou}"], r"eval.metrics.chart: .*cannot score \['text'\]"),
    ],
)
def test_a_metric_that_cannot_apply_is_a_config_error_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", overrides)


def test_the_cli_refuses_a_bad_metric_before_any_work(tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        app,
        ["evaluate", "--data", str(tmp_path / "nodata"), "--model", str(tmp_path / "nomodel"),
         "--out", str(out), "--set", "eval.metrics={ref: relaxed_accuracy}"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # the console wraps long lines
    assert "eval.metrics.ref: metric 'relaxed_accuracy' cannot score ['box'] answers" in message
    assert not out.exists(), "nothing was written"


def test_relaxed_accuracy_scores_chart_answers_near_the_value_that_exact_match_refuses():
    exact, _ = score_benchmark("chart", "out", CHART, CHART_COMPLETIONS, "exact_match")
    relaxed, records = score_benchmark("chart", "out", CHART, CHART_COMPLETIONS, "relaxed_accuracy")
    assert (exact.score, exact.metric) == (pytest.approx(1 / 4), "exact_match")  # only "Red"
    assert (relaxed.score, relaxed.metric, relaxed.n) == (pytest.approx(2 / 4), "relaxed_accuracy", 4)
    assert [r["score"] for r in records] == [1.0, 0.0, 1.0, 0.0]
    assert records[0]["parts"] == {"relaxed_accuracy": 1.0, "format": 1.0}
    assert records[3]["parts"] == {"relaxed_accuracy": 0.0, "format": 0.0}
    assert records[0]["answer"] == "52" and records[0]["solution"] == "50"


def test_anls_gives_partial_credit_for_a_near_miss():
    examples = [_text(0, "the cat"), _text(1, "blue")]
    completions = [_done("teh cat"), _done("blue")]
    anls, records = score_benchmark("gridqa", "out", examples, completions, "anls")
    exact, _ = score_benchmark("gridqa", "out", examples, completions, "exact_match")
    # "teh cat" vs "the cat": 2 substitutions over 7 characters, 1 - 2/7 = 5/7; "blue" is exact.
    assert [r["score"] for r in records] == [pytest.approx(5 / 7), 1.0]
    assert anls.score == pytest.approx((5 / 7 + 1) / 2)
    assert exact.score == pytest.approx(1 / 2)


def test_without_a_configured_metric_a_benchmark_is_scored_as_before():
    score, records = score_benchmark("chart", "out", CHART, CHART_COMPLETIONS, None)
    for ex, completion, record in zip(CHART, CHART_COMPLETIONS, records, strict=True):
        expected = scoring_rewards("text").score(completion, RewardContext(ex.solution, "text", ex.options))
        assert (record["score"], record["parts"]) == (expected.total, expected.parts)
    assert (score.score, score.metric) == (pytest.approx(1 / 4), "exact_match")
    box = generate("ref", "test", 2, seed=0)
    assert score_benchmark("ref", "in", box, ["", ""], None)[0].metric == "mean_iou"
    assert score_benchmark("mixmc", "out", [], [], None)[0].metric is None, "nothing scored, no metric"


def test_scores_json_names_each_benchmarks_metric(tmp_path):
    benchmarks = {"chart": generate("chart", "test", 3, seed=0), "ref": generate("ref", "test", 2, seed=0)}
    model_dir = build_test_model(tmp_path / "tiny", [e for ex in benchmarks.values() for e in ex])
    model, processor = load_policy(model_dir, "fp32")
    cfg = EvalConfig(max_new_tokens=4, batch_size=2, metrics={"chart": "relaxed_accuracy"})
    result = evaluate_policy(
        model, processor, benchmarks, {"chart": "out", "ref": "in"}, cfg, tmp_path / "eval"
    )
    saved = json.loads((tmp_path / "eval" / "scores.json").read_text())
    assert {s["benchmark"]: s["metric"] for s in saved["scores"]} == {
        "chart": "relaxed_accuracy",
        "ref": "mean_iou",
    }
    samples = [json.loads(line) for line in (tmp_path / "eval" / "samples.jsonl").read_text().splitlines()]
    chart = [s for s in samples if s["benchmark"] == "chart"]
    assert [set(s["parts"]) for s in chart] == [{"relaxed_accuracy", "format"}] * 3
    assert result.by_benchmark()["chart"] == pytest.approx(sum(s["score"] for s in chart) / 3)


def test_a_metric_that_cannot_score_the_curated_data_is_refused_before_generation(tmp_path):
    # A config checks its own benchmarks; curated data from another config may hold other kinds.
    benchmarks = {"chart": generate("ref", "test", 1, seed=0)}  # box answers under a text name
    cfg = EvalConfig(metrics={"chart": "relaxed_accuracy"})
    with pytest.raises(
        MetricError, match=r"eval.metrics.chart: metric 'relaxed_accuracy' cannot score \['box'\]"
    ):
        evaluate_policy(None, None, benchmarks, {"chart": "out"}, cfg, tmp_path / "eval")
    assert not (tmp_path / "eval").exists()
