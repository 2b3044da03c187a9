"""The RL update as a pod runs it, on CPU with DeepSpeed ZeRO-2.

``test_the_compiled_rl_update_runs_as_a_pod_and_a_killed_attempt_counts_as_a_failure`` runs the
command line that the compiled IR gives the ``train-and-evaluate`` container (the pipelines' RL
update, which then evaluates the model in its training process), with the IR's environment and
nothing else (no ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...: what a pod has), against an
executor input such as KFP's launcher writes. Its first attempt is SIGKILLed the way the kernel
kills an OOM pod; the retry trains, evaluates, and counts the lost attempt as a stage failure.
``test_several_processes_train_as_ranks_of_one_job`` trains as 2 ranks over gloo through torchrun,
the path of a pod with 2 GPUs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from servers import free_port

from modomodo import stages
from modomodo.components.runtime import STORE_REFERENCE
from modomodo.config import load_config
from modomodo.metrics import STAGE_FAILURES
from modomodo.pipelines import compile_pipeline
from modomodo.pipelines.settings import ClusterSettings
from modomodo.rl.attempts import attempts_key
from modomodo.rl.distributed import ADDRESS_VARS, RANK_VARS
from modomodo.store import ArtifactStore

pytestmark = pytest.mark.slow

TINY = [
    "data.domains={geo: {n_train: 16, rewards: [{name: format}, {name: accuracy, weight: 2}]},"
    " sci: {n_train: 16, rewards: [{name: format}, {name: accuracy, weight: 2}]}}",
    "data.benchmark_scale=0.02",
    "policy.hidden_size=64",
    "policy.num_layers=1",
    "policy.vision_depth=1",
    "sft.steps=2",
    "sft.batch_size=8",
    "train.steps=2",
    "train.prompts_per_step=1",
    "train.num_generations=2",
    "train.max_completion_length=8",
    "train.checkpoint_every=2",
    "train.deepspeed=zero2",
]
# DeepSpeed JIT-compiles a helper on first use (about 26 s); the tests share the cache.
TORCH_EXTENSIONS_DIR = str(Path.home() / ".cache" / "modomodo-torch-extensions")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple:
    cfg = load_config("smoke", TINY)
    root = tmp_path_factory.mktemp("pod")
    stages.curate_stage(cfg, root / "data")
    base = stages.base_policy_stage(cfg, root / "data", root / "base")
    return cfg, root / "data", base


def pod_environment(ir_env: list[dict]) -> dict[str, str]:
    """A container's environment: the IR's variables, the image's PATH and HOME, and the offline
    switches of this test machine; no rendezvous variables."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": os.environ["HOME"],
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TORCH_EXTENSIONS_DIR": TORCH_EXTENSIONS_DIR,
        **{e["name"]: e["value"] for e in ir_env},
    }
    assert not set(env) & {*RANK_VARS, *ADDRESS_VARS}
    return env


def executor_input(parameters: dict, inputs: dict[str, tuple[str, Path]], outputs: Path) -> dict:
    """What KFP's launcher hands the executor: parameter values, input artifacts (type, local
    path), the output artifacts of ``train-and-evaluate`` and where the outputs go."""

    def artifact(name: str, schema: str, uri: Path) -> dict:
        artifact = {"name": name, "type": {"schemaTitle": schema}, "uri": str(uri), "metadata": {}}
        return {"artifacts": [artifact]}

    return {
        "inputs": {
            "parameterValues": parameters,
            "artifacts": {name: artifact(name, schema, path) for name, (schema, path) in inputs.items()},
        },
        "outputs": {
            "artifacts": {
                "model": artifact("model", "system.Model", outputs / "model"),
                "metrics": artifact("metrics", "system.Metrics", outputs / "metrics"),
                "samples": artifact("samples", "system.Dataset", outputs / "samples"),
            },
            # values go to outputFile
            "parameters": {name: {"outputFile": str(outputs / name)} for name in ("run", "scores", "record")},
            "outputFile": str(outputs / "executor_output.json"),
        },
    }


def pushed_failures(pushgateway: str, run_id: str) -> float | None:
    text = urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5).read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == STAGE_FAILURES
                and labels.get("run") == run_id
                and labels.get("stage") == "train"
            ):
                return sample.value
    return None


