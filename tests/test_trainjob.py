"""The multi-node RL update: the TrainJob it builds (checked against Kubeflow Trainer's CRD schema)
and its launcher against kmock, an in-memory Kubernetes API server the real client talks to.

kmock stores objects but runs no controller: each test plays the Trainer controller, writing the
job's status (and, for success, the final model the nodes would store) from a thread.
"""

from __future__ import annotations

import _thread
import asyncio
import base64
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import kmock
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modomodo.components import trainjob
from modomodo.components.train_and_evaluate import train_and_evaluate
from modomodo.config import load_config
from modomodo.pipelines import compile_pipeline
from modomodo.pipelines.settings import ClusterSettings
from modomodo.store import ArtifactStore

CRD = Path(__file__).parent / "crds/trainer.kubeflow.org_trainjobs.yaml"
NAMESPACE = "kubeflow-user"
SMOKE = load_config("smoke")
SETTINGS = trainjob.NodeSettings.from_cluster(ClusterSettings(), image="registry.example/modomodo:1.2.3")
TORCH_RUNTIME = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "ClusterTrainingRuntime",
    "metadata": {"name": "torch-distributed"},
    "spec": {"mlPolicy": {"numNodes": 1, "torch": {}}},
}
MPI_RUNTIME = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "ClusterTrainingRuntime",
    "metadata": {"name": "deepspeed-distributed"},
    "spec": {"mlPolicy": {"numNodes": 1, "mpi": {"numProcPerNode": 1, "mpiImplementation": "OpenMPI"}}},
}
POD_OWNER = {"apiVersion": "v1", "kind": "Pod", "name": "train-rl-update-driver", "uid": "uid-attempt-2"}


# A kmock Kubernetes API server --------------------------------------------------------------------


@dataclass
class FakeCluster:
    """kmock's Kubernetes emulator served on loopback from its own event-loop thread."""

    url: str
    emulator: kmock.KubernetesEmulator
    api: client.ApiClient
    logs: list[str] = field(default_factory=list)

    @property
    def objects(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def launcher(self, owner: dict | None = None) -> trainjob.Launcher:
        return trainjob.Launcher(self.api, NAMESPACE, poll_seconds=0.05, owner=owner, log=self.logs.append)

    def job(self, name: str) -> dict | None:
        return self.launcher().get(name)

    def wait_for_job(self, name: str, timeout: float = 30.0, check: Callable[[dict], bool] = bool) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(name)
            if job is not None and check(job):
                return job
            time.sleep(0.02)
        raise AssertionError(f"TrainJob {name} did not appear as expected within {timeout} s")

    def set_status(self, name: str, status: dict) -> None:
        self.objects.patch_namespaced_custom_object(
            trainjob.GROUP, trainjob.VERSION, NAMESPACE, trainjob.PLURAL, name, {"status": status}
        )

    def creations(self) -> int:
        return len(self.emulator["post"])

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
                    "users": [{"name": "step", "user": {"token": "t"}}],
                    "contexts": [
                        {
                            "name": "kmock",
                            "context": {"cluster": "kmock", "user": "step", "namespace": NAMESPACE},
                        }
                    ],
                    "current-context": "kmock",
                }
            )
        )
        return path


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    emulator = kmock.KubernetesEmulator()
    server = kmock.Server(emulator)

    async def start() -> str:
        await emulator.__aenter__()
        await server.__aenter__()
        emulator.resources["v1/pods"] = {}
        return str(server.url).rstrip("/")

    async def stop() -> None:
        await server.__aexit__(None, None, None)
        await emulator.__aexit__(None, None, None)

    url = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    configuration = client.Configuration()
    configuration.host = url
    fake = FakeCluster(url=url, emulator=emulator, api=client.ApiClient(configuration))
    for runtime in (TORCH_RUNTIME, MPI_RUNTIME):
        fake.objects.create_cluster_custom_object(
            trainjob.GROUP, trainjob.VERSION, trainjob.RUNTIME_PLURAL, runtime
        )
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


# The run's inputs --------------------------------------------------------------------------------


