"""The RL update's process setup (rendezvous, torchrun), its vLLM switch and its attempt log.

Fast checks; the training they set up runs in ``test_pod_entry.py`` and ``test_training.py``."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modomodo.components import runtime
from modomodo.config import ConfigError, load_config
from modomodo.metrics import STAGE_FAILURES, StageMetrics
from modomodo.rl.attempts import AttemptLog, attempts_key
from modomodo.rl.distributed import ensure_rendezvous_env, is_main_process, launch_command, train_processes
from modomodo.rl.grpo import grpo_args, require_vllm
from modomodo.store import ArtifactStore

# Rendezvous -------------------------------------------------------------------------------------


def test_a_plain_process_becomes_rank_0_of_1_on_a_free_local_port():
    env = {"PATH": "/usr/bin"}
    assert ensure_rendezvous_env(env) is True
    assert {k: env[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR")} == {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
    }
    with socket.socket() as sock:  # the port is free: rank 0 can listen on it
        sock.bind(("127.0.0.1", int(env["MASTER_PORT"])))


def test_a_chosen_master_port_is_kept():
    env = {"MASTER_PORT": "29577"}
    ensure_rendezvous_env(env)
    assert env["MASTER_PORT"] == "29577" and env["WORLD_SIZE"] == "1"


def test_a_launched_rank_keeps_its_environment():
    env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "node-0", "MASTER_PORT": "29500"}
    before = dict(env)
    assert ensure_rendezvous_env(env) is False
    assert env == before
    assert not is_main_process(env) and is_main_process({"RANK": "0"}) and is_main_process({})


@pytest.mark.parametrize(
    "env, missing",
    [
        ({"RANK": "0"}, "LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT"),
        ({"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"}, "MASTER_ADDR, MASTER_PORT"),
    ],
)
def test_a_half_set_environment_is_a_clear_error(env, missing):
    with pytest.raises(
        RuntimeError, match=f"incomplete torch.distributed environment: .* but {missing} missing"
    ):
        ensure_rendezvous_env(env)


def test_the_default_is_the_process_environment(monkeypatch):
    names = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    environ = {k: v for k, v in os.environ.items() if k not in names}
    monkeypatch.setattr(os, "environ", environ)  # leaves the real environment alone
    ensure_rendezvous_env()
    assert environ["WORLD_SIZE"] == "1" and environ["MASTER_PORT"].isdigit()


def test_one_process_per_gpu_runs_the_same_entry_point_through_torchrun():
    command = launch_command(4, ["train", "--out", "x"])
    assert command == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=4",
        "-m",
        "modomodo.cli",
        "train",
        "--out",
        "x",
    ]
    with pytest.raises(ValueError, match="at least 1"):
        launch_command(0, [])
    # The launcher module exists in this interpreter and accepts the flags.
    done = subprocess.run(command[:5] + ["--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--nproc-per-node" in done.stdout


def test_a_launched_rank_does_not_launch_again(monkeypatch, tmp_path):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="already rank 1 of a launched job"):
        train_processes(load_config("smoke"), tmp_path, tmp_path, tmp_path, run_id="r", processes=2)
    assert not (tmp_path / "config.yaml").exists()


# vLLM -------------------------------------------------------------------------------------------


def test_vllm_colocate_reaches_grpo_config(tmp_path):
    cfg = load_config(
        "smoke",
        ["train.vllm.enabled=true", "train.vllm.gpu_memory_utilization=0.5", "train.vllm.sleep_mode=true"],
    )
    args = grpo_args(cfg, tmp_path, steps=10)
    assert (args.use_vllm, args.vllm_mode) == (True, "colocate")
    assert args.vllm_gpu_memory_utilization == 0.5 and args.vllm_enable_sleep_mode is True
    assert grpo_args(load_config("smoke"), tmp_path, steps=10).use_vllm is False  # off by default


@pytest.mark.parametrize("value", ["0", "1.0", "1.5"])
def test_vllm_memory_fraction_is_checked_when_the_config_loads(value):
    with pytest.raises(ConfigError, match="train.vllm.gpu_memory_utilization"):
        load_config("smoke", [f"train.vllm.gpu_memory_utilization={value}"])


def test_vllm_on_without_vllm_is_a_config_error_at_train_time(monkeypatch):
    cfg = load_config("smoke", ["train.vllm.enabled=true"])  # loads (and compiles) anywhere
    monkeypatch.setitem(sys.modules, "vllm", None)  # an image without vLLM
    with pytest.raises(ConfigError, match=r"train.vllm.enabled: .*vllm cannot be imported.*WITH_VLLM=1"):
        require_vllm(cfg.train.vllm)
    require_vllm(load_config("smoke").train.vllm)  # off: nothing to import


# Attempts ---------------------------------------------------------------------------------------


def _failures(metrics: StageMetrics) -> float:
    (family,) = [
        f for f in text_string_to_metric_families(metrics.render()) if f.name + "_total" == STAGE_FAILURES
    ]
    (sample,) = [s for s in family.samples if s.name == STAGE_FAILURES]
    return sample.value


def test_a_killed_attempt_is_lost_and_counted_by_the_next(tmp_path):
    store_uri = (tmp_path / "store").as_uri()
    # A process that records its start and is then SIGKILLed, as the kernel kills an OOM pod.
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal; from modomodo.rl.attempts import AttemptLog; "
            "from modomodo.store import ArtifactStore\n"
            f"with AttemptLog(ArtifactStore.from_uri({store_uri!r}), 'run-1').track():\n"
            "    os.kill(os.getpid(), signal.SIGKILL)",
        ],
        timeout=60,
    )
    assert killed.returncode == -9
    store = ArtifactStore.from_uri(store_uri)
    log = AttemptLog(store, "run-1")
    assert [a["status"] for a in log.read()] == ["started"]

    # The retry finds it unfinished: one earlier failure; then it fails itself (an exception).
    with pytest.raises(RuntimeError, match="CUDA out of memory"), log.track() as earlier:
        assert earlier == 1
        raise RuntimeError("CUDA out of memory")
    assert [a["status"] for a in log.read()] == ["lost", "failed"]

    # A third attempt counts both, succeeds, and the counter continues from there.
    metrics = StageMetrics(run="run-1", stage="train")
    with AttemptLog(store, "run-1").track() as earlier:
        metrics.record_earlier_failures(earlier)
    assert earlier == 2 and _failures(metrics) == 2
    attempts = json.loads(store.get_bytes(attempts_key("run-1")))["attempts"]
    assert [a["status"] for a in attempts] == ["lost", "failed", "succeeded"]
    assert all(a["ended_at"] >= a["started_at"] for a in attempts[1:])


def test_the_first_attempt_finds_no_failures(tmp_path):
    store = ArtifactStore.from_uri(str(tmp_path))
    with AttemptLog(store, "fresh").track() as earlier:
        assert earlier == 0
    assert [a["status"] for a in AttemptLog(store, "fresh").read()] == ["succeeded"]


# One copy of a model ----------------------------------------------------------------------------


def test_a_model_artifact_refers_to_the_one_copy_in_the_store(tmp_path):
    model = tmp_path / "trained"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights" * 1000)
    (model / "run.json").write_text('{"run_id": "r"}\n')
    store = ArtifactStore.from_uri(str(tmp_path / "store"))
    artifact = SimpleNamespace(path=str(tmp_path / "pipeline-root" / "model"), metadata={})

    url = runtime.store_by_reference(
        store, model, "runs/r/model", {"run_id": "r"}, artifact, keep=("run.json",)
    )
    assert url == store.url_for("runs/r/model")
    assert store.read_manifest("runs/r/model").metadata == {"run_id": "r"}
    # The pipeline root holds the reference and the small files, not the weights.
    assert sorted(p.name for p in Path(artifact.path).iterdir()) == ["run.json", runtime.STORE_REFERENCE]

    # A step that reads the artifact gets a verified copy from the store...
    local = runtime.local_copy(artifact, tmp_path / "scratch")
    assert (local / "model.safetensors").read_bytes() == b"weights" * 1000
    # ... and an artifact with its own files (the base policy) is used as it is.
    assert runtime.local_copy(SimpleNamespace(path=str(model)), tmp_path / "scratch2") == model
    assert not (tmp_path / "scratch2").exists()


@pytest.mark.parametrize(
    ("child", "reason"),
    [
        # what the kernel's out-of-memory killer does to the training process
        (
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
            "killed by SIGKILL (the kernel's out-of-memory",
        ),
        # an exception in the child, written by failure_recorded for the parent
        (
            "import os; from modomodo.rl.distributed import failure_recorded\n"
            "with failure_recorded():\n    raise ValueError('weights went to NaN')",
            "failed: ValueError: weights went to NaN",
        ),
        ("raise SystemExit(3)", "exit code 3"),
    ],
)
def test_a_failed_training_child_is_reported_with_its_reason(tmp_path, monkeypatch, child, reason):
    import sys

    from modomodo.config import load_config
    from modomodo.rl import distributed

    monkeypatch.setattr(distributed, "launch_command", lambda processes, argv: [sys.executable, "-c", child])
    with pytest.raises(distributed.ChildFailed, match=re.escape(reason)):
        distributed.train_processes(
            load_config("smoke"), tmp_path, tmp_path, tmp_path / "out", run_id="r", processes=1
        )
    assert launch_command(1, ["train"])[1:] == ["-m", "modomodo.cli", "train"]  # one process: no torchrun
