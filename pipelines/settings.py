"""How each step runs on a cluster: GPU, resources, placement, secrets, retries and caching.

The table ``STEPS`` is the single place these decisions live (``docs/pipelines.md`` explains them).
The S3 Secret's name is a pipeline parameter; everything else here, the GPU count included, is
compiled into the IR as constants (``ClusterSettings``, chosen when compiling): whether a step asks
for GPU nodes at all must be known then. kfp's local runner ignores resources, placement, retries
and caching.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kfp import dsl, kubernetes

from modomodo.metrics import METRICS_PORT_ENV


@dataclass(frozen=True)
class Resources:
    cpu: str
    """CPU request (cores, or millicores like ``500m``)."""
    memory: str
    """Memory request and limit (``64Gi``); equal, so a step is never OOM-killed for using what it asked for."""


@dataclass(frozen=True)
class ClusterSettings:
    """Compile-time placement of the steps on a Kubernetes cluster."""

    gpus: int = 1
    """GPUs each GPU step requests (``accelerator``); the RL update starts one training process per
    GPU. 0 compiles the GPU steps as CPU steps: no accelerator, node selector or tolerations, so
    they schedule on CPU nodes."""
    accelerator: str = "nvidia.com/gpu"
    """Extended resource a GPU step requests."""
    gpu_resources: Resources = Resources(cpu="8", memory="64Gi")
    """CPU and memory of a GPU step (data loading, generation bookkeeping, model copies); also with
    ``gpus`` 0, where the same work runs on the CPU."""
    cpu_resources: Resources = Resources(cpu="2", memory="8Gi")
    """CPU and memory of every other step."""
    gpu_node_selector: dict[str, str] = field(default_factory=lambda: {"nvidia.com/gpu.present": "true"})
    """Node labels a GPU step requires (the NVIDIA GPU operator sets this one)."""
    gpu_tolerations: tuple[dict[str, str], ...] = (
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    )
    """Taints of GPU nodes that GPU steps tolerate."""
    s3_secret_keys: dict[str, str] = field(
        default_factory=lambda: {
            "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
        }
    )
    """Secret key -> environment variable, for the steps that use the artifact store."""
    study_secret: str = "modomodo-study"
    """Optional Secret whose key ``url`` (an RDB URL, e.g. PostgreSQL) persists Optuna studies;
    without it the study is a SQLite file inside the search step's output."""
    study_volume: str = ""
    """PVC mounted at ``study_mount_path`` into the steps that use the study, for a SQLite study
    file that outlives the run (the Helm chart's default: PVC and Secret ``modomodo-study``, whose
    ``url`` names a file there); "": none."""
    study_mount_path: str = "/mnt/modomodo-study"
    """Where ``study_volume`` is mounted."""
    metrics_port: int = 9400
    """Port on which the long-running steps (the RL update) serve ``/metrics`` while they run, with
    the pod label ``METRICS_POD_LABEL`` that a PodMonitor selects and the
    ``prometheus.io/scrape|port|path`` annotations of annotation-based discovery; 0: off (they
    still push to the Pushgateway)."""
    retry_backoff: str = "60s"
    """Wait before the first retry; doubled for each further one."""
    retries: bool = True
    """Give the steps their retry policies. kfp's local runner honours them too, but a local
    failure is no preemption: local runs turn them off rather than wait minutes to fail again."""
    threads: int | None = None
    """``OMP_NUM_THREADS`` of every step; None: its CPU request. PyTorch otherwise starts one
    thread per core it sees, which in a pod is every core of the node, far more than its share."""
    loop_threads: int | None = None
    """``OMP_NUM_THREADS`` of the steps inside a ``ParallelFor``; None: as ``threads``. Local runs,
    where parallel pilots share one machine, give each pilot its share of the cores."""


@dataclass(frozen=True)
class Step:
    """How one component runs."""

    gpu: bool
    retries: int
    """Attempts after a failure; only for idempotent steps whose failures can be transient."""
    cache: bool
    """KFP reuses an earlier execution with the same inputs: only for steps whose outputs are a
    function of their inputs (no reads of mutable external state, no per-run side effects)."""
    s3: bool = False
    """Gets the S3 credentials (uses the artifact store)."""
    study: bool = False
    """Gets the optional Optuna storage URL."""
    serves_metrics: bool = False
    """Runs long enough to be scraped: serves ``/metrics`` on ``ClusterSettings.metrics_port``."""
    process_per_gpu: bool = False
    """Starts one process per GPU: each gets an equal share of the step's threads."""


