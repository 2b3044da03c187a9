"""The proof that dashboards and alerts read real data: a tiny mixture-search pipeline (kfp's local
runner, as in ``test_pipelines_e2e.py``) pushes its metrics to a real Pushgateway that a real
Prometheus scrapes every second; then every query of every dashboard panel and every modomodo
selector of every alert rule is evaluated against that Prometheus.

What is asserted, exactly:

- a dashboard query that Grafana runs over the time range (``range``) returns at least one series
  with a sample in the window of the run (``/api/v1/query_range``, step 1 s); one that Grafana
  runs once (``instant``: tables, stats) returns at least one series at the end of the run, after
  the pipeline deleted its Pushgateway groups, with ``$__range`` set to the window;
- every alert expression evaluates without error, and every modomodo vector selector in it (the
  expression's inputs, without aggregation or threshold) returns data in the window. The OOM
  alert's kube-state-metrics selectors cannot have data here (no Kubernetes); promtool's unit
  tests cover that rule;
- the pipeline's end deleted its run groups from the Pushgateway: instant queries of its runs
  return nothing afterwards, while the ``run="latest"`` last successes remain.

Its own Pushgateway and Prometheus (not the session's), so no other test's series can answer a query.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import typer
import yaml
from promql import EXTERNAL_METRICS, grafana_to_promql, metric_names, selectors
from servers import MissingBinaryError, prometheus, pushgateway
from test_pipelines_e2e import TINY
from typer.testing import CliRunner

from modomodo import metrics as m
from modomodo.cli.pipelines import register

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "charts" / "modomodo" / "files" / "dashboards"
ALERTS = ROOT / "charts" / "modomodo" / "files" / "alerts.yaml"
SMALLER = ["search.trials=5"]
"""Overrides of the pipeline tests' tiny config: fewer search trials (nothing here needs 20)."""


def _get(prometheus_url: str, path: str, **params: object) -> dict:
    url = f"{prometheus_url}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            document = json.load(response)
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{params.get('query')}: {err.read().decode()}") from err
    assert document["status"] == "success", document
    return document["data"]


def instant(prometheus_url: str, promql: str, at: float) -> list[dict]:
    return _get(prometheus_url, "/api/v1/query", query=promql, time=at)["result"]


def over_range(prometheus_url: str, promql: str, start: float, end: float) -> list[dict]:
    return _get(prometheus_url, "/api/v1/query_range", query=promql, start=start, end=end, step=1)["result"]


def has_samples(result: list[dict]) -> bool:
    return any(series.get("values") or series.get("value") for series in result)


@pytest.fixture(scope="module")
def observed_run(s3_server, tmp_path_factory):
    """Run the tiny mixture search against a fresh Pushgateway + Prometheus; accept its final run
    (as the gate command does); return where and when."""
    work = tmp_path_factory.mktemp("observe")
    experiment = f"obs-{uuid.uuid4().hex[:8]}"
    try:
        with (
            pushgateway(work) as gateway,
            prometheus(work, gateway) as prom,
            pytest.MonkeyPatch.context() as patch,
        ):
            for key, value in {
                "AWS_ACCESS_KEY_ID": s3_server.access_key,
                "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
                "MODOMODO_S3_ENDPOINT": s3_server.endpoint,
                m.GRACE_ENV: "0",  # Prometheus scrapes every second here
            }.items():
                patch.setenv(key, value)
            app = typer.Typer()
            register(app)
            overrides = [arg for item in [*TINY, *SMALLER, f"name={experiment}"] for arg in ("--set", item)]
            start = time.time()
            output = work / "run"
            result = CliRunner().invoke(
                app,
                [
                    "run",
                    "--output",
                    str(output),
                    "--store",
                    f"s3://{s3_server.bucket}/{experiment}",
                    "--pushgateway",
                    gateway,
                    "--profile-prompts",
                    "2",
                    *overrides,
                ],
            )
            assert result.exit_code == 0, result.output[-5000:]
            report = json.loads((output / "report.json").read_text())
            chosen = report["summary"]["chosen"]
            m.push_accepted(chosen["run_id"], chosen["scores"], chosen["mixture"], gateway=gateway)
            time.sleep(3)  # a few scrapes (every second) after the last push and deletion
            end = time.time()
            yield {
                "prometheus": prom,
                "pushgateway": gateway,
                "experiment": experiment,
                "report": report,
                "start": start - 5,
                "end": end,
            }
    except MissingBinaryError as exc:
        pytest.fail(str(exc), pytrace=False)


