"""A pilot that fails does not take the search down: in kfp's local pipeline one pilot is killed as
the out-of-memory killer would, one loses its whole step as on a dead node (retried, then given
up), one diverges to NaN (fault injection, ``faults.FAULT_ENV``); each is recorded with its reason,
left out of the surrogate fit, and the search goes on to the chosen mixture. With fewer successes
than ``search.min_pilots`` the fit refuses with a message that names the failed pilots."""

from __future__ import annotations

import json

import pytest
import typer
from reliability import record_result
from test_pipelines_e2e import TINY
from typer.testing import CliRunner

from modomodo import stages
from modomodo.cli.pipelines import register
from modomodo.config import ExperimentConfig
from modomodo.metrics import mixture_label
from modomodo.mixture import pilots as plans
from modomodo.pipelines.local_console import RUN_LOG
from modomodo.stages import faults
from modomodo.stages.rl import check_finite_weights
from modomodo.stages.surrogate import TooFewPilotsError

DOMAINS = ["det", "geo", "sci"]
# run names of seed pilots (mixture/seeds.py): one killed as the out-of-memory killer would, one
# whose step dies with it (a dead node), one diverged to NaN (a pilot that raises is tested through
# the same path: the NaN check raises)
FAULTS = {"single-det": "kill", "single-geo": "lost", "exclude-sci": "nan"}


