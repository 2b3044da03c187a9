"""Crash and resume at many points: ``modomodo train`` SIGKILLed at seeded random steps (and at a
random moment inside the step after), then resumed. The resumed run ends with the weights, the
optimizer state and the learning-rate schedule of a run never interrupted, and its logged steps
run 1..N with no gap and no duplicate, each with the reference run's loss.

A mixture search killed mid-way and restarted on the same Optuna storage loses and repeats no trial.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from reliability import record_result
from safetensors.torch import load_file
from test_pipelines_e2e import TINY

from modomodo import stages
from modomodo.config import load_config
from modomodo.rl.grpo import checkpoint_key
from modomodo.store import ArtifactStore

STEPS = 10
RUN_ID = "fault-resume"
TRAIN = [*TINY, f"train.steps={STEPS}", "train.checkpoint_every=1", "train.prompts_per_step=2"]
# Seeded: the same cases every run. The last two steps are never a kill point: a checkpoint becomes
# visible in the store only once uploaded, and on a loaded machine the run could end before the kill.
KILL_STEPS = sorted(random.Random(13).sample(range(1, STEPS - 2), 5))
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    cfg = load_config("smoke", TRAIN)
    root = tmp_path_factory.mktemp("fault-resume")
    data = root / "data"
    stages.curate_stage(cfg, data)
    return data, stages.base_policy_stage(cfg, data, root / "base")


def _train(inputs, out: Path, store: str, *extra: str) -> list[str]:
    data, base = inputs
    sets = [arg for item in [*TRAIN, f"store={store}"] for arg in ("--set", item)]
    return [sys.executable, "-m", "modomodo.cli", "train", "--data", str(data), "--base", str(base),
            "--out", str(out), "--run-id", RUN_ID, *sets, *extra]  # fmt: skip


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:
    """One uninterrupted run, shared by every kill point."""
    out = tmp_path_factory.mktemp("reference") / "rl"
    store = (out.parent / "store").as_uri()
    done = subprocess.run(_train(inputs, out, store), env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _optimizer(run: Path) -> dict:
    return torch.load(run / "trainer" / f"checkpoint-{STEPS}" / "optimizer.pt", weights_only=True)


def _flatten(value, prefix=""):
    """(path, leaf) pairs of a nested state dict, tensors and numbers alike."""
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            yield from _flatten(value[key], f"{prefix}/{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}/{i}")
    else:
        yield prefix, value


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    return a == b


def _logged(run: Path) -> list[dict]:
    summary = json.loads((run / "train_summary.json").read_text())
    return [h for h in summary["log_history"] if "loss" in h]


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", KILL_STEPS)
def test_sigkill_at_a_random_step_resumes_to_the_uninterrupted_run(inputs, reference, tmp_path, kill_after):
    rng = random.Random(kill_after)
    store_uri = (tmp_path / "store").as_uri()
    store = ArtifactStore.from_uri(store_uri)
    out = tmp_path / "rl"
    proc = subprocess.Popen(_train(inputs, out, store_uri), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline, previous_at = time.monotonic() + 600, None
    while not store.exists(checkpoint_key(RUN_ID, kill_after)):
        assert proc.poll() is None, f"training ended before step {kill_after}"
        assert time.monotonic() < deadline, f"no checkpoint {kill_after} within 10 minutes"
        if previous_at is None and store.exists(checkpoint_key(RUN_ID, kill_after - 1)):
            previous_at = time.monotonic()
        time.sleep(0.05)
    # Somewhere inside the next step or its save: a fraction of one step's time (capped for step 1,
    # whose wait includes the start), so that the kill lands before the run ends however fast it is.
    step_s = time.monotonic() - previous_at if previous_at is not None else 0.3
    time.sleep(rng.uniform(0, 0.8) * step_s)
    assert proc.poll() is None, "the run ended before the kill"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (out / "train_summary.json").exists(), "the run finished before the kill"
    wiped = kill_after % 2 == 1
    if wiped:  # a rescheduled pod: a fresh disk, only the store survives
        shutil.rmtree(out)

    done = subprocess.run(_train(inputs, out, store_uri, "--resume"), env=ENV,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from_step"] >= kill_after and summary["steps"] == STEPS

    logged, expected = _logged(out), _logged(reference)
    assert [h["step"] for h in logged] == list(range(1, STEPS + 1)), "a gap or a repeated step"
    assert [h["loss"] for h in logged] == pytest.approx([h["loss"] for h in expected], abs=1e-6)

    resumed, whole = (load_file(run / "model" / "model.safetensors") for run in (out, reference))
    differing = [name for name in whole if not torch.equal(resumed[name], whole[name])]
    assert not differing, f"weights differ from the uninterrupted run's in {differing[:5]}"
    opt_resumed, opt_whole = dict(_flatten(_optimizer(out))), dict(_flatten(_optimizer(reference)))
    assert opt_resumed.keys() == opt_whole.keys()
    differing = [key for key in opt_whole if not _same(opt_resumed[key], opt_whole[key])]
    assert not differing, f"optimizer state differs in {differing[:5]}"
    sched = [json.loads(json.dumps(torch.load(r / "trainer" / f"checkpoint-{STEPS}" / "scheduler.pt",
                                              weights_only=True), default=str)) for r in (out, reference)]  # fmt: skip
    assert sched[0] == sched[1]
    record_result(
        "SIGKILL `modomodo train` and resume",
        cases=1,
        outcome="weights, optimizer and scheduler state equal the uninterrupted run's; steps 1..N once each",
        kill_after_step=kill_after,
        fresh_disk=wiped,
    )


SEARCH_TRIALS = 120


def _search(table: Path, storage: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "modomodo.cli", "mixture", "propose", "--runs", str(table),
            "--storage", str(storage), "--study-name", "killed", "--trials", str(SEARCH_TRIALS),
            "--bootstrap", "0", "--k", "2", "--json", str(out)]  # fmt: skip


@pytest.mark.slow  # two CLI processes: about 1.5 min on a loaded 2-core machine
def test_a_killed_search_restarted_on_its_storage_loses_and_repeats_no_trial(tmp_path):
    import numpy as np
    import optuna

    from modomodo.mixture.records import RunRecords, make_run_record

    rng = np.random.default_rng(5)
    domains = ["a", "b", "c"]
    rows = [
        make_run_record(
            f"r{i}", dict(zip(domains, w, strict=True)), {"out_score": float(w @ [0.2, 0.5, 0.3])}
        )
        for i, w in enumerate(rng.dirichlet(np.ones(3), size=8))
    ]
    table = RunRecords.from_rows(rows, domains).write(tmp_path / "runs.csv")
    storage, url = tmp_path / "study.db", f"sqlite:///{tmp_path / 'study.db'}"
    kill_at = random.Random(7).randint(20, 80)  # completed trials when the kill lands

    def complete() -> list:
        try:
            study = optuna.load_study(study_name="killed", storage=url)
        except (KeyError, Exception):  # the study (or its tables) not created yet
            return []
        return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))

    proc = subprocess.Popen(_search(table, storage, tmp_path / "first.json"), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 300
    while len(complete()) < kill_at:
        assert proc.poll() is None, f"the search ended before {kill_at} trials: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "the search is too slow to be killed mid-way"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    before = len(complete())
    assert before < 8 + SEARCH_TRIALS, "killed too late: the search had finished"

    done = subprocess.run(_search(table, storage, tmp_path / "second.json"), env=ENV,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    trials = complete()
    assert len(trials) == 8 + SEARCH_TRIALS, "trials lost or run twice"
    assert len({t.number for t in trials}) == len(trials)
    observed = [t for t in trials if t.user_attrs.get("source") == "observed"]
    assert len(observed) == 8, "an observed mixture was lost or enqueued twice"
    proposals = json.loads((tmp_path / "second.json").read_text())["proposals"]
    assert len(proposals) == 2
    study = optuna.load_study(study_name="killed", storage=url)
    zombies = [t.number for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    record_result(
        "SIGKILL `modomodo mixture propose` (SQLite Optuna storage) and rerun",
        cases=1,
        outcome=f"{len(trials)} complete trials, none lost or repeated; "
        f"{len(zombies)} trial(s) left RUNNING by the kill (not counted)",
        completed_before_kill=before,
    )