@dataclass
class Run:
    store: ArtifactStore
    data: Path
    base: Path
    out: Path
    run_id: str = "smoke-chosen-0123456789"

    @property
    def name(self) -> str:
        return trainjob.job_name(self.run_id)

    def stage(self, launcher: trainjob.Launcher, nodes: int = 2, gpus: int = 4, runtime="torch-distributed"):
        rl_stage = trainjob.stage_on_nodes(
            nodes=nodes,
            gpus=gpus,
            runtime=runtime,
            s3_secret="modomodo-s3",
            settings=SETTINGS,
            launcher=launcher,
        )
        return rl_stage(SMOKE, self.data, self.base, self.out, run_id=self.run_id, store=self.store)


@pytest.fixture
def run(tmp_path) -> Run:
    data, base, out = tmp_path / "data", tmp_path / "base", tmp_path / "out"
    for folder, name in ((data, "train.parquet"), (base, "model.safetensors")):
        folder.mkdir()
        (folder / name).write_bytes(os.urandom(64))
    out.mkdir()
    return Run(ArtifactStore.from_uri((tmp_path / "store").as_uri()), data, base, out)


def nodes_store_model(run: Run, steps: int) -> None:
    """What rank 0 of the nodes does at the end (components/rl_node.py): the final model, with its
    run summary, under the spec's ``model`` key."""
    model = run.out.parent / "nodes-model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"trained weights")
    summary = {
        "run_id": run.run_id,
        "mixture": {"geo": 1.0},
        "realised_counts": {"geo": 8},
        "steps": steps,
        "resumed_from_step": 0,
        "seconds": 1.0,
        "model_dir": "/tmp/elsewhere",
        "log_history": [],
    }
    (model / "train_summary.json").write_text(json.dumps(summary))
    (model / "versions.json").write_text("{}")
    run.store.put_dir(model, f"runs/{run.run_id}/model")  # the spec's "model" key


RUNNING = {
    "jobsStatus": [{"name": "node", "active": 2, "ready": 2, "succeeded": 0, "failed": 0, "suspended": 0}]
}


def condition(kind: str, reason: str, message: str) -> dict:
    return {"conditions": [{"type": kind, "status": "True", "reason": reason, "message": message}]}


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# The TrainJob ------------------------------------------------------------------------------------


