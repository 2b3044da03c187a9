"""Compile every pipeline and check the IR a cluster would run: GPU requests, secrets, placement,
retries, caching, the ParallelFor fan-out and the Collected fan-in."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from modomodo.components import GPU_IMAGE, RUNTIME_IMAGE
from modomodo.config import load_config
from modomodo.pipelines import PIPELINES, compile_pipeline
from modomodo.pipelines.settings import STEPS, ClusterSettings, cpu_threads

SMOKE = load_config("smoke")


@dataclass(frozen=True)
class Expect:
    """What the default compile (``ClusterSettings()``, GPUs on) must give one step, written here
    rather than read from ``pipelines/settings.py``, so that a change there fails these tests."""

    gpu: bool
    retries: int
    cache: bool
    s3: bool = False
    study: bool = False
    metrics: bool = False


EXPECTED: dict[str, Expect] = {
    "curate-data": Expect(gpu=False, retries=2, cache=True, s3=True),
    "base-policy": Expect(gpu=True, retries=2, cache=True),
    "base-policy-and-evaluate": Expect(gpu=True, retries=2, cache=True),
    "rollout-reward": Expect(gpu=True, retries=2, cache=True),
    "rl-update": Expect(gpu=True, retries=3, cache=True, s3=True, metrics=True),
    "evaluate": Expect(gpu=True, retries=2, cache=True, s3=True),  # reads the model from the store
    # the RL update's settings: its training resumes, its evaluation is idempotent
    "train-and-evaluate": Expect(gpu=True, retries=3, cache=True, s3=True, metrics=True),
    "plan-seed-pilots": Expect(gpu=False, retries=0, cache=True),
    "plan-heuristic-pilots": Expect(gpu=False, retries=0, cache=True),
    "fit-surrogate": Expect(gpu=False, retries=0, cache=True),
    "search-mixture": Expect(gpu=False, retries=2, cache=True, study=True),
    "report": Expect(gpu=False, retries=2, cache=False, s3=True),
}
"""Every step of the default (GPU) compile; one row a step, so another placement (a CPU-only
compile, per-step images) extends this table rather than the assertions."""
GPU_POD, CPU_POD = ("8", "64Gi"), ("2", "8Gi")
"""(CPU request, memory request = limit) of a GPU step and of every other step."""
GPU_STEPS = {name for name, step in EXPECTED.items() if step.gpu}
PIPELINE_STEPS = {
    "mixture-search": {
        "curate-data", "base-policy-and-evaluate", "rollout-reward", "plan-seed-pilots",
        "train-and-evaluate", "fit-surrogate", "search-mixture", "report",
    },
    "train": {"curate-data", "base-policy-and-evaluate", "train-and-evaluate", "report"},
}  # fmt: skip
"""The steps each pipeline runs on the smoke preset (no heuristic wave: no heuristic planner).
A step that makes a model evaluates it in the same process and pod (``base-policy-and-evaluate``,
``train-and-evaluate``): the separate ``base-policy``, ``rl-update`` and ``evaluate`` are for
pipelines of one's own."""


class IR:
    """A compiled package: the pipeline spec and its Kubernetes platform spec."""

    def __init__(self, path: Path):
        self.spec, self.platform = yaml.safe_load_all(path.read_text())
        self.executors = self.spec["deploymentSpec"]["executors"]
        self.k8s = self.platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]

    def dags(self):
        """Every DAG (root and loop bodies) as (name, tasks)."""
        yield "root", self.spec["root"]["dag"]["tasks"]
        for name, component in self.spec["components"].items():
            if "dag" in component:
                yield name, component["dag"]["tasks"]

    def tasks(self):
        """Every task as (dag name, task name, task, component name, executor name)."""
        for dag, tasks in self.dags():
            for name, task in tasks.items():
                ref = task["componentRef"]["name"]
                executor = self.spec["components"][ref].get("executorLabel")
                yield dag, name, task, ref.removeprefix("comp-"), executor

    def step_tasks(self, step: str):
        """Tasks of component ``step`` (``train-and-evaluate`` matches ``train-and-evaluate-2`` too)."""
        return [t for t in self.tasks() if t[4] is not None and _step_of(t[3]) == step]