def dashboard_targets() -> list[tuple[str, str, dict]]:
    return [
        (board["uid"], panel["title"], target)
        for path in sorted(DASHBOARDS.glob("*.json"))
        for board in [json.loads(path.read_text())]
        for panel in board["panels"]
        for target in panel["targets"]
    ]


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_every_dashboard_query_returns_data(observed_run):
    prom, start, end = observed_run["prometheus"], observed_run["start"], observed_run["end"]
    window = f"{int(end - start) + 1}s"
    empty = []
    targets = dashboard_targets()
    assert len(targets) >= 30
    for uid, title, target in targets:
        promql = grafana_to_promql(target["expr"], range_=window)
        if target["instant"]:
            result = instant(prom, promql, end)
        else:
            result = over_range(prom, promql, start, end)
        if not has_samples(result):
            empty.append(f"{uid} / {title} / {target['refId']}: {promql}")
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_every_alert_selector_returns_data_and_every_alert_evaluates(observed_run):
    prom, start, end = observed_run["prometheus"], observed_run["start"], observed_run["end"]
    empty, checked = [], 0
    for rule in alert_rules():
        instant(prom, rule["expr"], end)  # evaluates without error (the result may rightly be empty)
        names = metric_names(rule["expr"])
        if names <= EXTERNAL_METRICS:
            assert rule["alert"] == "ModomodoPodOOMKilled"  # the only rule on kube-state-metrics alone
            continue
        found = selectors(rule["expr"])
        assert {s.split("{")[0] for s in found} == names, rule["alert"]
        for selector in found:
            checked += 1
            if not has_samples(over_range(prom, selector, start, end)):
                empty.append(f"{rule['alert']}: {selector}")
    assert checked >= 10
    assert not empty, "alert selectors without data:\n" + "\n".join(empty)


def test_the_pipeline_end_deleted_its_groups_but_kept_the_last_successes(observed_run):
    prom, gateway, end = observed_run["prometheus"], observed_run["pushgateway"], observed_run["end"]
    ours = f'run=~"{observed_run["experiment"]}-.*"'
    groups = m.pushgateway_groups(gateway)
    assert not [g for g in groups if g.get("run", "").startswith(observed_run["experiment"])]
    latest = {g["stage"] for g in groups if g.get("run") == m.LATEST_RUN}
    assert latest >= {"curate", "warmstart", "rollout", "train", "evaluate", "surrogate", "search", "report"}
    assert [g for g in groups if g.get("stage") == "report"] and [
        g for g in groups if g.get("stage") == "accept"
    ]
    # Prometheus saw the runs while they lasted; now they are gone from its present.
    assert has_samples(over_range(prom, f"{m.TRAIN_STEPS}{{{ours}}}", observed_run["start"], end))
    assert instant(prom, f"{m.TRAIN_STEPS}{{{ours}}}", end) == []
    ages = instant(prom, f'time() - {m.STAGE_LAST_SUCCESS}{{run="{m.LATEST_RUN}"}}', end)
    assert {s["metric"]["stage"] for s in ages} == latest
    assert all(0 <= float(s["value"][1]) < end - observed_run["start"] for s in ages)


def test_predicted_and_realised_scores_of_the_chosen_mixture_agree_with_the_report(observed_run):
    prom, end = observed_run["prometheus"], observed_run["end"]
    (predicted,) = instant(prom, m.MIXTURE_FINAL_PREDICTED_SCORE, end)
    realised = {s["metric"]["score"]: float(s["value"][1]) for s in instant(prom, m.MIXTURE_FINAL_SCORE, end)}
    (accepted,) = instant(prom, f'{m.EVAL_ACCEPTED_SCORE}{{score="out_score"}}', end)
    report = observed_run["report"]
    chosen = report["summary"]["chosen"]
    assert predicted["metric"]["score"] == "out_score"
    assert float(predicted["value"][1]) == pytest.approx(report["proposals"][0]["mean"])
    assert realised == pytest.approx({k: v for k, v in chosen["scores"].items() if v is not None})
    assert predicted["metric"]["mixture"] == m.mixture_label(chosen["mixture"])
    assert float(accepted["value"][1]) == pytest.approx(realised["out_score"])
    assert accepted["metric"]["run"] == chosen["run_id"]