def strict(schema: dict) -> dict:
    """The CRD schema with unknown fields refused (the API server would silently prune them)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def crd_schema() -> tuple[dict, re.Pattern]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == trainjob.VERSION]
    schema = version["schema"]["openAPIV3Schema"]
    (name_rule,) = [r["rule"] for r in schema["x-kubernetes-validations"] if "RFC 1035" in r["message"]]
    return strict(schema), re.compile(re.search(r"matches\('(.+)'\)", name_rule).group(1))


def built_job(**overrides) -> dict:
    arguments = dict(
        name=trainjob.job_name("smoke-chosen-0123456789"),
        run_id="smoke-chosen-0123456789",
        runtime="torch-distributed",
        nodes=3,
        gpus=8,
        command=trainjob.node_command("s3://bucket/prefix", "runs/x/trainjob/spec.json"),
        settings=SETTINGS,
        s3_secret="modomodo-s3",
        owner=POD_OWNER,
    )
    return trainjob.build_train_job(**{**arguments, **overrides})


def test_the_train_job_is_valid_against_the_trainer_crd_schema():
    schema, name_rule = crd_schema()
    job = built_job()
    jsonschema.validate(job, schema)
    assert name_rule.match(job["metadata"]["name"]) and len(job["metadata"]["name"]) <= 63
    # The strict schema is not vacuous: a misspelt field and a wrong type are refused.
    typo = json.loads(json.dumps(job))
    typo["spec"]["trainer"]["numNode"] = typo["spec"]["trainer"].pop("numNodes")
    with pytest.raises(jsonschema.ValidationError, match="numNode"):
        jsonschema.validate(typo, schema)
    wrong = json.loads(json.dumps(job))
    wrong["spec"]["trainer"]["numNodes"] = "3"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, schema)
    # A CPU-node job (no GPUs, no GPU placement) is valid too.
    jsonschema.validate(built_job(gpus=0, owner=None), schema)
    jsonschema.validate(built_job(gpus=0, settings=dataclasses.replace(SETTINGS, metrics_port=0)), schema)


def test_the_train_job_runs_the_rl_stage_on_every_node_with_the_steps_image_and_secret():
    job = built_job()
    assert (job["apiVersion"], job["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    assert job["spec"]["runtimeRef"] == {
        "apiGroup": "trainer.kubeflow.org",
        "kind": "ClusterTrainingRuntime",
        "name": "torch-distributed",
    }
    trainer = job["spec"]["trainer"]
    assert trainer["image"] == "registry.example/modomodo:1.2.3"
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (3, 8)
    assert trainer["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": "8", "memory": "64Gi"}
    assert trainer["resourcesPerNode"]["requests"] == {"cpu": "8", "memory": "64Gi"}
    assert trainer["command"] == [
        "torchrun",
        "--module",
        "modomodo.components.rl_node",
        "--store",
        "s3://bucket/prefix",
        "--spec",
        "runs/x/trainjob/spec.json",
    ]
    env = {e["name"]: e for e in trainer["env"]}
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": "modomodo-s3", "key": variable}
    assert env["MODOMODO_METRICS_PORT"]["value"] == "9400"
    # No torchrun variable of the runtime's: the Trainer webhook refuses them in trainer.env.
    assert not {name for name in env if name.startswith("PET_")}
    (patch,) = job["spec"]["runtimePatches"]
    (node,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    pod = node["template"]["spec"]["template"]["spec"]
    assert node["template"]["spec"]["template"]["metadata"] == {"labels": {"modomodo.io/metrics": "true"}}
    assert node["name"] == "node" and pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    meta = job["metadata"]
    assert meta["labels"] == {"app.kubernetes.io/managed-by": "modomodo-rl-update"}
    assert meta["annotations"] == {"modomodo.io/run-id": "smoke-chosen-0123456789"}
    assert meta["ownerReferences"] == [POD_OWNER]
    cpu = built_job(gpus=0)["spec"]
    (patch,) = cpu["runtimePatches"]
    (node,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert node["template"]["spec"]["template"] == {"metadata": {"labels": {"modomodo.io/metrics": "true"}}}
    assert "nvidia.com/gpu" not in cpu["trainer"]["resourcesPerNode"]["limits"]
    assert cpu["trainer"]["numProcPerNode"] == 1
    quiet = dataclasses.replace(SETTINGS, metrics_port=0)
    assert "runtimePatches" not in built_job(gpus=0, settings=quiet)["spec"]


def test_job_names_are_deterministic_distinct_and_valid():
    _, name_rule = crd_schema()
    ids = ["smoke-chosen-0123456789", "smoke-chosen-0123456780", "X" * 200, "Paper_Run.final-42", "-"]
    names = [trainjob.job_name(run_id) for run_id in ids]
    assert names == [trainjob.job_name(run_id) for run_id in ids]
    assert len(set(names)) == len(names)
    assert all(name_rule.match(n) and len(n) <= 63 for n in names), names


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="multi-node"):
        built_job(nodes=1)
    with pytest.raises(ValueError, match="unknown keys.*'gpu'"):
        trainjob.NodeSettings.from_dict({**SETTINGS.to_dict(), "gpu": 1})
    with pytest.raises(ValueError, match="'image' is required"):
        trainjob.NodeSettings.from_dict({})
    with pytest.raises(ValueError, match="s3_secret"):
        trainjob.stage_on_nodes(nodes=2, gpus=1, runtime="torch-distributed", s3_secret="", settings=SETTINGS)
    # Round trip through a KFP parameter, where numbers come back as floats.
    back = json.loads(json.dumps({**SETTINGS.to_dict(), "metrics_port": 9400.0}))
    assert trainjob.NodeSettings.from_dict(back) == SETTINGS


# The launcher against kmock ----------------------------------------------------------------------


def test_a_completed_job_returns_the_model_the_nodes_stored(cluster, run):
    def controller():
        cluster.wait_for_job(run.name)
        cluster.set_status(run.name, RUNNING)
        time.sleep(0.3)
        nodes_store_model(run, steps=12)
        cluster.set_status(run.name, condition("Complete", "JobSetCompleted", "jobset completed"))

    thread = in_thread(controller)
    result = run.stage(cluster.launcher(owner=POD_OWNER))
    thread.join(5)
    assert result.steps == 12 and result.run_id == run.run_id
    assert Path(result.model_dir) == run.out / "model"
    assert (run.out / "model/model.safetensors").read_bytes() == b"trained weights"
    assert json.loads((run.out / "train_summary.json").read_text())["steps"] == 12
    assert (run.out / "versions.json").exists()
    assert cluster.logs[0] == f"created TrainJob {NAMESPACE}/{run.name}"
    assert [m.split(": ")[1].split()[0] for m in cluster.logs[1:]] == ["Pending", "Running", "Complete"]
    job = cluster.job(run.name)
    assert job["metadata"]["ownerReferences"] == [POD_OWNER]
    assert job["spec"]["trainer"]["numNodes"] == 2
    # The nodes read the run's inputs from the store: the step's base model and data, its config.
    spec = json.loads(run.store.get_bytes(f"runs/{run.run_id}/trainjob/spec.json"))
    assert spec["config"] == SMOKE.to_dict() and spec["run_id"] == run.run_id
    assert spec["model"] == f"runs/{run.run_id}/model"
    assert job["spec"]["trainer"]["command"][-4:] == [
        "--store",
        run.store.uri,
        "--spec",
        f"runs/{run.run_id}/trainjob/spec.json",
    ]
    for key, local in ((spec["data"], run.data), (spec["base_model"], run.base)):
        fetched = run.out.parent / key.replace("/", "_")
        run.store.get_dir(key, fetched)
        assert sorted(p.read_bytes() for p in fetched.iterdir()) == sorted(
            p.read_bytes() for p in local.iterdir()
        )


def test_the_curate_steps_copy_of_the_data_is_not_uploaded_again(cluster, run):
    run.store.put_dir(run.data, "data/abc123")
    rl_stage = trainjob.stage_on_nodes(
        nodes=2,
        gpus=1,
        runtime="torch-distributed",
        s3_secret="modomodo-s3",
        settings=SETTINGS,
        data_hash="abc123",
        launcher=cluster.launcher(),
    )

    def controller():
        cluster.wait_for_job(run.name)
        nodes_store_model(run, steps=3)
        cluster.set_status(run.name, condition("Complete", "JobSetCompleted", "done"))

    thread = in_thread(controller)
    rl_stage(SMOKE, run.data, run.base, run.out, run_id=run.run_id, store=run.store)
    thread.join(5)
    spec = json.loads(run.store.get_bytes(f"runs/{run.run_id}/trainjob/spec.json"))
    assert spec["data"] == "data/abc123"
    assert not run.store.exists(f"runs/{run.run_id}/trainjob/data")


def test_a_failed_job_fails_the_step_with_its_reason_and_the_pods(cluster, run):
    def controller():
        cluster.wait_for_job(run.name)
        cluster.set_status(run.name, RUNNING)
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(
                name=f"{run.name}-node-0-1-x7k2p", labels={"jobset.sigs.k8s.io/jobset-name": run.name}
            ),
            spec=client.V1PodSpec(containers=[client.V1Container(name="node", image="i")]),
            status=client.V1PodStatus(
                container_statuses=[
                    client.V1ContainerStatus(
                        name="node",
                        image="i",
                        image_id="",
                        ready=False,
                        restart_count=0,
                        state=client.V1ContainerState(
                            terminated=client.V1ContainerStateTerminated(exit_code=137, reason="OOMKilled")
                        ),
                    )
                ]
            ),
        )
        client.CoreV1Api(cluster.api).create_namespaced_pod(NAMESPACE, pod)
        cluster.set_status(
            run.name, condition("Failed", "FailedJobs", "jobset failed: ReplicatedJob node-0 has failed")
        )

    thread = in_thread(controller)
    with pytest.raises(trainjob.TrainJobFailed) as failure:
        run.stage(cluster.launcher())
    thread.join(5)
    message = str(failure.value)
    assert (
        f"TrainJob {NAMESPACE}/{run.name} failed: FailedJobs: jobset failed: ReplicatedJob node-0" in message
    )
    assert f"{run.name}-node-0-1-x7k2p/node: OOMKilled (exit 137)" in message
    assert not (run.out / "model").exists()


@pytest.fixture
def ctrl_c_raises():
    """Python's own SIGINT handler for the test: a process started in the background of a
    non-interactive shell (``cmd &``, as CI runners and nohup do) inherits SIGINT ignored, and
    Python then installs no handler, so a simulated Ctrl-C would be dropped and the test hang."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_keyboard_interrupt_deletes_the_job(cluster, run, ctrl_c_raises):
    def controller():
        cluster.wait_for_job(run.name)
        cluster.set_status(run.name, RUNNING)
        time.sleep(0.2)
        _thread.interrupt_main()

    thread = in_thread(controller)
    with pytest.raises(KeyboardInterrupt):
        run.stage(cluster.launcher())
    thread.join(5)
    assert cluster.job(run.name) is None
    assert cluster.logs[-1] == f"deleted TrainJob {NAMESPACE}/{run.name}"