def _step_of(component: str) -> str:
    base, _, suffix = component.rpartition("-")
    return base if suffix.isdigit() else component


def compiled(tmp_path: Path, name: str, cfg=SMOKE, cluster: ClusterSettings | None = None) -> IR:
    return IR(compile_pipeline(name, cfg, tmp_path / f"{name}.yaml", cluster))


@pytest.fixture(scope="module")
def search_ir(tmp_path_factory) -> IR:
    return compiled(tmp_path_factory.mktemp("ir"), "mixture-search")


@pytest.fixture(scope="module")
def train_ir(tmp_path_factory) -> IR:
    return compiled(tmp_path_factory.mktemp("ir"), "train")


@pytest.fixture(params=sorted(PIPELINES))
def ir(request, search_ir, train_ir) -> IR:
    return {"mixture-search": search_ir, "train": train_ir}[request.param]


def test_every_step_runs_its_image_without_installing_packages(ir):
    for _, _, _, component, executor in ir.tasks():
        if executor is None:
            continue
        container = ir.executors[executor]["container"]
        assert container["image"] == (GPU_IMAGE if _step_of(component) in GPU_STEPS else RUNTIME_IMAGE)
        assert not any("pip install" in part for part in container["command"] + container.get("args", []))


def test_the_expected_table_covers_every_step_and_every_pipeline_runs_its_steps(ir):
    assert set(EXPECTED) == set(STEPS), "a new step needs its row in EXPECTED"
    name = ir.spec["pipelineInfo"]["name"]
    steps = {_step_of(component) for _, _, _, component, executor in ir.tasks() if executor}
    assert steps == PIPELINE_STEPS[name]


def _assert_gpu_retries_and_caching(ir: IR) -> None:
    """Every task of ``ir`` has its step's GPU request, retry policy and caching from EXPECTED."""
    for _, name, task, component, executor in ir.tasks():
        if executor is None:
            continue
        expected = EXPECTED[_step_of(component)]
        resources = ir.executors[executor]["container"]["resources"]
        assert ("accelerator" in resources) is expected.gpu, name
        assert task.get("retryPolicy", {}).get("maxRetryCount", 0) == expected.retries, name
        assert task.get("cachingOptions", {}).get("enableCache", False) is expected.cache, name


def test_gpu_steps_request_the_compiled_gpu_count_cpu_and_memory(ir):
    for _, name, task, component, executor in ir.tasks():
        if executor is None:
            continue
        resources = ir.executors[executor]["container"]["resources"]
        gpu = _step_of(component) in GPU_STEPS
        cpu, memory = GPU_POD if gpu else CPU_POD
        assert resources["resourceCpuRequest"] == cpu, name
        assert resources["resourceMemoryRequest"] == resources["resourceMemoryLimit"] == memory, name
        if gpu:
            assert resources["accelerator"] == {
                "resourceType": "nvidia.com/gpu",
                "type": "nvidia.com/gpu",
                "resourceCount": "1",
                "count": "1",
            }
            # The component is told the same count (its GPU check, its process count).
            assert task["inputs"]["parameters"]["gpus"]["runtimeValue"]["constant"] == 1, name
        else:
            assert "accelerator" not in resources, name


def test_gpus_is_compiled_in_and_the_config_default_is_the_preset(ir):
    parameters = ir.spec["root"]["inputDefinitions"]["parameters"]
    assert "gpus" not in parameters  # whether a step goes to GPU nodes is fixed when compiling
    assert parameters["store_uri"].get("isOptional") is not True  # no store, no run
    config = parameters["config"]["defaultValue"]
    assert config["name"] == SMOKE.name
    assert config["train"]["steps"] == SMOKE.train.steps
    assert set(config["data"]["domains"]) == set(SMOKE.data.domains)