STEPS: dict[str, Step] = {
    # Reads sources that may change under the same name; cached only when every source is the
    # deterministic synthetic generator (decided per config when compiling).
    "curate-data": Step(gpu=False, retries=2, cache=True, s3=True),
    "base-policy": Step(gpu=True, retries=2, cache=True),
    # What the pipelines run: the base policy, evaluated in the process that built it.
    "base-policy-and-evaluate": Step(gpu=True, retries=2, cache=True),
    "rollout-reward": Step(gpu=True, retries=2, cache=True),
    # Resumes from its own checkpoints in the store (run id = hash of the inputs), so a retry
    # continues; GPU nodes are where preemptions and evictions happen.
    "rl-update": Step(gpu=True, retries=3, cache=True, s3=True, serves_metrics=True, process_per_gpu=True),
    # Reads the trained model from the store (the model artifact only refers to it).
    "evaluate": Step(gpu=True, retries=2, cache=True, s3=True),
    # The RL update and the evaluation of its model in one pod (what the pipelines run): the RL
    # update's settings, as its training resumes and evaluation is idempotent.
    "train-and-evaluate": Step(
        gpu=True, retries=3, cache=True, s3=True, serves_metrics=True, process_per_gpu=True
    ),
    # Pure computations on small inputs: a failure is deterministic, retrying only delays it.
    "plan-seed-pilots": Step(gpu=False, retries=0, cache=True),
    "plan-heuristic-pilots": Step(gpu=False, retries=0, cache=True),
    "fit-surrogate": Step(gpu=False, retries=0, cache=True),
    # Talks to the study database; its study name derives from the inputs, so a retry resumes it.
    "search-mixture": Step(gpu=False, retries=2, cache=True, study=True),
    # Publishes this run's report to the store and marks the run done in the metrics: a cache hit
    # would skip both for the new run.
    "report": Step(gpu=False, retries=2, cache=False, s3=True),
}


METRICS_POD_LABEL = ("modomodo.io/metrics", "true")
"""Pod label of the steps that serve ``/metrics``: what the chart's PodMonitor selects
(kube-prometheus-stack ignores the ``prometheus.io`` annotations)."""


@dataclass(frozen=True)
class Placement:
    """Applies ``STEPS`` to tasks inside a pipeline function (where the parameters are channels)."""

    s3_secret: Any
    """The pipeline parameter with the S3 Secret's name (or a constant)."""
    cluster: ClusterSettings
    cache_data: bool = True

    def __call__(self, task: dsl.PipelineTask, *, in_loop: bool = False) -> dsl.PipelineTask:
        name = task.component_spec.name
        if name not in STEPS:
            raise KeyError(f"no step settings for component {name!r}; add it to pipelines.settings.STEPS")
        step = STEPS[name]
        resources = self.cluster.gpu_resources if step.gpu else self.cluster.cpu_resources
        task.set_cpu_request(resources.cpu)
        task.set_memory_request(resources.memory).set_memory_limit(resources.memory)
        threads = (
            (in_loop and self.cluster.loop_threads) or self.cluster.threads or cpu_threads(resources.cpu)
        )
        if step.process_per_gpu and self.cluster.gpus > 1:
            threads = max(1, threads // self.cluster.gpus)
        task.set_env_variable("OMP_NUM_THREADS", str(threads))
        if step.gpu and self.cluster.gpus:
            task.set_accelerator_type(self.cluster.accelerator).set_accelerator_limit(self.cluster.gpus)
            for key, value in self.cluster.gpu_node_selector.items():
                kubernetes.add_node_selector(task, label_key=key, label_value=value)
            for toleration in self.cluster.gpu_tolerations:
                kubernetes.add_toleration(task, **toleration)
        if step.s3:
            kubernetes.use_secret_as_env(
                task, secret_name=self.s3_secret, secret_key_to_env=self.cluster.s3_secret_keys
            )
        if step.study:
            kubernetes.use_secret_as_env(
                task,
                secret_name=self.cluster.study_secret,
                secret_key_to_env={"url": "MODOMODO_STUDY_STORAGE"},
                optional=True,
            )
            if self.cluster.study_volume:
                kubernetes.mount_pvc(
                    task, pvc_name=self.cluster.study_volume, mount_path=self.cluster.study_mount_path
                )
        if step.serves_metrics and self.cluster.metrics_port:
            port = str(self.cluster.metrics_port)
            task.set_env_variable(METRICS_PORT_ENV, port)
            kubernetes.add_pod_label(task, label_key=METRICS_POD_LABEL[0], label_value=METRICS_POD_LABEL[1])
            for key, value in (("scrape", "true"), ("port", port), ("path", "/metrics")):
                kubernetes.add_pod_annotation(
                    task, annotation_key=f"prometheus.io/{key}", annotation_value=value
                )
        if step.retries and self.cluster.retries:
            task.set_retry(step.retries, backoff_duration=self.cluster.retry_backoff, backoff_factor=2.0)
        task.set_caching_options(step.cache and (self.cache_data or name != "curate-data"))
        return task


def cpu_threads(cpu: str) -> int:
    """Whole cores of a Kubernetes CPU quantity (``8``, ``2.5``, ``500m``), at least 1."""
    cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    return max(1, int(cores))