LAUNCH = """
import sys
from pathlib import Path
from modomodo.config import load_config
from modomodo.components import trainjob
from modomodo.store import ArtifactStore

store_uri, data, base, out, run_id = sys.argv[1:]
settings = trainjob.NodeSettings(image="registry.example/modomodo:1.2.3")
rl_stage = trainjob.stage_on_nodes(
    nodes=2, gpus=1, runtime="torch-distributed", s3_secret="modomodo-s3", settings=settings,
    launcher=trainjob.connect(poll_seconds=0.05),
)
rl_stage(load_config("smoke"), Path(data), Path(base), Path(out), run_id=run_id,
         store=ArtifactStore.from_uri(store_uri))
"""


def test_sigterm_cancels_the_step_and_deletes_the_job(cluster, run, tmp_path):
    """KFP cancels a step with SIGTERM to its process: the launcher, a separate process that finds
    the API server through its kubeconfig as a pod does through its service account, deletes the job."""
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig(tmp_path / "kubeconfig"))}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    args = [run.store.uri, str(run.data), str(run.base), str(run.out), run.run_id]
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        cluster.wait_for_job(run.name, timeout=120)
        cluster.set_status(run.name, RUNNING)
        time.sleep(0.5)  # the launcher is following the running job
        launcher.send_signal(signal.SIGTERM)
        output, _ = launcher.communicate(timeout=60)
    finally:
        launcher.kill()
    assert launcher.returncode != 0, output
    assert "Cancelled: signal 15" in output
    deadline = time.monotonic() + 10
    while cluster.job(run.name) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cluster.job(run.name) is None, "the cancelled step left its TrainJob behind"


