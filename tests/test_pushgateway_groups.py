"""Pushgateway group lifetime against a real Pushgateway: the run groups of an ended pipeline are
deleted, the last success of each stage and the accepted run stay; plus the new recorders."""

from __future__ import annotations

import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modomodo import metrics as m
from modomodo.metrics import StageMetrics, push_accepted, pushgateway_groups
from modomodo.retry import RetryPolicy

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


def _experiment() -> str:
    return f"exp{uuid.uuid4().hex[:8]}"


def _metrics(pushgateway: str, run: str, stage: str, mixture: str = "") -> StageMetrics:
    return StageMetrics(run, stage, mixture, gateway=pushgateway, push_retry=FAST_RETRY)


def _groups(pushgateway: str) -> set[tuple[tuple[str, str], ...]]:
    return {
        tuple(sorted((k, v) for k, v in g.items() if k != "job")) for g in pushgateway_groups(pushgateway)
    }


def _samples(pushgateway: str, name: str) -> list[tuple[dict[str, str], float]]:
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5) as response:
        text = response.read().decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _latest_success(pushgateway: str, stage: str) -> list[tuple[dict[str, str], float]]:
    return [
        (labels, value)
        for labels, value in _samples(pushgateway, m.STAGE_LAST_SUCCESS)
        if labels["run"] == m.LATEST_RUN and labels["stage"] == stage
    ]


def test_a_success_replaces_the_stage_latest_group_and_a_failure_leaves_it(pushgateway):
    stage = f"stage{uuid.uuid4().hex[:6]}"
    first = _metrics(pushgateway, "exp-a-1", stage, "a=1.00")
    with first.stage_timer():
        pass
    ((labels, when),) = _latest_success(pushgateway, stage)
    assert labels["mixture"] == "a=1.00"

    second = _metrics(pushgateway, "exp-a-2", stage, "b=1.00")
    with second.stage_timer():
        pass
    ((labels, later),) = _latest_success(pushgateway, stage)  # replaced, not accumulated
    assert labels["mixture"] == "b=1.00" and later >= when

    failing = _metrics(pushgateway, "exp-a-3", stage)
    with pytest.raises(RuntimeError), failing.stage_timer():
        raise RuntimeError("boom")
    assert _latest_success(pushgateway, stage) == [(labels, later)]
    failures = {
        labels["run"]: value
        for labels, value in _samples(pushgateway, m.STAGE_FAILURES)
        if labels["stage"] == stage
    }
    assert failures == {"exp-a-1": 0, "exp-a-2": 0, "exp-a-3": 1}


def test_the_end_of_a_pipeline_deletes_its_run_groups_and_earlier_reports_only(pushgateway):
    experiment, other = _experiment(), _experiment()
    for run, stage in [
        (f"{experiment}-data", "curate"),
        (f"{experiment}-pilot-0123", "train"),
        (f"{experiment}-pilot-0123", "evaluate"),
        (f"{experiment}-search-abcd", "search"),
        (f"{other}-pilot-4567", "train"),  # another experiment, still running
        ("earlier-pipeline-run", "report"),  # an earlier pipeline's report
    ]:
        with _metrics(pushgateway, run, stage).stage_timer():
            pass
    push_accepted(f"{other}-chosen-1", {"out_score": 0.4}, gateway=pushgateway)
    report = _metrics(pushgateway, f"pipeline-{experiment}", "report")
    with report.stage_timer():
        pass
    ours = {
        f"{experiment}-data",
        f"{experiment}-pilot-0123",
        f"{experiment}-search-abcd",
        "earlier-pipeline-run",
    }

    # Everything this test pushed is within the grace period and stays. The Pushgateway is the
    # session's: reports of earlier tests' pipelines, older than the grace period, may go already.
    early = report.end_pipeline(experiment)
    assert all(g["stage"] == "report" and g["run"] not in ours for g in early), early
    before = _groups(pushgateway)
    deleted = report.end_pipeline(experiment, grace_s=0)

    expected = {
        (("run", f"{experiment}-data"), ("stage", "curate")),
        (("run", f"{experiment}-pilot-0123"), ("stage", "evaluate")),
        (("run", f"{experiment}-pilot-0123"), ("stage", "train")),
        (("run", f"{experiment}-search-abcd"), ("stage", "search")),
        (("run", "earlier-pipeline-run"), ("stage", "report")),
    }
    got = {tuple(sorted((k, v) for k, v in g.items() if k != "job")) for g in deleted}
    assert expected <= got
    # The Pushgateway is the session's: earlier tests' pipelines left their reports, and those go too.
    assert all(dict(group)["stage"] == "report" for group in got - expected), got - expected
    after = _groups(pushgateway)
    assert after == before - got
    # What stays: the other experiment, this report, the accepted run, every stage's latest success.
    assert (("run", f"{other}-pilot-4567"), ("stage", "train")) in after
    assert (("run", f"pipeline-{experiment}"), ("stage", "report")) in after
    assert (("stage", m.ACCEPT_STAGE),) in after
    for stage in ("curate", "train", "evaluate", "search", "report"):
        assert (("run", m.LATEST_RUN), ("stage", stage)) in after
    assert report.end_pipeline(experiment, grace_s=0) == []  # nothing left to delete