def test_gpu_steps_tolerate_gpu_taints_and_select_gpu_nodes(ir):
    for _, name, _, component, executor in ir.tasks():
        if executor is None:
            continue
        placement = ir.k8s.get(executor, {})
        if _step_of(component) in GPU_STEPS:
            assert placement["nodeSelector"]["labels"] == {"nvidia.com/gpu.present": "true"}, name
            assert placement["tolerations"] == [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ]
        else:
            assert "nodeSelector" not in placement and "tolerations" not in placement, name


def test_store_steps_get_s3_credentials_from_the_secret_parameter(ir):
    store_steps = {name for name, step in EXPECTED.items() if step.s3}
    seen = set()
    for _, name, _, component, executor in ir.tasks():
        if executor is None:
            continue
        secrets = ir.k8s.get(executor, {}).get("secretAsEnv", [])
        s3 = [s for s in secrets if any(k["envVar"] == "AWS_SECRET_ACCESS_KEY" for k in s["keyToEnv"])]
        if _step_of(component) in store_steps:
            seen.add(_step_of(component))
            (secret,) = s3
            assert {k["secretKey"]: k["envVar"] for k in secret["keyToEnv"]} == {
                k: k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL")
            }
            assert secret["optional"] is False
            # The Secret's name is the pipeline parameter s3_secret (forwarded into loop DAGs).
            assert secret["secretNameParameter"]["componentInputParameter"] in (
                "s3_secret",
                "pipelinechannel--s3_secret",
            )
        else:
            assert not s3, f"{name} does not use the store and must not see its credentials"
    assert seen == store_steps & {_step_of(t[3]) for t in ir.tasks()}


def test_search_gets_the_optional_study_storage_secret(search_ir):
    assert [name for name, step in EXPECTED.items() if step.study] == ["search-mixture"]
    for _, _, _, _, executor in search_ir.step_tasks("search-mixture"):
        (secret,) = search_ir.k8s[executor]["secretAsEnv"]
        assert secret["optional"] is True
        assert secret["secretNameParameter"]["runtimeValue"]["constant"] == "modomodo-study"
        assert secret["keyToEnv"] == [{"secretKey": "url", "envVar": "MODOMODO_STUDY_STORAGE"}]


def test_retries_only_on_idempotent_steps_that_can_fail_transiently(ir):
    for _, name, task, component, executor in ir.tasks():
        if executor is None:
            continue
        retries = EXPECTED[_step_of(component)].retries
        if retries:
            assert task["retryPolicy"]["maxRetryCount"] == retries, name
            assert task["retryPolicy"]["backoffDuration"] == "60s"
            assert task["retryPolicy"]["backoffFactor"] == 2.0
        else:
            assert "retryPolicy" not in task, name


def test_caching_on_pure_steps_and_off_for_the_report(ir):
    for _, name, task, component, executor in ir.tasks():
        if executor is None:
            continue
        enabled = task.get("cachingOptions", {}).get("enableCache", False)
        assert enabled is EXPECTED[_step_of(component)].cache, name


def test_curation_of_sources_outside_the_generator_is_never_cached(tmp_path):
    cfg = load_config("smoke", [f"data.domains.det.source={tmp_path / 'det.jsonl'}"])
    for name in PIPELINES:
        ir = compiled(tmp_path, name, cfg)
        ((_, _, task, _, _),) = ir.step_tasks("curate-data")
        assert task["cachingOptions"].get("enableCache", False) is False
        assert all(t[2]["cachingOptions"]["enableCache"] for t in ir.step_tasks("train-and-evaluate"))