def test_a_retried_step_adopts_the_running_job_instead_of_creating_a_second(cluster, run):
    first = built_job(name=run.name, run_id=run.run_id, nodes=2, owner={**POD_OWNER, "uid": "uid-attempt-1"})
    first["metadata"]["annotations"]["attempt"] = "1"
    cluster.objects.create_namespaced_custom_object(
        trainjob.GROUP, trainjob.VERSION, NAMESPACE, trainjob.PLURAL, first
    )
    cluster.set_status(run.name, RUNNING)
    posts = cluster.creations()

    def controller():
        time.sleep(0.3)
        nodes_store_model(run, steps=7)
        cluster.set_status(run.name, condition("Complete", "JobSetCompleted", "done"))

    thread = in_thread(controller)
    result = run.stage(cluster.launcher(owner=POD_OWNER))
    thread.join(5)
    assert result.steps == 7
    assert cluster.logs[0] == f"adopting TrainJob {NAMESPACE}/{run.name} of an earlier attempt (Running)"
    # One create attempt (refused with 409), no second job: the first attempt's job is the one.
    assert cluster.creations() == posts + 1
    job = cluster.job(run.name)
    assert job["metadata"]["annotations"]["attempt"] == "1"
    assert [o["uid"] for o in job["metadata"]["ownerReferences"]] == ["uid-attempt-1", "uid-attempt-2"]


