"""The multi-node RL update: a Kubeflow Trainer v2 ``TrainJob`` launched and followed by the step.

When a run asks for more than one node, the ``rl_update`` step stages the run's inputs in the
artifact store, creates a ``TrainJob`` (``trainer.kubeflow.org/v1alpha1``) on a torch
``ClusterTrainingRuntime`` whose nodes run ``modomodo.components.rl_node`` under ``torchrun``, follows
its conditions until ``Complete`` or ``Failed``, and downloads the final model the nodes stored.

Retries and cancellation: the job's name derives from the run id (itself a hash of the step's
inputs), so a retried step adopts the job its previous attempt started, or replaces it when it had
failed (the nodes resume from the run's checkpoints in the store). SIGTERM, which KFP sends to a
step it cancels, and KeyboardInterrupt delete the job. Jobs carry ``MANAGED_BY_LABEL`` and, in a
pod, an ownerReference to the launching pod, so leftovers can be found and are garbage-collected
with the run. docs/trainjob.md lists the RBAC rules this needs.

It lives beside the components rather than in ``modomodo.pipelines``: the step imports it, and
importing ``modomodo.pipelines`` inside a step loads kfp's compiler while kfp's executor is still
importing ``kfp.dsl`` (a circular import).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modomodo.components.rl_node import SUMMARY_FILES
from modomodo.config import ExperimentConfig
from modomodo.rl.grpo import TrainResult
from modomodo.store import ArtifactStore

if TYPE_CHECKING:  # importing modomodo.pipelines inside a step would import kfp's compiler mid-run
    from modomodo.pipelines.settings import ClusterSettings

logger = logging.getLogger(__name__)

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"
PLURAL = "trainjobs"
RUNTIME_PLURAL = "clustertrainingruntimes"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "modomodo-rl-update"
RUN_ANNOTATION = "modomodo.io/run-id"
PATCH_MANAGER = "modomodo.io/rl-update"
"""``runtimePatches`` manager: who set the nodes' placement."""
METRICS_POD_LABEL = ("modomodo.io/metrics", "true")
"""Label of pods that serve ``/metrics`` (the Helm chart's PodMonitor selects them)."""
NODE = "node"
"""Replicated job and container name of a Trainer runtime's training nodes."""
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
NAME_RULE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
"""The CRD's rule for ``metadata.name`` (an RFC 1035 label, at most 63 characters)."""


class TrainJobFailed(RuntimeError):
    """The TrainJob ended ``Failed``; the message carries its reason and the failed pods'."""


class Cancelled(BaseException):
    """SIGTERM arrived (KFP cancels a step this way). A BaseException, like KeyboardInterrupt, so
    that no ``except Exception`` on the way swallows it."""


