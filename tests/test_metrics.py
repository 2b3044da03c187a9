"""Stage metrics: documented names, values, and the real Pushgateway -> Prometheus path."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import free_port

from modomodo import metrics as m
from modomodo.config import load_config
from modomodo.metrics import METRICS, PUSHGATEWAY_ENV, StageMetrics, mixture_label
from modomodo.retry import RetryPolicy
from modomodo.stages.common import stage_metrics

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


def _run_id() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _prometheus_query(prometheus: str, query: str) -> dict:
    doc = _get_json(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    assert doc["status"] == "success", doc
    return doc["data"]


def _wait_for_series(prometheus: str, query: str, timeout_s: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = _prometheus_query(prometheus, query)["result"]
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"Prometheus returned nothing for {query} within {timeout_s} s")


def _pushgateway_groups(pushgateway: str) -> list[dict[str, str]]:
    return [group["labels"] for group in _get_json(f"{pushgateway}/api/v1/metrics")["data"]]


# Names -----------------------------------------------------------------------------------------


def test_docs_table_lists_exactly_the_metrics_in_code() -> None:
    rows = re.findall(r"^\| `(modomodo_\w+)` \| (\w+) \|([^|]*)\|", DOCS.read_text(), flags=re.MULTILINE)
    documented = {(name, kind, tuple(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows}
    assert len(rows) == len(documented)
    assert documented == {(spec.name, spec.kind, spec.labels) for spec in METRICS}

    constants = {
        value for key, value in vars(m).items() if key.isupper() and str(value).startswith("modomodo_")
    }
    assert constants == {spec.name for spec in METRICS}


def test_names_follow_the_conventions() -> None:
    for spec in METRICS:
        assert re.fullmatch(r"modomodo_(train|eval|stage|rollout|data|mixture)_[a-z0-9_]+", spec.name), (
            spec.name
        )
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        assert not set(spec.labels) & set(m.BASE_LABELS), spec.name


# Values ----------------------------------------------------------------------------------------


def _labels(metrics: StageMetrics, **extra: str) -> dict[str, str]:
    return {"run": metrics.run, "stage": metrics.stage, "mixture": metrics.mixture, **extra}


def test_train_steps_accumulate_and_gauges_keep_the_latest() -> None:
    metrics = StageMetrics("r", "train", mixture_label({"count": 0.5, "ref": 0.5}))
    metrics.record_train_step(
        0.2, 100, {"count": 1.5, "ref": 0.5}, {"count": 0.5}, {"count": 3, "ref": 1}, 0.3, 0.01
    )
    metrics.record_train_step(
        0.4, 50, {"count": 1.0}, {"count": 0.25}, {"count": 2, "ref": 6}, None, None, steps=2
    )

    value = metrics.registry.get_sample_value
    assert value(m.TRAIN_STEPS, _labels(metrics)) == 3
    assert value(m.TRAIN_STEP_SECONDS + "_count", _labels(metrics)) == 3
    assert value(m.TRAIN_STEP_SECONDS + "_sum", _labels(metrics)) == pytest.approx(0.2 + 2 * 0.4)
    assert value(m.TRAIN_TOKENS_GENERATED, _labels(metrics)) == 150
    assert value(m.TRAIN_REWARD, _labels(metrics, domain="count")) == 1.0
    assert value(m.TRAIN_REWARD, _labels(metrics, domain="ref")) == 0.5  # not in the last record
    assert value(m.TRAIN_ACCURACY, _labels(metrics, domain="count")) == 0.25
    assert value(m.TRAIN_SAMPLES, _labels(metrics, domain="count")) == 5
    assert value(m.TRAIN_SAMPLES, _labels(metrics, domain="ref")) == 7
    assert value(m.TRAIN_LOSS, _labels(metrics)) == 0.3
    assert value(m.TRAIN_KL, _labels(metrics)) == 0.01
    with pytest.raises(ValueError, match="steps >= 0"):
        metrics.record_train_step(0.1, 0, {}, {}, {}, steps=-1)


def test_other_recorders() -> None:
    metrics = StageMetrics("r", "any")
    metrics.record_eval({"count-val": 0.7}, {"geo-test": 0.4}, in_score=0.7, out_score=0.4)
    metrics.record_data({"count": {"train": 90, "val": 10}}, {"count": 3})
    metrics.record_pass_rates({"count": 0.35}, zero_signal={"count": 12})
    metrics.record_mixture({"count": 0.25, "ref": 0.75})
    metrics.record_surrogate({"quadratic": 0.81, "linear": 0.6})
    metrics.record_search(predicted_score=0.66, trials=200)

    value = metrics.registry.get_sample_value
    assert value(m.EVAL_SCORE, _labels(metrics, benchmark="count-val", split="in")) == 0.7
    assert value(m.EVAL_SCORE, _labels(metrics, benchmark="geo-test", split="out")) == 0.4
    assert (value(m.EVAL_IN_SCORE, _labels(metrics)), value(m.EVAL_OUT_SCORE, _labels(metrics))) == (0.7, 0.4)
    assert value(m.DATA_ROWS, _labels(metrics, domain="count", split="val")) == 10
    assert value(m.DATA_QUARANTINED_ROWS, _labels(metrics, domain="count")) == 3
    assert value(m.ROLLOUT_PASS_RATE, _labels(metrics, domain="count")) == 0.35
    assert value(m.ROLLOUT_ZERO_SIGNAL_PROMPTS, _labels(metrics, domain="count")) == 12
    assert value(m.MIXTURE_WEIGHT, _labels(metrics, domain="ref")) == 0.75
    assert value(m.MIXTURE_SURROGATE_R2, _labels(metrics, model="quadratic")) == 0.81
    assert value(m.MIXTURE_PREDICTED_SCORE, _labels(metrics)) == 0.66
    assert value(m.MIXTURE_SEARCH_TRIALS, _labels(metrics)) == 200
    with pytest.raises(ValueError, match=r"\['x'\] are listed both in and out"):
        metrics.record_eval({"x": 1.0}, {"x": 0.0})


def test_stage_timer_records_success_and_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PUSHGATEWAY_ENV, raising=False)
    ok, failing = StageMetrics("r", "ok"), StageMetrics("r", "failing")
    before = time.time()
    with ok.stage_timer():
        time.sleep(0.05)
    with pytest.raises(RuntimeError, match="boom"), failing.stage_timer():
        raise RuntimeError("boom")

    assert ok.registry.get_sample_value(m.STAGE_DURATION, _labels(ok)) >= 0.05
    assert before <= ok.registry.get_sample_value(m.STAGE_LAST_SUCCESS, _labels(ok)) <= time.time()
    assert ok.registry.get_sample_value(m.STAGE_FAILURES, _labels(ok)) == 0
    assert failing.registry.get_sample_value(m.STAGE_FAILURES, _labels(failing)) == 1
    assert failing.registry.get_sample_value(m.STAGE_LAST_SUCCESS, _labels(failing)) is None
    assert failing.registry.get_sample_value(m.STAGE_DURATION, _labels(failing)) is not None


def test_each_stage_has_its_own_registry() -> None:
    first, second = StageMetrics("r", "train"), StageMetrics("r", "train")
    first.record_train_step(0.1, 1, {}, {}, {})
    assert first.registry.get_sample_value(m.TRAIN_STEPS, _labels(first)) == 1
    assert second.registry.get_sample_value(m.TRAIN_STEPS, _labels(second)) is None


def test_mixture_label_is_short_and_stable() -> None:
    assert mixture_label({"ref": 0.25, "count": 0.75, "geo": 0.0}) == "count=0.75,ref=0.25"
    assert mixture_label({}) == ""


def test_stage_metrics_label_a_mixture_only_where_a_policy_was_trained_on_one() -> None:
    cfg = load_config("smoke", ["pushgateway=http://gateway:9091"])
    assert stage_metrics(cfg, "r", "curate").mixture == ""
    assert stage_metrics(cfg, "base", "evaluate").mixture == ""  # the SFT base: no mixture
    assert stage_metrics(cfg, "p1", "train", {"geo": 1.0, "ref": 0.0}).mixture == "geo=1.00"
    assert stage_metrics(cfg, "r", "curate").gateway == "http://gateway:9091"


@pytest.mark.parametrize("run, stage", [("", "train"), ("r", "")])
def test_run_and_stage_are_required(run: str, stage: str) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        StageMetrics(run, stage)


# Export ----------------------------------------------------------------------------------------


def test_push_reaches_prometheus(pushgateway: str, prometheus: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run_id()
    train = StageMetrics(run, "train", mixture="count=0.50,ref=0.50")
    train.record_train_step(0.2, 64, {"count": 1.25}, {"count": 0.5}, {"count": 2})
    train.record_train_step(0.2, 64, {"count": 1.5}, {"count": 0.75}, {"count": 2})
    evaluate = StageMetrics(run, "evaluate")
    evaluate.record_eval({"count-val": 0.8}, {"geo-test": 0.3}, 0.8, 0.3)

    curate = StageMetrics(run, "curate", gateway=pushgateway)  # the config's gateway, no environment
    curate.record_data({"count": {"train": 3}}, {"count": 1})

    monkeypatch.delenv(PUSHGATEWAY_ENV, raising=False)
    assert train.push(pushgateway, strict=True)
    assert curate.push(strict=True)
    monkeypatch.setenv(PUSHGATEWAY_ENV, pushgateway.removeprefix("http://"))  # host:port form
    assert evaluate.push(strict=True)

    steps = _wait_for_series(prometheus, f'{m.TRAIN_STEPS}{{run="{run}"}}')
    assert len(steps) == 1
    assert steps[0]["metric"] | {"instance": ""} == {
        "__name__": m.TRAIN_STEPS,
        "job": "modomodo",
        "run": run,
        "stage": "train",
        "mixture": "count=0.50,ref=0.50",
        "instance": "",
    }
    assert float(steps[0]["value"][1]) == 2
    reward = _wait_for_series(prometheus, f'{m.TRAIN_REWARD}{{run="{run}",domain="count"}}')
    assert float(reward[0]["value"][1]) == 1.5
    scores = _wait_for_series(prometheus, f'{m.EVAL_SCORE}{{run="{run}",stage="evaluate"}}')
    assert {s["metric"]["benchmark"]: (s["metric"]["split"], float(s["value"][1])) for s in scores} == {
        "count-val": ("in", 0.8),
        "geo-test": ("out", 0.3),
    }
    assert {"train", "evaluate", "curate"} <= {
        g.get("stage") for g in _pushgateway_groups(pushgateway) if g.get("run") == run
    }


def test_documented_queries_are_valid_promql(prometheus: str) -> None:
    block = re.search(r"```promql\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert block is not None
    queries = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    assert len(queries) >= 4
    for query in queries:
        _prometheus_query(prometheus, query)  # asserts status == success (a syntax error is a 400)


def test_push_without_a_gateway_does_nothing(pushgateway: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PUSHGATEWAY_ENV, raising=False)
    run = _run_id()
    metrics = StageMetrics(run, "train")
    metrics.record_train_step(0.1, 1, {}, {}, {})
    assert metrics.push(strict=True) is False
    with metrics.stage_timer():
        pass
    assert all(group.get("run") != run for group in _pushgateway_groups(pushgateway))


def test_push_to_a_dead_gateway_warns_but_never_raises(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    metrics = StageMetrics(_run_id(), "train", push_retry=FAST_RETRY, push_timeout=2)

    assert metrics.push(dead) is False
    assert any("not pushed" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert sum("retry" in r.getMessage() for r in caplog.records) == FAST_RETRY.attempts - 1

    monkeypatch.setenv(PUSHGATEWAY_ENV, dead)
    with metrics.stage_timer():  # the stage body's outcome is all that counts
        pass
    assert metrics.registry.get_sample_value(m.STAGE_FAILURES, _labels(metrics)) == 0

    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        metrics.push(dead, strict=True)


def test_metrics_are_served_over_http() -> None:
    metrics = StageMetrics(_run_id(), "rollout")
    metrics.record_pass_rates({"count": 0.4}, {"count": 2})
    server = metrics.serve(0, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()

    assert text == metrics.render()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    # The parser names counters without "_total".
    assert {spec.name.removesuffix("_total") for spec in METRICS} <= set(families)
    (pass_rate,) = families[m.ROLLOUT_PASS_RATE].samples
    assert (pass_rate.labels["domain"], pass_rate.value) == ("count", 0.4)