def test_the_compiled_rl_update_runs_as_a_pod_and_a_killed_attempt_counts_as_a_failure(
    inputs, tmp_path, pushgateway
):
    cfg, data, base = inputs
    cluster = ClusterSettings(gpus=0, threads=2, metrics_port=free_port())
    spec, _ = yaml.safe_load_all(compile_pipeline("train", cfg, tmp_path / "train.yaml", cluster).read_text())
    container = spec["deploymentSpec"]["executors"]["exec-train-and-evaluate"]["container"]
    store_uri = (tmp_path / "store").as_uri()
    store = ArtifactStore.from_uri(store_uri)
    parameters = {
        "config": cfg.to_dict(),
        "mixture": {},
        "run_name": "pod",
        "kind": "seed",
        "store_uri": store_uri,
        "pushgateway": pushgateway,
        "gpus": 0,
        "replicate": 0,
    }
    artifacts = {"data": ("system.Dataset", data), "base_model": ("system.Model", base)}

    def attempt(n: int) -> subprocess.Popen:
        outputs = tmp_path / f"attempt-{n}"
        text = json.dumps(executor_input(parameters, artifacts, outputs))
        command = container["command"] + [text if arg == "{{$}}" else arg for arg in container["args"]]
        return subprocess.Popen(
            command,
            env=pod_environment(container["env"]),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    # Attempt 1 dies the way an OOM-killed or evicted pod does: SIGKILL, no code runs after it.
    first = attempt(1)
    deadline = time.monotonic() + 300
    started = []
    while not started and time.monotonic() < deadline and first.poll() is None:
        started = [p for p in (tmp_path / "store" / "runs").glob("*/attempts.json")]
        time.sleep(0.2)
    assert started, f"attempt 1 never recorded its start:\n{first.communicate()[0][-3000:]}"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    run_id = started[0].parent.name
    (killed,) = json.loads(started[0].read_text())["attempts"]
    assert killed["status"] == "started"

    # Attempt 2, KFP's retry: the same command line and inputs.
    second = attempt(2)
    output = second.communicate(timeout=900)[0]
    assert second.returncode == 0, output[-5000:]

    # The lost attempt is counted as a failure of the train stage, and pushed.
    assert [a["status"] for a in json.loads(started[0].read_text())["attempts"]] == ["lost", "succeeded"]
    assert pushed_failures(pushgateway, run_id) == 1

    # The step's outputs, as KFP would collect them.
    outputs = tmp_path / "attempt-2"
    executor_output = json.loads((outputs / "executor_output.json").read_text())
    run = executor_output["parameterValues"]["run"]
    assert run["run_id"] == run_id and run["steps"] == 2
    # DeepSpeed ZeRO-2 trained: the engine's checkpoint holds its partitioned optimizer states.
    checkpoint = tmp_path / "store" / "runs" / run_id / "checkpoints" / "step-00000002"
    assert sorted(checkpoint.glob("global_step2/*optim_states.pt")), f"no ZeRO states in {checkpoint}"
    # One copy of the model: in the store; the output artifact only refers to it.
    model_key = f"runs/{run_id}/model"
    assert "model.safetensors" in {f.path for f in store.read_manifest(model_key).files}
    artifact = outputs / "model"
    assert not (artifact / "model.safetensors").exists()
    reference = json.loads((artifact / STORE_REFERENCE).read_text())
    assert reference == {"store": store.uri, "key": model_key, "url": store.url_for(model_key)}
    assert json.loads((artifact / "run.json").read_text()) == run
    (metadata,) = [a["metadata"] for a in executor_output["artifacts"]["model"]["artifacts"]]
    assert metadata["store_url"] == store.url_for(model_key) and metadata["run_id"] == run_id
    # The training process evaluated the model it trained: scores, samples, the run record.
    scores = executor_output["parameterValues"]["scores"]
    assert 0.0 <= scores["out_score"] <= 1.0
    assert (outputs / "samples" / "samples.jsonl").read_text().count("\n") > 0
    record = executor_output["parameterValues"]["record"]
    assert record["run_id"] == run_id and record["out_score"] == scores["out_score"]
    (metrics,) = [a["metadata"] for a in executor_output["artifacts"]["metrics"]["artifacts"]]
    assert metrics["out_score"] == pytest.approx(scores["out_score"])


def test_several_processes_train_as_ranks_of_one_job(inputs, tmp_path, monkeypatch):
    cfg, data, base = inputs
    for name in (*RANK_VARS, *ADDRESS_VARS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", TORCH_EXTENSIONS_DIR)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    store = ArtifactStore.from_uri((tmp_path / "store").as_uri())
    out = tmp_path / "rl"
    result = stages.rl_stage(cfg, data, base, out, run_id="ranks", store=store, processes=2)
    assert result.steps == 2 and result.run_id == "ranks"
    assert (out / "model" / "model.safetensors").is_file()
    # Two ranks: ZeRO-2 partitioned the optimizer states between them.
    checkpoint = out / "trainer" / "checkpoint-2" / "global_step2"
    ranks = sorted(p.name for p in checkpoint.glob("*optim_states.pt"))
    assert len(ranks) == 2 and any("rank_1" in name for name in ranks), ranks
    # Rank 0 alone kept the attempt log and uploaded the checkpoint.
    attempts = json.loads(store.get_bytes(attempts_key("ranks")))["attempts"]
    assert [a["status"] for a in attempts] == ["succeeded"]
    assert store.exists("runs/ranks/checkpoints/step-00000002")