def test_seed_pilots_fan_out_in_a_parallel_for_and_fan_in_with_collected(search_ir):
    root = search_ir.spec["root"]["dag"]["tasks"]
    loops = {name: task for name, task in root.items() if task.get("parameterIterator")}
    assert list(loops) == ["for-loop-1"]
    loop = loops["for-loop-1"]
    assert loop["iteratorPolicy"]["parallelismLimit"] == SMOKE.search.parallelism
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--plan-seed-pilots-Output"
    assert loop["inputs"]["parameters"]["pipelinechannel--plan-seed-pilots-Output"][
        "taskOutputParameter"
    ] == {
        "producerTask": "plan-seed-pilots",
        "outputParameterKey": "Output",
    }
    body = search_ir.spec["components"][loop["componentRef"]["name"]]["dag"]
    # One step a pilot: its RL update, evaluation and run record in one process (one load of the
    # ML stack and of the model, one pod to schedule).
    assert set(body["tasks"]) == {"train-and-evaluate"}
    # Each iteration trains the item's mixture under the item's run name.
    rl_inputs = body["tasks"]["train-and-evaluate"]["inputs"]["parameters"]
    item = "pipelinechannel--plan-seed-pilots-Output-loop-item"
    assert rl_inputs["mixture"] == {
        "componentInputParameter": item,
        "parameterExpressionSelector": 'parseJson(string_value)["mixture"]',
    }
    assert rl_inputs["run_name"]["parameterExpressionSelector"] == 'parseJson(string_value)["run"]'
    # Fan-in: the loop exposes every iteration's run record, fit-surrogate takes the list.
    assert body["outputs"]["parameters"]["pipelinechannel--train-and-evaluate-record"][
        "valueFromParameter"
    ] == {
        "producerSubtask": "train-and-evaluate",
        "outputParameterKey": "record",
    }
    rows = root["fit-surrogate"]["inputs"]["parameters"]["rows"]
    assert rows["taskOutputParameter"] == {
        "producerTask": "for-loop-1",
        "outputParameterKey": "pipelinechannel--train-and-evaluate-record",
    }
    assert (
        search_ir.spec["components"]["comp-fit-surrogate"]["inputDefinitions"]["parameters"]["rows"][
            "parameterType"
        ]
        == "LIST"
    )


def test_the_final_run_trains_the_best_mixture_and_the_report_compares(search_ir):
    root = search_ir.spec["root"]["dag"]["tasks"]
    (final,) = [name for name in root if _step_of(name) == "train-and-evaluate"]
    assert root[final]["inputs"]["parameters"]["mixture"]["taskOutputParameter"] == {
        "producerTask": "search-mixture",
        "outputParameterKey": "best",
    }
    assert root["search-mixture"]["inputs"]["parameters"]["mode"]["runtimeValue"]["constant"] == "best"
    report = root["report"]["inputs"]
    assert report["parameters"]["base_scores"]["taskOutputParameter"] == {
        "producerTask": "base-policy-and-evaluate",
        "outputParameterKey": "scores",
    }
    assert report["parameters"]["final_run"]["taskOutputParameter"]["producerTask"] == final
    assert report["parameters"]["final_scores"]["taskOutputParameter"] == {
        "producerTask": final,
        "outputParameterKey": "scores",
    }
    assert report["artifacts"]["records"]["taskOutputArtifact"]["producerTask"] == "fit-surrogate"
    assert report["artifacts"]["proposals"]["taskOutputArtifact"]["producerTask"] == "search-mixture"


def test_heuristics_and_rounds_add_waves(tmp_path):
    cfg = load_config(
        "smoke",
        [
            "search.seeds=[single, exclude_one]",
            "search.heuristics=[ain, norm]",
            "search.rounds=2",
            "search.parallelism=3",
        ],
    )
    ir = compiled(tmp_path, "mixture-search", cfg)
    root = ir.spec["root"]["dag"]["tasks"]
    loops = {name: task for name, task in root.items() if task.get("parameterIterator")}
    assert len(loops) == 1 + 1 + 2
    assert {task["iteratorPolicy"]["parallelismLimit"] for task in loops.values()} == {3}
    sources = sorted(task["parameterIterator"]["items"]["inputParameter"] for task in loops.values())
    assert sources == sorted(
        [
            "pipelinechannel--plan-seed-pilots-Output",
            "pipelinechannel--plan-heuristic-pilots-Output",
            "pipelinechannel--search-mixture-Output",
            "pipelinechannel--search-mixture-2-Output",
        ]
    )
    modes = {
        name: task["inputs"]["parameters"]["mode"]["runtimeValue"]["constant"]
        for name, task in root.items()
        if _step_of(name) == "search-mixture"
    }
    assert sorted(modes.values()) == ["best", "explore", "explore"]
    assert len(ir.step_tasks("plan-heuristic-pilots")) == 1 and len(ir.step_tasks("train-and-evaluate")) == 5
    _assert_gpu_retries_and_caching(ir)
    # Each wave's fit appends to the previous wave's table.
    fits = [name for name in root if _step_of(name) == "fit-surrogate"]
    assert len(fits) == 4
    previous = [root[f]["inputs"].get("artifacts", {}).get("previous") for f in fits]
    assert sum(p is None for p in previous) == 1