@pytest.mark.slow
def test_a_crashed_and_a_diverged_pilot_are_recorded_and_skipped(tmp_path):
    output = tmp_path / "run"
    # one wave: the e2e test's heuristic wave (Norm) needs every exclude-one run, and one fails here
    overrides = [*TINY, "search.seeds=[single, exclude_one, uniform]", "search.surrogate=quadratic"]
    overrides += ["search.heuristics=[]", "search.rounds=0"]
    overrides += ["search.min_pilots=3", "search.pilot_lost_attempts=1", "name=faults"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(faults.FAULT_ENV, json.dumps(FAULTS))  # the local runner's steps inherit it
        app = typer.Typer()
        register(app)
        result = CliRunner().invoke(
            app,
            ["run", "--output", str(output), "--profile-prompts", "2", "--retries"]
            + [arg for item in overrides for arg in ("--set", item)],
        )
    assert result.exit_code == 0, result.output[-5000:]
    document = json.loads((output / "report.json").read_text())
    trained = {p["run_id"].split("-", 1)[1].rsplit("-", 1)[0] for p in document["pilots"]}
    assert trained == {"single-sci", "exclude-det", "exclude-geo", "uniform"}
    failed = document["surrogate"]["failed"]
    by_name = {run.split("-", 1)[1].rsplit("-", 1)[0]: why for run, why in failed.items()}
    assert set(by_name) == set(FAULTS)
    assert "failed: killed by SIGKILL (the kernel's out-of-memory killer" in by_name["single-det"]
    # found by the NaN check in the child, and passed to the parent in words
    assert "failed: PilotFailure: training diverged: " in by_name["exclude-sci"]
    # the first attempt's step died with its training; the retry found it lost and gave up
    assert by_name["single-geo"].startswith(
        "PilotFailure: lost its pod 1 times (search.pilot_lost_attempts=1)"
    )
    assert document["surrogate"]["runs"] == 4
    assert set(document["summary"]["chosen"]["mixture"]) == set(DOMAINS)
    record_result(
        "pilot failures (local kfp pipeline)",
        cases=len(FAULTS) + 4,
        outcome=f"{len(failed)} injected failures recorded and skipped; search finished on 4 pilots",
        reasons=[f"{name}: {why[:160]}" for name, why in sorted(by_name.items())],
    )
    _the_console_shows_a_line_a_task_and_the_log_holds_the_rest(result.output, output, document)


TASKS = 4 + 7 + 4
"""Tasks of the one-wave run: curate, base policy and its evaluation (one step), its profile, the
seed planner;
one train-and-evaluate step (RL update, evaluation, run record) for each of the 7 pilots; fit,
search, the final run's train-and-evaluate, the report (a retried step is one task)."""


def _the_console_shows_a_line_a_task_and_the_log_holds_the_rest(cli: str, output, document) -> None:
    """``modomodo run`` prints a line per task with its key figure, then the result table; kfp's
    runner output (each step's executor input, the training logs, retries) is in run.log only."""
    lines = cli.splitlines()
    assert len(lines) < 60, cli
    assert "executor_input" not in cli and "parameterValues" not in cli and "Executing task" not in cli
    assert "Warning" not in cli and "\x1b[" not in cli
    tasks = [line.split() for line in lines if line.startswith(("done ", "FAILED "))]
    assert len(tasks) == TASKS and all(task[0] == "done" for task in tasks), cli
    by_task = {}
    for line in lines:
        if line.startswith("done "):
            by_task.setdefault(line.split()[1], []).append(line)
    # a pilot's line shows its Out-Score, a failed pilot's why it failed
    pilots = by_task["train-and-evaluate"]
    assert len(pilots) == 7 and sum("Out-Score " in line for line in pilots) == 4
    assert sum("pilot failed, left out: " in line for line in pilots) == 3
    assert "Out-Score " in by_task["train-and-evaluate-2"][0]  # the final run
    assert "CV R² " in by_task["fit-surrogate"][0] and "(quadratic, 4 runs)" in by_task["fit-surrogate"][0]
    chosen = mixture_label(document["summary"]["chosen"]["mixture"])
    assert by_task["search-mixture"][0].endswith(f"chosen mixture {chosen}")
    log = (output / RUN_LOG).read_text()
    assert str(output / RUN_LOG) in lines[0]
    assert log.count("Got executor_input:") >= TASKS and "Task 'report' finished with status SUCCESS" in log
    assert "Retrying in" in log  # the lost pilot's first attempt, from kfp's root logger
    assert "'train_runtime'" in log or "train_runtime" in log  # the Trainer's own log of each pilot


def _config(min_pilots: int) -> ExperimentConfig:
    from modomodo.cli.common import resolve_config

    return resolve_config("smoke", [*TINY, "search.surrogate=quadratic", f"search.min_pilots={min_pilots}"])


def _rows(n: int) -> list[dict]:
    one = {"det": 0.0, "geo": 0.0, "sci": 0.0}
    mixtures = [
        {**one, "det": 1.0},
        {**one, "geo": 1.0},
        {**one, "sci": 1.0},
        {**one, "det": 0.5, "geo": 0.5},
    ]
    rows = [
        plans.run_record(
            {"run_id": f"r{i}", "mixture": mixtures[i], "kind": "seed", "seed": 0, "steps": 2},
            {"out_score": 0.1 * i, "in_score": 0.2},
        )
        for i in range(n)
    ]
    return rows


def test_failed_rows_are_left_out_and_too_few_successes_refuse_the_fit(tmp_path):
    cfg = _config(min_pilots=3)
    boom = plans.failed_run("r9", cfg, "seed", RuntimeError("CUDA out of memory"), tmp_path / "model")
    assert json.loads((tmp_path / "model" / plans.FAILED_RUN_FILE).read_text())["failed"] == (
        "RuntimeError: CUDA out of memory"
    )
    rows = [*_rows(2), plans.run_record(boom, {})]
    table = plans.load_records(cfg, rows)
    assert table.run_ids == ["r0", "r1"]
    with pytest.raises(TooFewPilotsError, match=r"only 2 pilot runs succeeded.*min_pilots=3.*r9: Runtime"):
        stages.fit_surrogate_stage(cfg, table, tmp_path / "fit", run_id="t", failed=plans.failed_pilots(rows))
    assert not (tmp_path / "fit").exists()  # refused before writing anything
    rows = [*_rows(4), plans.run_record(boom, {})]
    summary = stages.fit_surrogate_stage(
        cfg, plans.load_records(cfg, rows), tmp_path / "fit", run_id="t", failed=plans.failed_pilots(rows)
    )
    assert summary["runs"] == 4 and summary["failed"] == {"r9": "RuntimeError: CUDA out of memory"}


def test_a_pilot_that_keeps_losing_its_pod_is_given_up_but_the_final_run_is_not(tmp_path):
    from modomodo.rl.attempts import AttemptLog
    from modomodo.store import LocalStore

    cfg = _config(min_pilots=2)  # search.pilot_lost_attempts: 2 by default
    store = LocalStore(tmp_path / "store")
    AttemptLog(store, "p1").begin()  # a pod that died without a word
    plans.give_up_on_lost_pilot(cfg, store, "p1", "seed")  # once: train again
    AttemptLog(store, "p1").begin()  # the retry, lost too
    with pytest.raises(plans.PilotFailure, match=r"lost its pod 2 times \(search.pilot_lost_attempts=2\)"):
        plans.give_up_on_lost_pilot(cfg, store, "p1", "seed")
    plans.give_up_on_lost_pilot(cfg, store, "p1", "model")  # the final run retries until KFP stops it
    with AttemptLog(store, "p2").track():
        pass
    with pytest.raises(RuntimeError), AttemptLog(store, "p2").track():
        raise RuntimeError("a raised failure is no lost pod")
    assert AttemptLog(store, "p2").lost() == 0


def test_a_failed_model_folder_is_not_evaluated(tmp_path):
    cfg = _config(min_pilots=2)
    plans.failed_run("r9", cfg, "seed", RuntimeError("killed"), tmp_path / "model")
    result = stages.evaluate_stage(cfg, tmp_path / "no-data", tmp_path / "model", tmp_path / "eval")
    assert result.scores == [] and plans.score_columns(result) == {}


def test_non_finite_weights_are_a_pilot_failure(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"a": torch.ones(3), "b": torch.tensor([1.0, float("nan")])}, tmp_path / "model.safetensors")
    with pytest.raises(plans.PilotFailure, match=r"1 NaN/inf values in b"):
        check_finite_weights(tmp_path)
    save_file({"a": torch.ones(3)}, tmp_path / "model.safetensors")
    check_finite_weights(tmp_path)


def test_fault_injection_is_off_unless_asked(monkeypatch):
    cfg = _config(min_pilots=2)
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)
    assert faults.injected_faults(cfg, f"{cfg.name}-uniform-abc") == []
    monkeypatch.setenv(faults.FAULT_ENV, json.dumps({"uniform": "crash", "single-det": "nan"}))
    with pytest.raises(RuntimeError, match="fault injection"):
        faults.injected_faults(cfg, f"{cfg.name}-uniform-abc")
    (poison,) = faults.injected_faults(cfg, f"{cfg.name}-single-det-abc")
    assert type(poison).__name__ == "PoisonWeights"
    monkeypatch.setenv(faults.FAULT_ENV, json.dumps({"single-det": "lost"}))
    (lose,) = faults.injected_faults(cfg, f"{cfg.name}-single-det-abc")
    assert type(lose).__name__ == "LoseTheNode"
    assert faults.injected_faults(cfg, f"{cfg.name}-single-geo-abc") == []
    assert not plans.pilot_may_fail("model") and plans.pilot_may_fail("seed")
