"""The retrain gate (``modomodo.acceptance`` and the ``accepted``/``gate`` commands): real reports
built by ``report_page.build_report``, published the way the ``report`` step publishes them, in a
local store and in SeaweedFS."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from modomodo.acceptance import (
    GateError,
    RunResult,
    accepted_key,
    accepted_mixture,
    gate,
    judge,
    promote,
    read_accepted,
    result_from_report,
)
from modomodo.cli.retrain import register
from modomodo.report import Contender, ReportData, compare
from modomodo.report_page import build_report
from modomodo.store import ArtifactNotFoundError, ArtifactStore, LocalStore, S3Store


def publish_report(
    store: ArtifactStore,
    run: str,
    out_score: float,
    *,
    mixture: dict | None = None,
    experiment: str = "smoke",
    tmp: Path,
) -> None:
    """What the ``report`` step leaves in the store for a finished ``train`` run."""
    trained = Contender(
        "trained",
        f"{experiment}-train-x",
        mixture or {"det": 0.5, "sci": 0.5},
        {"in_score": 0.6, "out_score": out_score},
    )
    data = ReportData(
        experiment=experiment,
        target="out_score",
        domains=("det", "sci"),
        splits={},
        contenders=compare("out_score", {"in_score": 0.2, "out_score": 0.1}, trained),
    )
    folder = tmp / run
    build_report(data, folder)
    store.put_dir(folder, f"reports/{run}", {"experiment": experiment})


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path) -> ArtifactStore:
    if request.param == "file":
        return LocalStore(tmp_path / "store")
    server = request.getfixturevalue("s3_server")
    return S3Store(
        server.bucket,
        f"gate/{uuid.uuid4().hex}",
        endpoint_url=server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
    )


def candidate(out_score: float, run: str = "r2", experiment: str = "smoke") -> RunResult:
    return RunResult(experiment=experiment, run=run, mixture={"det": 0.7, "sci": 0.3}, out_score=out_score)


def test_judge_passes_within_the_tolerance_and_fails_beyond_it():
    accepted = candidate(0.50, run="r1")
    assert judge(candidate(0.55), accepted, 0.0).passed
    assert judge(candidate(0.50), accepted, 0.0).passed  # equal is no regression
    assert judge(candidate(0.48), accepted, 0.02).passed
    regressed = judge(candidate(0.47), accepted, 0.02)
    assert not regressed.passed
    assert regressed.delta == pytest.approx(-0.03)
    assert "REGRESSION" in regressed.message and "r1" in regressed.message and "-0.0300" in regressed.message


def test_the_first_run_of_an_experiment_passes():
    verdict = judge(candidate(0.01), None, 0.0)
    assert verdict.passed and verdict.delta is None and "no accepted run yet" in verdict.message


def test_judge_refuses_a_bad_tolerance_and_another_experiments_record():
    with pytest.raises(GateError, match="tolerance"):
        judge(candidate(0.5), None, -0.1)
    with pytest.raises(GateError, match="tolerance"):
        judge(candidate(0.5), None, float("nan"))
    with pytest.raises(GateError, match="'paper'"):
        judge(candidate(0.5), candidate(0.5, experiment="paper"), 0.0)


def test_result_from_report_reads_the_trained_run_and_refuses_what_it_cannot_judge(tmp_path):
    store = LocalStore(tmp_path / "store")
    publish_report(store, "run-1", 0.42, mixture={"det": 0.25, "sci": 0.75}, tmp=tmp_path)
    document = json.loads((tmp_path / "run-1" / "report.json").read_text())
    result = result_from_report(document, "run-1")
    assert (result.experiment, result.run, result.out_score, result.in_score) == ("smoke", "run-1", 0.42, 0.6)
    assert result.mixture == {"det": 0.25, "sci": 0.75}

    no_out = json.loads(json.dumps(document))
    del no_out["summary"]["chosen"]["scores"]["out_score"]
    with pytest.raises(GateError, match="no out_score"):
        result_from_report(no_out, "run-1")
    document["summary"]["chosen"]["scores"]["out_score"] = None  # NaN scores are written as null
    with pytest.raises(GateError, match="not a number"):
        result_from_report(document, "run-1")
    with pytest.raises(GateError, match="not a modomodo report"):
        result_from_report({"something": "else"}, "run-1")


def test_gate_promotes_a_passing_run_keeps_history_and_refuses_a_regression(store, tmp_path):
    assert read_accepted(store, "smoke") is None and accepted_mixture(store, "smoke") == {}
    publish_report(store, "run-1", 0.40, mixture={"det": 0.5, "sci": 0.5}, tmp=tmp_path)
    first = gate(store, "run-1", 0.0)
    assert first.passed and first.accepted is None
    accepted = read_accepted(store, "smoke")
    assert (accepted.run, accepted.out_score, accepted.mixture) == ("run-1", 0.40, {"det": 0.5, "sci": 0.5})
    assert accepted.accepted_at and accepted.extra["report"] == store.url_for("reports/run-1")

    publish_report(store, "run-2", 0.45, mixture={"det": 0.8, "sci": 0.2}, tmp=tmp_path)
    assert gate(store, "run-2", 0.0).passed
    assert accepted_mixture(store, "smoke") == {"det": 0.8, "sci": 0.2}

    publish_report(store, "run-3", 0.30, mixture={"det": 0.1, "sci": 0.9}, tmp=tmp_path)
    regressed = gate(store, "run-3", 0.05)
    assert not regressed.passed and regressed.accepted.run == "run-2"
    assert read_accepted(store, "smoke").run == "run-2"  # a regression is not promoted

    publish_report(store, "run-4", 0.50, tmp=tmp_path)
    assert gate(store, "run-4", 0.0, promote_passed=False).passed
    assert read_accepted(store, "smoke").run == "run-2"

    # both promotions are kept, not only the latest
    history = [key for key in _object_keys(store) if key.startswith("accepted/smoke/")]
    assert len(history) == 2 and history[0].endswith("-run-1.json") and history[1].endswith("-run-2.json")


def _object_keys(store: ArtifactStore) -> list[str]:
    return sorted(store._names("accepted/"))


def test_gate_on_a_run_without_a_report_names_the_missing_key(store):
    with pytest.raises(ArtifactNotFoundError, match="no report of run 'ghost'.*reports/ghost"):
        gate(store, "ghost", 0.0)


def test_a_damaged_accepted_record_is_an_error_not_a_first_run(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.put_bytes(accepted_key("smoke"), b"{not json")
    with pytest.raises(GateError, match="not JSON"):
        read_accepted(store, "smoke")
    store.put_bytes(accepted_key("smoke"), json.dumps({"run": "x"}).encode())
    with pytest.raises(GateError, match="not an accepted-run record"):
        read_accepted(store, "smoke")


def test_promote_records_when(tmp_path):
    store = LocalStore(tmp_path / "store")
    when = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    record = promote(store, candidate(0.5), now=when)
    assert record.accepted_at == "2026-11-29T06:00:00+00:00"
    assert store.get_bytes("accepted/smoke/20261129T060000Z-r2.json") == store.get_bytes(
        accepted_key("smoke")
    )


def cli(*args: str):
    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, list(args))


def test_gate_and_accepted_commands(tmp_path):
    uri = (tmp_path / "store").as_uri()
    store = ArtifactStore.from_uri(uri)
    none_yet = cli("accepted", "--store-uri", uri, "--preset", "smoke")
    assert none_yet.exit_code == 0 and none_yet.stdout.strip() == "{}"

    publish_report(store, "run-1", 0.40, mixture={"det": 0.25, "sci": 0.75}, tmp=tmp_path)
    first = cli("gate", "--store-uri", uri, "--run", "run-1")
    assert first.exit_code == 0, first.output
    assert "run-1 is now the accepted run" in first.stderr
    mixture = cli("accepted", "--store-uri", uri, "--preset", "smoke")
    assert json.loads(mixture.stdout) == {"det": 0.25, "sci": 0.75}

    publish_report(store, "run-2", 0.37, tmp=tmp_path)
    regressed = cli("gate", "--store-uri", uri, "--run", "run-2", "--tolerance", "0.01")
    assert regressed.exit_code == 1 and "REGRESSION" in regressed.stderr
    tolerated = cli("gate", "--store-uri", uri, "--run", "run-2", "--tolerance", "0.05", "--no-promote")
    assert tolerated.exit_code == 0 and "now the accepted run" not in tolerated.stderr
    assert read_accepted(store, "smoke").run == "run-1"

    missing = cli("gate", "--store-uri", uri, "--run", "nope")
    assert missing.exit_code == 2 and "reports/nope" in missing.stderr
    negative = cli("gate", "--store-uri", uri, "--run", "run-2", "--tolerance", "-1")
    assert negative.exit_code == 2


def test_a_promoted_run_becomes_the_regression_alerts_baseline_in_the_pushgateway(tmp_path, pushgateway):
    from test_pushgateway_groups import _samples

    uri = (tmp_path / "store").as_uri()
    store = ArtifactStore.from_uri(uri)
    publish_report(store, "run-7", 0.42, tmp=tmp_path)
    passed = cli("gate", "--store-uri", uri, "--run", "run-7", "--pushgateway", pushgateway)
    assert passed.exit_code == 0, passed.output
    accepted = {
        labels["score"]: value for labels, value in _samples(pushgateway, "modomodo_eval_accepted_score")
    }
    assert accepted["out_score"] == pytest.approx(0.42)
    # a regression is not promoted, so the baseline stays
    publish_report(store, "run-8", 0.30, tmp=tmp_path)
    regressed = cli("gate", "--store-uri", uri, "--run", "run-8", "--pushgateway", pushgateway)
    assert regressed.exit_code == 1
    accepted = {
        labels["score"]: value for labels, value in _samples(pushgateway, "modomodo_eval_accepted_score")
    }
    assert accepted["out_score"] == pytest.approx(0.42)
    # an unreachable Pushgateway does not fail a passing gate: the store holds the promotion
    publish_report(store, "run-9", 0.50, tmp=tmp_path)
    offline = cli("gate", "--store-uri", uri, "--run", "run-9", "--pushgateway", "http://127.0.0.1:9")
    assert offline.exit_code == 0 and "could not push the accepted scores" in offline.stderr
    assert read_accepted(store, "smoke").run == "run-9"