@dataclass(frozen=True)
class NodeSettings:
    """What the TrainJob's nodes need from the compile-time cluster settings; the step receives it
    as its ``trainjob`` parameter (``to_dict``), since KFP parameters are JSON."""

    image: str
    """Image of every node: the runtime image of the step itself."""
    accelerator: str = "nvidia.com/gpu"
    """Extended resource a node requests ``gpus`` of."""
    cpu: str = "8"
    """CPU request of a node."""
    memory: str = "64Gi"
    """Memory request and limit of a node."""
    node_selector: dict[str, str] = field(default_factory=dict)
    """Node labels a GPU node requires."""
    tolerations: tuple[dict[str, str], ...] = ()
    """Taints of GPU nodes that the nodes tolerate."""
    s3_secret_keys: dict[str, str] = field(default_factory=dict)
    """Secret key -> environment variable: the artifact store's credentials."""
    metrics_port: int = 0
    """Port the first process of each node serves ``/metrics`` on; 0: off."""

    @classmethod
    def from_cluster(cls, cluster: ClusterSettings, image: str) -> NodeSettings:
        return cls(
            image=image,
            accelerator=cluster.accelerator,
            cpu=cluster.gpu_resources.cpu,
            memory=cluster.gpu_resources.memory,
            node_selector=dict(cluster.gpu_node_selector),
            tolerations=tuple(cluster.gpu_tolerations),
            s3_secret_keys=dict(cluster.s3_secret_keys),
            metrics_port=cluster.metrics_port,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tolerations": [dict(t) for t in self.tolerations]}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> NodeSettings:
        known = set(cls.__dataclass_fields__)
        if unknown := set(value) - known:
            raise ValueError(f"trainjob settings: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        if not value.get("image"):
            raise ValueError("trainjob settings: 'image' is required (the step's runtime image)")
        metrics_port = value.get("metrics_port", 0)
        return cls(
            **{**value, "tolerations": tuple(value.get("tolerations", ())), "metrics_port": int(metrics_port)}
        )


def job_name(run_id: str) -> str:
    """The TrainJob's deterministic name: readable prefix of the run id + its hash (RFC 1035, <= 63)."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    readable = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-")[:40].rstrip("-")
    name = f"rl-{readable}-{digest}" if readable else f"rl-{digest}"
    assert NAME_RULE.match(name) and len(name) <= 63, name
    return name


def build_train_job(
    *,
    name: str,
    run_id: str,
    runtime: str,
    nodes: int,
    gpus: int,
    command: list[str],
    settings: NodeSettings,
    s3_secret: str,
    owner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The TrainJob: ``nodes`` nodes of ``gpus`` GPUs (one process per GPU, one on CPU nodes), each
    running ``command`` in ``settings.image`` with the store's credentials from ``s3_secret``."""
    # Imported here: its 400 model modules take a second, which compiling a pipeline need not pay.
    from kubeflow_trainer_api import models as tm

    if nodes < 2:
        raise ValueError(f"a TrainJob is for multi-node runs: nodes={nodes} (a single node runs in the step)")
    if gpus < 0:
        raise ValueError(f"gpus={gpus}: must be >= 0")
    quantity = tm.IoK8sApimachineryPkgApiResourceQuantity
    limits = {"memory": quantity(settings.memory)}
    if gpus:
        limits[settings.accelerator] = quantity(str(gpus))
    env = _node_env(tm, settings, s3_secret)
    patches = _runtime_patches(tm, settings, gpus)
    owners = [tm.IoK8sApimachineryPkgApisMetaV1OwnerReference(**owner)] if owner else None
    job = tm.TrainerV1alpha1TrainJob(
        api_version=f"{GROUP}/{VERSION}",
        kind="TrainJob",
        metadata=tm.IoK8sApimachineryPkgApisMetaV1ObjectMeta(
            name=name,
            labels={MANAGED_BY_LABEL: MANAGED_BY},
            annotations={RUN_ANNOTATION: run_id},
            owner_references=owners,
        ),
        spec=tm.TrainerV1alpha1TrainJobSpec(
            runtime_ref=tm.TrainerV1alpha1RuntimeRef(
                api_group=GROUP, kind="ClusterTrainingRuntime", name=runtime
            ),
            trainer=tm.TrainerV1alpha1Trainer(
                image=settings.image,
                command=command,
                env=env or None,
                num_nodes=nodes,
                num_proc_per_node=max(gpus, 1),
                resources_per_node=tm.IoK8sApiCoreV1ResourceRequirements(
                    requests={"cpu": quantity(settings.cpu), "memory": quantity(settings.memory)},
                    limits=limits,
                ),
            ),
            runtime_patches=patches,
        ),
    )
    return job.to_dict()


def _node_env(tm, settings: NodeSettings, s3_secret: str) -> list:
    """Each node's environment: the store's credentials from ``s3_secret``, and the metrics port."""
    env = [
        tm.IoK8sApiCoreV1EnvVar(
            name=variable,
            value_from=tm.IoK8sApiCoreV1EnvVarSource(
                secret_key_ref=tm.IoK8sApiCoreV1SecretKeySelector(name=s3_secret, key=key)
            ),
        )
        for key, variable in sorted(settings.s3_secret_keys.items())
    ]
    if settings.metrics_port:
        from modomodo.metrics import METRICS_PORT_ENV

        env.append(tm.IoK8sApiCoreV1EnvVar(name=METRICS_PORT_ENV, value=str(settings.metrics_port)))
    return env


def _runtime_patches(tm, settings: NodeSettings, gpus: int) -> list | None:
    """The runtime's node pods: GPU placement, and the label the chart's PodMonitor scrapes by."""
    pod_spec = pod_meta = patches = None
    if gpus and (settings.node_selector or settings.tolerations):
        pod_spec = tm.TrainerV1alpha1PodSpecPatch(
            node_selector=settings.node_selector or None,
            tolerations=[tm.IoK8sApiCoreV1Toleration(**t) for t in settings.tolerations] or None,
        )
    if settings.metrics_port:
        pod_meta = tm.IoK8sApimachineryPkgApisMetaV1ObjectMeta(labels=dict([METRICS_POD_LABEL]))
    if pod_spec or pod_meta:
        patches = [
            tm.TrainerV1alpha1RuntimePatch(
                manager=PATCH_MANAGER,
                training_runtime_spec=tm.TrainerV1alpha1TrainingRuntimeSpecPatch(
                    template=tm.TrainerV1alpha1JobSetTemplatePatch(
                        spec=tm.TrainerV1alpha1JobSetSpecPatch(
                            replicated_jobs=[
                                tm.TrainerV1alpha1ReplicatedJobPatch(
                                    name=NODE,
                                    template=tm.TrainerV1alpha1JobTemplatePatch(
                                        spec=tm.TrainerV1alpha1JobSpecPatch(
                                            template=tm.TrainerV1alpha1PodTemplatePatch(
                                                metadata=pod_meta, spec=pod_spec
                                            )
                                        )
                                    ),
                                )
                            ]
                        )
                    )
                ),
            )
        ]
    return patches


def node_command(store_uri: str, spec_key: str) -> list[str]:
    """What each node runs: torchrun (its node count, rank and master come from the ``PET_*``
    variables the torch runtime sets) starting one ``rl_node`` process per GPU."""
    return ["torchrun", "--module", "modomodo.components.rl_node", "--store", store_uri, "--spec", spec_key]


def job_state(job: dict[str, Any]) -> tuple[str, str]:
    """``(phase, detail)`` of a TrainJob: ``Complete``/``Failed``/``Suspended`` from its conditions
    (Trainer v2's condition types), else ``Running`` when a child job is active, else ``Pending``."""
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    for phase in ("Failed", "Complete", "Suspended"):
        if phase in conditions:
            condition = conditions[phase]
            return phase, f"{condition.get('reason', '')}: {condition.get('message', '')}".strip(": ")
    if any((j.get("active") or 0) > 0 for j in status.get("jobsStatus") or []):
        return "Running", ""
    return "Pending", ""


@dataclass
class Launcher:
    """Creates, adopts, follows and deletes TrainJobs in one namespace."""

    api: client.ApiClient
    namespace: str
    poll_seconds: float = 10.0
    """Seconds between two reads of the job's status."""
    owner: dict[str, Any] | None = None
    """ownerReference (camelCase keys) of the launching pod; None outside a pod."""
    log: Callable[[str], None] = logger.info

    @property
    def objects(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def check_runtime(self, runtime: str) -> None:
        """Fail clearly unless ``runtime`` is a torch ClusterTrainingRuntime: the nodes start under
        torchrun, which an MPI runtime (``deepspeed-distributed``) would run on its launcher only."""
        try:
            found = self.objects.get_cluster_custom_object(GROUP, VERSION, RUNTIME_PLURAL, runtime)
        except ApiException as exc:
            if exc.status == 403:  # reading runtimes takes a ClusterRole, which a deployment may not grant
                self.log(f"may not read ClusterTrainingRuntime {runtime!r}: its mlPolicy is not checked")
                return
            if exc.status == 404:
                raise ValueError(
                    f"no ClusterTrainingRuntime {runtime!r}: install Kubeflow Trainer's runtimes or "
                    "pass the name of one with a torch mlPolicy (trainer_runtime)"
                ) from exc
            raise
        if "torch" not in (found.get("spec", {}).get("mlPolicy") or {}):
            raise ValueError(
                f"ClusterTrainingRuntime {runtime!r} has no torch mlPolicy: the RL update's nodes start "
                "under torchrun (DeepSpeed ZeRO runs inside it, from the config's train.deepspeed)"
            )

    def create_or_adopt(self, job: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
        """Create ``job``; when one of its name exists (an earlier attempt's), adopt it, unless it
        failed or is being deleted: then wait for it to go and create a new one."""
        name = job["metadata"]["name"]
        deadline = time.monotonic() + timeout
        while True:
            try:
                created = self.objects.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, job
                )
                self.log(f"created TrainJob {self.namespace}/{name}")
                return created
            except ApiException as exc:
                if exc.status != 409:
                    raise
            existing = self.get(name)
            phase, detail = job_state(existing) if existing else ("", "")
            if existing is None:
                self.log(f"TrainJob {name} went away between create and read; creating it again")
            elif existing["metadata"].get("deletionTimestamp"):
                self.log(f"TrainJob {name} is being deleted; waiting to create it anew")
            elif phase == "Failed":
                self.log(f"TrainJob {name} of an earlier attempt failed ({detail}); replacing it")
                self.delete(name)
            else:
                self.log(f"adopting TrainJob {self.namespace}/{name} of an earlier attempt ({phase})")
                self.add_owner(existing)
                return existing
            if time.monotonic() > deadline:
                raise TimeoutError(f"TrainJob {self.namespace}/{name} still exists after {timeout:.0f} s")
            time.sleep(self.poll_seconds)

    def add_owner(self, job: dict[str, Any]) -> None:
        """Add this pod to an adopted job's owners, so it is collected with this run too."""
        owners = job["metadata"].get("ownerReferences") or []
        if self.owner is None or any(o.get("uid") == self.owner["uid"] for o in owners):
            return
        patch = {"metadata": {"ownerReferences": [*owners, self.owner]}}
        try:
            self.objects.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, job["metadata"]["name"], patch
            )
        except ApiException as exc:
            if exc.status != 403:
                raise
            # Without patch the job keeps its first owner: a leftover is still found by its label.
            self.log(f"may not patch TrainJob {job['metadata']['name']}: not adding this pod as an owner")

    def delete(self, name: str) -> None:
        """Delete the job and, in the foreground, its JobSet and pods; gone already is fine."""
        try:
            self.objects.delete_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                body=client.V1DeleteOptions(propagation_policy="Foreground"),
            )
            self.log(f"deleted TrainJob {self.namespace}/{name}")
        except ApiException as exc:
            if exc.status != 404:
                raise

    def follow(self, name: str) -> dict[str, Any]:
        """Poll the job until it completes (returned) or fails (``TrainJobFailed``)."""
        last = None
        while True:
            job = self.get(name)
            if job is None:
                raise TrainJobFailed(f"TrainJob {self.namespace}/{name} was deleted before it completed")
            phase, detail = job_state(job)
            if phase != last:
                self.log(f"TrainJob {name}: {phase}" + (f" ({detail})" if detail else ""))
                last = phase
            if phase == "Complete":
                return job
            if phase == "Failed":
                pods = self.failed_pods(name)
                raise TrainJobFailed(
                    f"TrainJob {self.namespace}/{name} failed: {detail or 'no reason given'}"
                    + (f"; pods: {pods}" if pods else "")
                )
            time.sleep(self.poll_seconds)

    def failed_pods(self, name: str) -> str:
        """Why the job's pods ended (OOMKilled, exit codes), for the step's error; best effort: the
        job's own reason is reported even when pods cannot be read."""
        try:
            pods = client.CoreV1Api(self.api).list_namespaced_pod(
                self.namespace, label_selector=f"jobset.sigs.k8s.io/jobset-name={name}"
            )
        except ApiException as exc:
            return f"(cannot list pods: {exc.status} {exc.reason})"
        reasons = []
        for pod in pods.items:
            for status in pod.status.container_statuses or []:
                ended = status.state.terminated if status.state else None
                if ended is not None and ended.exit_code:
                    reasons.append(
                        f"{pod.metadata.name}/{status.name}: {ended.reason} (exit {ended.exit_code})"
                    )
        return ", ".join(reasons)

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """Create or adopt ``job`` and follow it to the end; delete it when the step is cancelled."""
        name = job["metadata"]["name"]
        with _sigterm_raises():
            self.create_or_adopt(job)
            try:
                return self.follow(name)
            except (Cancelled, KeyboardInterrupt):
                self.log(f"step cancelled: deleting TrainJob {self.namespace}/{name}")
                self.delete(name)
                raise


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into ``Cancelled`` while the job runs (signals reach the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def cancel(signum, frame):
        raise Cancelled(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def connect(poll_seconds: float = 10.0) -> Launcher:
    """A launcher for this pod's namespace and service account (in a cluster), else the current
    kubeconfig context's namespace; in a pod, jobs are owned by it (``HOSTNAME`` is its name)."""
    try:
        config.load_incluster_config()
        namespace = SA_NAMESPACE.read_text().strip()
        api = client.ApiClient()
        pod = client.CoreV1Api(api).read_namespaced_pod(os.environ["HOSTNAME"], namespace)
        owner = {"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name, "uid": pod.metadata.uid}
    except config.ConfigException:
        config.load_kube_config()
        _, context = config.list_kube_config_contexts()
        namespace = context["context"].get("namespace", "default")
        api, owner = client.ApiClient(), None
    return Launcher(api=api, namespace=namespace, poll_seconds=poll_seconds, owner=owner)


def stage_inputs(
    store: ArtifactStore, cfg: ExperimentConfig, run_id: str, data_dir: Path, base_model: Path, data_hash: str
) -> str:
    """Put what the nodes read into the store; returns the key of the run's spec. The curated data
    is the copy the curate step published (``data/<data_hash>``) when it is there; the base model,
    which lives only in the pipeline root, is uploaded once per run."""
    prefix = f"runs/{run_id}/trainjob"
    published = f"data/{data_hash}"
    data_key = published if data_hash and store.exists(published) else f"{prefix}/data"
    for key, local in ((data_key, data_dir), (f"{prefix}/base", base_model)):
        if not store.exists(key):
            store.put_dir(Path(local), key)
    spec = {
        "config": cfg.to_dict(),
        "run_id": run_id,
        "data": data_key,
        "base_model": f"{prefix}/base",
        "model": f"runs/{run_id}/model",
    }
    store.put_bytes(f"{prefix}/spec.json", json.dumps(spec, indent=2, sort_keys=True).encode())
    return f"{prefix}/spec.json"


def stage_on_nodes(
    *,
    nodes: int,
    gpus: int,
    runtime: str,
    s3_secret: str,
    settings: NodeSettings,
    data_hash: str = "",
    launcher: Launcher | None = None,
) -> Callable[..., TrainResult]:
    """``stages.rl_stage`` run by a TrainJob on ``nodes`` nodes of ``gpus`` GPUs: same signature,
    same result (the final model in ``out_dir/model``, ``train_summary.json`` and
    ``versions.json`` in ``out_dir``). ``data_hash`` names the curate step's copy of the data."""
    if not s3_secret and settings.s3_secret_keys:
        raise ValueError("a multi-node RL update needs s3_secret: the Secret its nodes read the store with")

    def rl_stage(
        cfg: ExperimentConfig,
        data_dir: Path,
        base_model: Path,
        out_dir: Path,
        *,
        run_id: str,
        store: ArtifactStore,
        resume: bool = True,
        metrics_port: int = 0,
        evaluate_to: Path | None = None,
    ) -> TrainResult:
        # resume and metrics_port: the nodes always resume and serve on settings.metrics_port.
        # evaluate_to: this pod, which waited for the nodes, evaluates the model they stored.
        nonlocal launcher
        launcher = launcher or connect()
        launcher.check_runtime(runtime)
        spec_key = stage_inputs(store, cfg, run_id, data_dir, base_model, data_hash)
        job = build_train_job(
            name=job_name(run_id),
            run_id=run_id,
            runtime=runtime,
            nodes=nodes,
            gpus=gpus,
            command=node_command(store.uri, spec_key),
            settings=settings,
            s3_secret=s3_secret,
            owner=launcher.owner,
        )
        launcher.run(job)
        model_dir = Path(out_dir) / "model"
        store.get_dir(json.loads(store.get_bytes(spec_key))["model"], model_dir)
        for name in SUMMARY_FILES:
            shutil.copy(model_dir / name, Path(out_dir) / name)
        summary = json.loads((model_dir / "train_summary.json").read_text())
        if evaluate_to is not None:
            from modomodo.stages.evaluate import evaluate_stage

            evaluate_stage(cfg, data_dir, model_dir, evaluate_to, run_id=run_id, mixture=summary["mixture"])
        return TrainResult(**{**summary, "model_dir": str(model_dir)})

    return rl_stage