def test_end_pipeline_without_a_gateway_or_experiment():
    assert StageMetrics("r", "report").end_pipeline("exp") == []
    with pytest.raises(ValueError, match="experiment"):
        StageMetrics("r", "report").end_pipeline("")


def test_end_pipeline_logs_an_unreachable_gateway_and_raises_when_strict(caplog):
    from servers import free_port

    metrics = StageMetrics("r", "report", gateway=f"127.0.0.1:{free_port()}", push_retry=FAST_RETRY)
    assert metrics.end_pipeline("exp") == []
    assert "not deleted" in caplog.text
    with pytest.raises(OSError):
        metrics.end_pipeline("exp", strict=True)


def test_push_accepted_keeps_exactly_the_last_accepted_run(pushgateway):
    push_accepted("exp-chosen-1", {"in_score": 0.6, "out_score": 0.4}, {"a": 1.0}, gateway=pushgateway)
    push_accepted("exp-chosen-2", {"out_score": 0.5}, {"a": 0.5, "b": 0.5}, gateway=pushgateway)
    accepted = _samples(pushgateway, m.EVAL_ACCEPTED_SCORE)
    assert accepted == [
        (
            {"job": "modomodo", "instance": "", "run": "exp-chosen-2", "stage": "accept"}
            | {"mixture": "a=0.50,b=0.50", "score": "out_score"},
            0.5,
        )
    ]
    with pytest.raises(ValueError, match="scores"):
        push_accepted("exp-chosen-3", {}, gateway=pushgateway)
    assert push_accepted("exp-chosen-3", {"out_score": 0.1}) is False  # no gateway configured


def test_push_accepted_raises_when_the_gateway_is_down():
    from servers import free_port

    with pytest.raises(OSError):
        push_accepted("r", {"out_score": 0.1}, gateway=f"127.0.0.1:{free_port()}")


def test_tokens_per_second_peak_memory_and_final_scores_are_recorded():
    metrics = StageMetrics("r", "train")
    metrics.record_train_step(0.5, 400, {}, {}, {}, steps=2, peak_memory={"cpu": 1234})
    metrics.record_train_step(0.0, 10, {}, {}, {}, steps=1)  # no step time: the rate keeps its value
    metrics.record_final({"out_score": 0.3, "in_score": 0.7}, {"out_score": 0.35})
    values = {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in m.BASE_LABELS))): s.value
        for family in text_string_to_metric_families(metrics.render())
        for s in family.samples
    }
    assert values[(m.TRAIN_TOKENS_PER_SECOND, ())] == 400
    assert values[(m.TRAIN_PEAK_MEMORY, (("device", "cpu"),))] == 1234
    assert values[(m.MIXTURE_FINAL_SCORE, (("score", "out_score"),))] == 0.3
    assert values[(m.MIXTURE_FINAL_SCORE, (("score", "in_score"),))] == 0.7
    assert values[(m.MIXTURE_FINAL_PREDICTED_SCORE, (("score", "out_score"),))] == 0.35


def test_peak_memory_on_cpu_is_the_process_rss():
    import resource

    peak = m.peak_memory()
    assert list(peak) == ["cpu"]
    assert 10 * 2**20 < peak["cpu"] <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_each_test_pushgateway_starts_empty(tmp_path):
    """Debian's Pushgateway persists to one machine-wide file by default; the test servers must
    not, or a new one starts with every group that an earlier one held."""
    from servers import pushgateway as start_pushgateway

    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with start_pushgateway(tmp_path / "first") as first:
        push_accepted("left-behind", {"out_score": 0.1}, gateway=first)
        assert pushgateway_groups(first)
    with start_pushgateway(tmp_path / "second") as second:
        assert pushgateway_groups(second) == []


@pytest.mark.gpu
def test_peak_memory_on_cuda_is_the_allocated_peak_per_device():
    import torch

    if not torch.cuda.is_available():
        pytest.fail("needs a CUDA GPU (deselect with -m 'not gpu')", pytrace=False)
    block = torch.ones(64, 1024, 1024, device="cuda")  # 256 MiB
    peak = m.peak_memory()
    assert set(peak) == {f"cuda:{i}" for i in range(torch.cuda.device_count())}
    assert peak["cuda:0"] >= block.numel() * block.element_size()


def test_the_grace_period_comes_from_the_environment(pushgateway, monkeypatch):
    experiment = _experiment()
    with _metrics(pushgateway, f"{experiment}-pilot", "train").stage_timer():
        pass
    report = _metrics(pushgateway, f"pipeline-{experiment}", "report")
    monkeypatch.setenv(m.GRACE_ENV, "3600")
    assert report.end_pipeline(experiment) == []
    monkeypatch.setenv(m.GRACE_ENV, "0")
    deleted = [g["run"] for g in report.end_pipeline(experiment)]  # and earlier tests' reports
    assert f"{experiment}-pilot" in deleted
