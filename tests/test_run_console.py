"""What ``modomodo run`` prints: a line per task with its key figure on the console, kfp's local
runner's own output (executor input, step output, warnings) in ``<output>/run.log``; on failure
the log's tail and its path. The quiet successful run is asserted on the one-wave pipeline of
tests/test_pilot_failures.py (no second pipeline run for the CI suite); here the failed run."""

from __future__ import annotations

import logging
import warnings
from io import StringIO

import typer
from kfp import dsl
from test_pipelines_e2e import TINY
from typer.testing import CliRunner

from modomodo.cli.pipelines import register
from modomodo.pipelines.local_console import RUN_LOG, key_figure, log_tail, runner_output_to


def _artifact(kind, **metadata):
    artifact = kind(name="out", uri="file:///tmp/out")
    artifact.metadata.update(metadata)
    return artifact


def test_key_figures_come_from_the_task_outputs():
    run = {"run_id": "x-uniform-1234", "mixture": {"det": 0.5, "geo": 0.5, "sci": 0.0}, "kind": "pilot"}
    assert key_figure({"run": run, "model": _artifact(dsl.Model)}) == (
        "x-uniform-1234",
        "mixture det=0.50,geo=0.50",
    )
    evaluated = {
        "scores": {"out_score": 0.41234, "in_score": 0.3, "det_score": 0.2},
        "samples": _artifact(dsl.Dataset, run_id="x-uniform-1234"),
        "metrics": _artifact(dsl.Metrics),
    }
    assert key_figure(evaluated) == ("x-uniform-1234", "Out-Score 0.412  In-Score 0.300")
    fitted = {
        "quality": _artifact(dsl.Metrics, quadratic_r2=0.25, linear_r2=0.9),
        "surrogate": _artifact(dsl.Model, model="quadratic"),
        "records": _artifact(dsl.Dataset, runs=7.0),  # kfp's metadata numbers are floats
    }
    assert key_figure(fitted) == ("", "CV R² 0.250 (quadratic, 7 runs)")
    # a NaN R² is left out of the metrics artifact (runtime.log_metrics)
    fitted["quality"] = _artifact(dsl.Metrics, linear_r2=0.9)
    assert key_figure(fitted) == ("", "CV R² undefined (quadratic, 7 runs)")
    best = {"best": {"geo": 1.0}, "Output": [{}, {}], "proposals": _artifact(dsl.Dataset, mode="best")}
    assert key_figure(best) == ("", "chosen mixture geo=1.00")
    best["proposals"] = _artifact(dsl.Dataset, mode="explore")
    assert key_figure(best) == ("", "2 pilots proposed")
    assert key_figure({"Output": [{}, {}, {}]}) == ("", "3 pilots")
    failed = {**run, "failed": "PilotFailure: training diverged: loss nan\nTraceback ..."}
    assert key_figure({"run": failed}) == (
        "x-uniform-1234",
        "pilot failed, left out: PilotFailure: training diverged: loss nan",
    )
    assert key_figure({"record": failed}) == ("x-uniform-1234", "")
    assert key_figure({"data": _artifact(dsl.Dataset)}) == ("", "")


def test_the_runner_output_goes_to_the_log_and_with_echo_to_the_terminal_too(tmp_path):
    log, echo = tmp_path / "run.log", StringIO()
    with runner_output_to(log, echo):
        print("\x1b[96m'curate-data'\x1b[0m executor input {}")  # kfp colours its task names
        logging.getLogger("kfp.local").info("retrying")
        warnings.warn("settings have no effect", RuntimeWarning, stacklevel=1)
    print("after the run")
    text = log.read_text()
    assert "'curate-data' executor input {}" in text and "\x1b[" not in text
    assert "retrying" in text and "RuntimeWarning: settings have no effect" in text
    assert "after the run" not in text
    assert "'curate-data' executor input {}" in echo.getvalue() and "retrying" in echo.getvalue()
    assert log_tail(log, 1) == text.splitlines()[-1]


def test_a_failed_run_shows_its_task_line_the_log_tail_and_the_log_path(tmp_path):
    output = tmp_path / "run"
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # the artifact store would be a folder inside a file
    app = typer.Typer()
    register(app)
    overrides = [*TINY, "search.heuristics=[]", "search.rounds=0", "name=fails"]
    result = CliRunner().invoke(
        app,
        ["run", "--output", str(output), "--store", str(blocked / "store")]
        + [arg for item in overrides for arg in ("--set", item)],
    )
    assert result.exit_code == 1, result.output
    log = output / RUN_LOG
    text = log.read_text()
    # kfp's task log, the step's executor input and its own traceback are in the log ...
    assert "Executing task 'curate-data'" in text
    assert "Got executor_input:" in text and '"parameterValues"' in text
    assert "NotADirectoryError" in text
    lines = result.output.splitlines()
    # ... and on the console: the task's line, the error, the task's last lines (not the log's: tasks
    # that do not need curate-data ran after it), the log's path
    assert any(line.startswith("FAILED curate-data") for line in lines), result.output
    assert "pipeline failed: Pipeline 'mixture-search' finished with status FAILURE" in result.output
    assert "\x1b[" not in result.output and "parameterValues" not in result.output
    failed_task = result.output.split("last lines of curate-data:\n", 1)[1]
    assert "NotADirectoryError" in failed_task and "Skipping task" not in failed_task
    assert lines[-1].endswith(str(log)) and str(log) in lines[0]
    assert len(lines) < 60