def test_a_retried_step_replaces_a_failed_job_once_it_is_gone(cluster, run):
    """A foreground deletion keeps the job (with a deletionTimestamp) until the API server has
    removed its children: the launcher waits for it to go before creating the new one."""
    first = built_job(name=run.name, run_id=run.run_id, nodes=2, owner=None)
    first["metadata"]["annotations"]["attempt"] = "1"
    first["metadata"]["finalizers"] = ["foregroundDeletion"]
    cluster.objects.create_namespaced_custom_object(
        trainjob.GROUP, trainjob.VERSION, NAMESPACE, trainjob.PLURAL, first
    )
    cluster.set_status(run.name, condition("Failed", "FailedJobs", "node-0 evicted"))

    def controller():
        cluster.wait_for_job(run.name, check=lambda job: "deletionTimestamp" in job["metadata"])
        time.sleep(0.3)  # the JobSet and its pods go
        cluster.objects.patch_namespaced_custom_object(
            trainjob.GROUP,
            trainjob.VERSION,
            NAMESPACE,
            trainjob.PLURAL,
            run.name,
            {"metadata": {"finalizers": []}},
        )
        cluster.wait_for_job(run.name, check=lambda job: "attempt" not in job["metadata"]["annotations"])
        nodes_store_model(run, steps=5)
        cluster.set_status(run.name, condition("Complete", "JobSetCompleted", "done"))

    thread = in_thread(controller)
    result = run.stage(cluster.launcher())
    thread.join(5)
    assert result.steps == 5
    assert cluster.logs[:3] == [
        f"TrainJob {run.name} of an earlier attempt failed (FailedJobs: node-0 evicted); replacing it",
        f"deleted TrainJob {NAMESPACE}/{run.name}",
        f"TrainJob {run.name} is being deleted; waiting to create it anew",
    ]
    assert f"created TrainJob {NAMESPACE}/{run.name}" in cluster.logs
    assert "attempt" not in cluster.job(run.name)["metadata"]["annotations"]


def test_only_a_torch_runtime_is_accepted(cluster, run):
    with pytest.raises(ValueError, match="'deepspeed-distributed' has no torch mlPolicy"):
        run.stage(cluster.launcher(), runtime="deepspeed-distributed")
    with pytest.raises(ValueError, match="no ClusterTrainingRuntime 'torch-distributd'"):
        run.stage(cluster.launcher(), runtime="torch-distributd")
    assert cluster.creations() == 2  # the two runtimes of the fixture; no job
    # Other API errors pass through unchanged.
    (
        cluster.emulator["get /apis/trainer.kubeflow.org/v1alpha1/clustertrainingruntimes/torch-distributed"]
        << 500
    )
    with pytest.raises(ApiException) as refused:
        run.stage(cluster.launcher())
    assert refused.value.status == 500


def test_a_launcher_without_cluster_wide_or_patch_rights_still_runs_the_job(cluster, run):
    """A namespace-only Role (no ClusterRole to read runtimes, no patch on trainjobs) skips the
    runtime check and the owner of an adopted job, and says so."""
    emulator = cluster.emulator
    emulator["get /apis/trainer.kubeflow.org/v1alpha1/clustertrainingruntimes/torch-distributed"] << 403
    emulator[f"patch /apis/trainer.kubeflow.org/v1alpha1/namespaces/{NAMESPACE}/trainjobs/{run.name}"] << 403
    # The previous attempt's job completed just before that attempt's pod was lost.
    first = built_job(name=run.name, run_id=run.run_id, nodes=2, owner={**POD_OWNER, "uid": "uid-attempt-1"})
    first["status"] = condition("Complete", "JobSetCompleted", "done")
    cluster.objects.create_namespaced_custom_object(
        trainjob.GROUP, trainjob.VERSION, NAMESPACE, trainjob.PLURAL, first
    )
    nodes_store_model(run, steps=4)
    assert run.stage(cluster.launcher(owner=POD_OWNER)).steps == 4
    assert cluster.logs[:3] == [
        "may not read ClusterTrainingRuntime 'torch-distributed': its mlPolicy is not checked",
        f"adopting TrainJob {NAMESPACE}/{run.name} of an earlier attempt (Complete)",
        f"may not patch TrainJob {run.name}: not adding this pod as an owner",
    ]
    # (kmock applies a write even when a reaction answers it with an error, so the job's owners
    # are not asserted here; the launcher's log above shows that it got the 403 and went on.)