def test_train_pipeline_is_one_mixture_without_pilots(train_ir):
    root = train_ir.spec["root"]["dag"]["tasks"]
    assert not any(task.get("parameterIterator") for task in root.values())
    assert {_step_of(n) for n in root} == {
        "curate-data", "base-policy-and-evaluate", "train-and-evaluate", "report"
    }  # fmt: skip
    (rl,) = [n for n in root if _step_of(n) == "train-and-evaluate"]
    assert root[rl]["inputs"]["parameters"]["mixture"]["runtimeValue"]["constant"] == {}


def test_cluster_settings_are_compile_options(tmp_path):
    cluster = ClusterSettings(
        accelerator="amd.com/gpu", gpu_node_selector={"pool": "a100"}, gpu_tolerations=(), retries=False
    )
    ir = compiled(tmp_path, "train", cluster=cluster)
    for _, name, task, component, executor in ir.tasks():
        if _step_of(component) in GPU_STEPS:
            assert (
                ir.executors[executor]["container"]["resources"]["accelerator"]["resourceType"]
                == "amd.com/gpu"
            )
            assert ir.k8s[executor]["nodeSelector"]["labels"] == {"pool": "a100"}
            assert "tolerations" not in ir.k8s[executor]
        assert "retryPolicy" not in task, name