# The pipelines -----------------------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", ["train", "mixture-search"])
def test_the_final_rl_update_takes_the_nodes_parameter_and_pilots_stay_single_node(pipeline, tmp_path):
    path = compile_pipeline(pipeline, SMOKE, tmp_path / f"{pipeline}.yaml")
    ir = next(yaml.safe_load_all(path.read_text()))
    parameters = ir["root"]["inputDefinitions"]["parameters"]
    assert parameters["nodes"] == {"defaultValue": 1.0, "isOptional": True, "parameterType": "NUMBER_INTEGER"}
    assert parameters["trainer_runtime"]["defaultValue"] == "torch-distributed"
    root = ir["root"]["dag"]["tasks"]
    (final,) = [name for name in root if name.startswith("train-and-evaluate")]
    inputs = root[final]["inputs"]["parameters"]
    assert inputs["nodes"] == {"componentInputParameter": "nodes"}
    assert inputs["trainer_runtime"] == {"componentInputParameter": "trainer_runtime"}
    assert inputs["s3_secret"] == {"componentInputParameter": "s3_secret"}
    settings = inputs["node_settings"]["runtimeValue"]["constant"]
    image = train_and_evaluate.component_spec.implementation.container.image  # the step's own
    expected = trainjob.NodeSettings.from_cluster(ClusterSettings(), image)
    assert trainjob.NodeSettings.from_dict(settings) == expected
    loops = [c["dag"]["tasks"] for c in ir["components"].values() if "dag" in c]
    pilots = [t for tasks in loops for name, t in tasks.items() if name.startswith("train-and-evaluate")]
    assert all("nodes" not in t["inputs"]["parameters"] for t in pilots)
    assert bool(pilots) == (pipeline == "mixture-search")


# End to end --------------------------------------------------------------------------------------

TINY = [
    "data.domains={geo: {n_train: 16, rewards: [{name: format}, {name: accuracy, weight: 2}]},"
    " sci: {n_train: 16, rewards: [{name: format}, {name: accuracy, weight: 2}]}}",
    "data.benchmark_scale=0.02",
    "policy.hidden_size=64",
    "policy.num_layers=1",
    "policy.vision_depth=1",
    "sft.steps=4",
    "sft.batch_size=8",
    "train.steps=2",
    "train.prompts_per_step=2",
    "train.num_generations=2",
    "train.max_completion_length=8",
    "train.checkpoint_every=1",
    "eval.max_new_tokens=8",
    "eval.batch_size=16",
]


@dataclass
class StandIn:
    """Plays the Trainer controller and the kubelets for one TrainJob: runs its command once per
    node as a local process, with the job's environment (secrets resolved from the cluster) and
    the ``PET_*`` variables the torch runtime sets, and reports the outcome in the job's status."""

    cluster: FakeCluster
    job: dict | None = None
    outputs: list[str] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    error: BaseException | None = None

    def env_of(self, trainer: dict) -> dict[str, str]:
        env = {
            k: os.environ[k]
            for k in ("PATH", "HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
            if k in os.environ
        }
        env.update(HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
        core = client.CoreV1Api(self.cluster.api)
        for variable in trainer.get("env", []):
            if "value" in variable:
                env[variable["name"]] = variable["value"]
            else:
                ref = variable["valueFrom"]["secretKeyRef"]
                secret = core.read_namespaced_secret(ref["name"], NAMESPACE)
                env[variable["name"]] = base64.b64decode(secret.data[ref["key"]]).decode()
        return env

    def __call__(self) -> None:
        try:
            self.job = self.first_job()
            name, trainer = self.job["metadata"]["name"], self.job["spec"]["trainer"]
            # The image has torchrun on its PATH; here it is this interpreter's torch.distributed.run.
            assert trainer["command"][0] == "torchrun"
            command = [sys.executable, "-m", "torch.distributed.run", *trainer["command"][1:]]
            port = str(29400 + os.getpid() % 500)
            nodes = [
                subprocess.Popen(
                    command,
                    env={
                        **self.env_of(trainer),
                        "PET_NNODES": str(trainer["numNodes"]),
                        "PET_NPROC_PER_NODE": str(trainer["numProcPerNode"]),
                        "PET_NODE_RANK": str(rank),
                        "PET_MASTER_ADDR": "127.0.0.1",
                        "PET_MASTER_PORT": port,
                    },
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for rank in range(trainer["numNodes"])
            ]
            self.cluster.set_status(name, RUNNING)
            for node in nodes:
                self.outputs.append(node.communicate(timeout=900)[0])
                self.codes.append(node.returncode)
            if any(self.codes):
                self.cluster.set_status(name, condition("Failed", "FailedJobs", f"exit codes {self.codes}"))
            else:
                self.cluster.set_status(name, condition("Complete", "JobSetCompleted", "jobset completed"))
        except BaseException as exc:  # reported by the test; the job fails so that the step ends
            self.error = exc
            if self.job is not None:
                self.cluster.set_status(
                    self.job["metadata"]["name"], condition("Failed", "StandIn", repr(exc))
                )

    def first_job(self, timeout: float = 600.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                jobs = self.cluster.objects.list_namespaced_custom_object(
                    trainjob.GROUP, trainjob.VERSION, NAMESPACE, trainjob.PLURAL
                )["items"]
            except ApiException as exc:
                if exc.status != 404:  # kmock knows the resource once a first job exists
                    raise
                jobs = []
            if jobs:
                return jobs[0]
            time.sleep(0.1)
        raise TimeoutError(f"no TrainJob within {timeout} s")


@pytest.mark.slow
def test_the_train_pipeline_trains_its_model_on_two_nodes(cluster, s3_server, tmp_path, monkeypatch):
    """``train`` with ``nodes=2`` under kfp's local runner: the RL update step launches a TrainJob
    whose two nodes (local processes here) train together under torchrun against the real S3
    store, with credentials only from the Secret the job names; the step returns their model and
    the pipeline evaluates and reports it."""
    from modomodo.pipelines.local import run_locally

    prefix = f"s3://{s3_server.bucket}/trainjob-{os.getpid()}-{time.monotonic_ns()}"
    secret = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    secret["AWS_ENDPOINT_URL"] = s3_server.endpoint
    client.CoreV1Api(cluster.api).create_namespaced_secret(
        NAMESPACE,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="modomodo-s3"),
            data={k: base64.b64encode(v.encode()).decode() for k, v in secret.items()},
        ),
    )
    for key, value in {**secret, "KUBECONFIG": str(cluster.kubeconfig(tmp_path / "kubeconfig"))}.items():
        monkeypatch.setenv(key, value)  # the steps' environment, as the step pod gets it
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    stand_in = StandIn(cluster)
    thread = in_thread(stand_in)
    cfg = load_config("smoke", [*TINY, "name=twonodes"])
    local = run_locally("train", cfg, tmp_path / "out", store_uri=prefix, arguments={"nodes": 2})
    thread.join(60)
    assert stand_in.error is None, stand_in.error
    assert stand_in.codes == [0, 0], stand_in.outputs
    assert "rank 0 of 2" in stand_in.outputs[0] and "rank 1 of 2" in stand_in.outputs[1]
    trainer = stand_in.job["spec"]["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (2, 1)
    jsonschema.validate(stand_in.job, crd_schema()[0])
    store = ArtifactStore.from_uri(prefix)
    (run_id,) = [k.split("/")[1] for k in store.list_artifacts("runs/") if k.endswith("/model")]
    assert run_id.startswith("twonodes-train-")
    assert stand_in.job["metadata"]["name"] == trainjob.job_name(run_id)
    spec = json.loads(store.get_bytes(f"runs/{run_id}/trainjob/spec.json"))
    assert spec["data"].startswith("data/"), "the nodes read the curate step's copy of the data"
    run_record = json.loads(store.get_bytes(f"runs/{run_id}/model/run.json"))
    assert run_record["steps"] == 2 and run_record["run_id"] == run_id
    summary = json.loads(store.get_bytes(f"runs/{run_id}/model/train_summary.json"))
    assert summary["steps"] == 2 and summary["run_id"] == run_id
    assert store.read_manifest(f"runs/{run_id}/model").metadata["run_id"] == run_id
    # The step's pod evaluated the model the nodes trained, and the pipeline reported it.
    chosen = local.summary()["chosen"]
    assert (chosen["label"], chosen["run_id"]) == ("trained", run_id)
    assert "out_score" in chosen["scores"]
    # The finished step leaves no job running: the job is Complete.
    assert trainjob.job_state(cluster.job(trainjob.job_name(run_id)))[0] == "Complete"