def test_compile_command_writes_every_pipeline_for_the_given_image(tmp_path):
    # A fresh interpreter: the image is read when the components are first imported.
    script = (
        "import typer; from modomodo.cli.pipelines import register; app = typer.Typer(); register(app); app()"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "compile",
            "--output",
            str(tmp_path),
            "--set",
            "train.steps=7",
            "--image",
            "registry.local/modomodo:test",
            "--gpu-image",
            "registry.local/modomodo-gpu:test",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{name}.yaml" for name in PIPELINES)
    ir = IR(tmp_path / "mixture-search.yaml")
    assert {e["container"]["image"] for e in ir.executors.values()} == {
        "registry.local/modomodo:test",
        "registry.local/modomodo-gpu:test",
    }
    assert ir.spec["root"]["inputDefinitions"]["parameters"]["config"]["defaultValue"]["train"]["steps"] == 7


def test_compile_command_rejects_a_bad_config_before_compiling(tmp_path):
    script = (
        "import typer; from modomodo.cli.pipelines import register; app = typer.Typer(); register(app); app()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "compile", "--output", str(tmp_path), "--set", "train.steps=0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "train.steps" in result.stderr
    assert not any(tmp_path.iterdir())


def _threads(ir: IR, executor: str) -> str:
    (value,) = [
        e["value"] for e in ir.executors[executor]["container"]["env"] if e["name"] == "OMP_NUM_THREADS"
    ]
    return value


def test_every_step_runs_as_many_threads_as_it_requested_cores(ir):
    for _, name, _, component, executor in ir.tasks():
        if executor:
            assert _threads(ir, executor) == ("8" if _step_of(component) in GPU_STEPS else "2"), name


def test_pilots_that_share_a_machine_split_its_cores(tmp_path):
    ir = compiled(tmp_path, "mixture-search", cluster=ClusterSettings(threads=4, loop_threads=2))
    for dag, name, _, _, executor in ir.tasks():
        if executor:
            assert _threads(ir, executor) == ("2" if dag.startswith("comp-for-loop") else "4"), name
    assert cpu_threads("500m") == 1 and cpu_threads("2500m") == 2 and cpu_threads("16") == 16


def _pod_annotations(ir: IR, executor: str) -> dict[str, str]:
    return ir.k8s.get(executor, {}).get("podMetadata", {}).get("annotations", {})


def _pod_labels(ir: IR, executor: str) -> dict[str, str]:
    return ir.k8s.get(executor, {}).get("podMetadata", {}).get("labels", {})


def _env(ir: IR, executor: str) -> dict[str, str]:
    return {e["name"]: e["value"] for e in ir.executors[executor]["container"].get("env", [])}


def test_the_rl_update_serves_metrics_for_a_scraping_prometheus(ir):
    port = "9400"
    for _, name, _, component, executor in ir.tasks():
        if not executor:
            continue
        annotations, env = _pod_annotations(ir, executor), _env(ir, executor)
        if EXPECTED[_step_of(component)].metrics:
            assert env["MODOMODO_METRICS_PORT"] == port, name
            # What the chart's PodMonitor selects (kube-prometheus-stack ignores the annotations).
            assert _pod_labels(ir, executor) == {"modomodo.io/metrics": "true"}, name
            assert annotations == {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": port,
                "prometheus.io/path": "/metrics",
            }, name
        else:
            assert "MODOMODO_METRICS_PORT" not in env and not annotations, name
            assert not _pod_labels(ir, executor), name
    assert [s for s, step in STEPS.items() if step.serves_metrics] == ["rl-update", "train-and-evaluate"]


def test_metrics_port_zero_turns_the_server_off(tmp_path):
    ir = compiled(tmp_path, "train", cluster=ClusterSettings(metrics_port=0))
    for _, name, _, _, executor in ir.step_tasks("train-and-evaluate"):
        assert "MODOMODO_METRICS_PORT" not in _env(ir, executor) and not _pod_annotations(ir, executor), name
        assert not _pod_labels(ir, executor), name


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_gpus_zero_compiles_the_gpu_steps_for_cpu_nodes(tmp_path, name):
    ir = compiled(tmp_path, name, cluster=ClusterSettings(gpus=0))
    gpu_tasks = [t for t in ir.tasks() if t[4] and _step_of(t[3]) in GPU_STEPS]
    assert {_step_of(t[3]) for t in gpu_tasks} >= {"base-policy-and-evaluate", "train-and-evaluate"}
    for _, task_name, task, _, executor in gpu_tasks:
        resources = ir.executors[executor]["container"]["resources"]
        assert "accelerator" not in resources, task_name
        placement = ir.k8s.get(executor, {})
        assert "nodeSelector" not in placement and "tolerations" not in placement, task_name
        # Same CPU and memory as on a GPU node: the same work, on the CPU.
        assert resources["resourceCpuRequest"] == ClusterSettings().gpu_resources.cpu, task_name
        assert task["inputs"]["parameters"]["gpus"]["runtimeValue"]["constant"] == 0, task_name


def test_several_gpus_split_the_rl_updates_threads_between_its_processes(tmp_path):
    cluster = ClusterSettings(gpus=4)
    ir = compiled(tmp_path, "train", cluster=cluster)
    per_process = str(cpu_threads(cluster.gpu_resources.cpu) // 4)
    for _, task_name, _, component, executor in ir.tasks():
        if executor and _step_of(component) in GPU_STEPS:
            resources = ir.executors[executor]["container"]["resources"]
            assert resources["accelerator"]["resourceCount"] == "4", task_name
            expected = (
                per_process
                if _step_of(component) in ("rl-update", "train-and-evaluate")
                else str(cpu_threads("8"))
            )
            assert _threads(ir, executor) == expected, task_name


def test_the_vllm_switch_travels_in_the_compiled_config(tmp_path):
    cfg = load_config("smoke", ["train.vllm.enabled=true", "train.vllm.gpu_memory_utilization=0.45"])
    ir = compiled(tmp_path, "train", cfg=cfg)
    config = ir.spec["root"]["inputDefinitions"]["parameters"]["config"]["defaultValue"]
    assert config["train"]["vllm"] == {"enabled": True, "gpu_memory_utilization": 0.45, "sleep_mode": False}
