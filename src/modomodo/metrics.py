"""Prometheus metrics of the pipeline stages, with fixed names that dashboards and alerts share.

Every series carries the labels ``run``, ``stage`` and ``mixture`` (a short label of the run's
mixture, empty when the stage has none), plus ``domain``/``benchmark``/... where the table in
``docs/metrics.md`` says so. Each stage run owns a private :class:`CollectorRegistry`, so two
stages in one process never mix their series.

Batch steps push (``pushadd`` to a Pushgateway, grouped by ``job=modomodo``, ``run``, ``stage``);
long-running pods can also serve ``/metrics``. A metrics outage never fails a stage: a push that
keeps failing is logged, not raised, unless ``strict=True``.

Pushgateway groups never expire by themselves, and every run id is new, so the run groups are
deleted when a pipeline ends (:meth:`StageMetrics.end_pipeline`, called by the report stage).
What alerts need beyond a run lives in groups without a run key, replaced on each push: the
last success of each stage (``run="latest"``) and the last accepted run (:func:`push_accepted`).

Typical use in a stage::

    metrics = StageMetrics(run="pilot-03", stage="train", mixture=mixture_label(weights))
    with metrics.stage_timer():          # duration, last success / failures, then push
        for step in ...:
            metrics.record_train_step(...)
"""

from __future__ import annotations

import json
import logging
import os
import resource
import time
import urllib.error
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.exposition import delete_from_gateway, push_to_gateway, pushadd_to_gateway
from prometheus_client.metrics import MetricWrapperBase

from modomodo.redact import redact_text, redact_url
from modomodo.retry import RetryPolicy

logger = logging.getLogger(__name__)

PUSHGATEWAY_ENV = "MODOMODO_PUSHGATEWAY"
"""Environment variable naming the Pushgateway (``host:port`` or URL) when ``push`` gets none."""
METRICS_PORT_ENV = "MODOMODO_METRICS_PORT"
"""Environment variable with the port a long-running stage serves ``/metrics`` on (unset or 0: off)."""
PUSH_JOB = "modomodo"
GRACE_ENV = "MODOMODO_PUSHGATEWAY_GRACE"
"""Environment variable: seconds a pushed group is kept after its last push before a pipeline's end
may delete it (default :data:`DEFAULT_GRACE_S`), so Prometheus scrapes it at least once."""
DEFAULT_GRACE_S = 120.0
"""Four scrapes at the Prometheus operator's default 30 s interval."""
"""The ``job`` of every pushed group; ``run`` and ``stage`` complete the grouping key."""

LATEST_RUN = "latest"
"""The ``run`` of the group that keeps each stage's last success beyond the end of its run."""
ACCEPT_STAGE = "accept"
"""The ``stage`` of the group holding the last accepted run's scores (see :func:`push_accepted`)."""

BASE_LABELS: tuple[str, ...] = ("run", "stage", "mixture")
"""Labels on every modomodo series."""

# Training (GRPO update)
TRAIN_STEPS = "modomodo_train_steps_total"
TRAIN_STEP_SECONDS = "modomodo_train_step_seconds"
TRAIN_TOKENS_GENERATED = "modomodo_train_tokens_generated_total"
TRAIN_REWARD = "modomodo_train_reward"
TRAIN_ACCURACY = "modomodo_train_accuracy"
TRAIN_SAMPLES = "modomodo_train_samples_total"
TRAIN_LOSS = "modomodo_train_loss"
TRAIN_KL = "modomodo_train_kl"
TRAIN_TOKENS_PER_SECOND = "modomodo_train_tokens_per_second"
TRAIN_PEAK_MEMORY = "modomodo_train_peak_memory_bytes"
# Evaluation
EVAL_SCORE = "modomodo_eval_score"
EVAL_IN_SCORE = "modomodo_eval_in_score"
EVAL_OUT_SCORE = "modomodo_eval_out_score"
EVAL_ACCEPTED_SCORE = "modomodo_eval_accepted_score"
# Any stage
STAGE_DURATION = "modomodo_stage_duration_seconds"
STAGE_LAST_SUCCESS = "modomodo_stage_last_success_timestamp_seconds"
STAGE_FAILURES = "modomodo_stage_failures_total"
# Rollout / pass-rate profiling
ROLLOUT_PASS_RATE = "modomodo_rollout_pass_rate"
ROLLOUT_ZERO_SIGNAL_PROMPTS = "modomodo_rollout_zero_signal_prompts"
# Data curation
DATA_ROWS = "modomodo_data_rows"
DATA_QUARANTINED_ROWS = "modomodo_data_quarantined_rows"
# Mixture: weights, surrogate, search
MIXTURE_WEIGHT = "modomodo_mixture_weight"
MIXTURE_SURROGATE_R2 = "modomodo_mixture_surrogate_r2"
MIXTURE_PREDICTED_SCORE = "modomodo_mixture_predicted_score"
MIXTURE_SEARCH_TRIALS = "modomodo_mixture_search_trials"
MIXTURE_FINAL_SCORE = "modomodo_mixture_final_score"
MIXTURE_FINAL_PREDICTED_SCORE = "modomodo_mixture_final_predicted_score"

MetricKind = Literal["counter", "gauge", "histogram"]

STEP_SECONDS_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
"""Histogram buckets of a training step: from tiny CPU models (0.1 s) to large GPU ones (minutes)."""


@dataclass(frozen=True)
class MetricSpec:
    """One documented metric family."""

    name: str
    """The exposed name (counters end in ``_total``)."""
    kind: MetricKind
    """Prometheus type."""
    labels: tuple[str, ...]
    """Labels besides :data:`BASE_LABELS`."""
    help: str
    """One-line meaning, also the ``# HELP`` text."""


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(TRAIN_STEPS, "counter", (), "Optimizer steps completed."),
    MetricSpec(TRAIN_STEP_SECONDS, "histogram", (), "Wall time of one training step (rollout + update)."),
    MetricSpec(TRAIN_TOKENS_GENERATED, "counter", (), "Completion tokens generated by rollouts."),
    MetricSpec(
        TRAIN_REWARD, "gauge", ("domain",), "Mean total reward of the last step's samples of the domain."
    ),
    MetricSpec(
        TRAIN_ACCURACY,
        "gauge",
        ("domain",),
        "Mean accuracy (or IoU) reward part of the last step's samples of the domain.",
    ),
    MetricSpec(
        TRAIN_SAMPLES, "counter", ("domain",), "Prompts drawn from the domain by the mixture sampler."
    ),
    MetricSpec(TRAIN_LOSS, "gauge", (), "Training loss of the last step."),
    MetricSpec(TRAIN_KL, "gauge", (), "KL divergence to the reference policy at the last step."),
    MetricSpec(
        TRAIN_TOKENS_PER_SECOND,
        "gauge",
        (),
        "Completion tokens generated per second of step time over the last logged steps.",
    ),
    MetricSpec(
        TRAIN_PEAK_MEMORY,
        "gauge",
        ("device",),
        "Peak memory of the training process: allocated per CUDA device, else the CPU process's max RSS.",
    ),
    MetricSpec(
        EVAL_SCORE,
        "gauge",
        ("benchmark", "split"),
        "Score on one benchmark; split is 'in' or 'out' of domain.",
    ),
    MetricSpec(
        EVAL_IN_SCORE, "gauge", (), "In-domain score: sample-count-weighted mean over in-domain benchmarks."
    ),
    MetricSpec(
        EVAL_OUT_SCORE,
        "gauge",
        (),
        "Out-of-domain score: sample-count-weighted mean over out-of-domain benchmarks.",
    ),
    MetricSpec(
        EVAL_ACCEPTED_SCORE,
        "gauge",
        ("score",),
        "A score column (in_score, out_score...) of the last accepted run, the regression baseline.",
    ),
    MetricSpec(STAGE_DURATION, "gauge", (), "Wall time of the stage's last execution, failed or not."),
    MetricSpec(STAGE_LAST_SUCCESS, "gauge", (), "Unix time the stage last finished successfully."),
    MetricSpec(
        STAGE_FAILURES, "counter", (), "Executions of the stage that raised an error or whose pod was killed."
    ),
    MetricSpec(
        ROLLOUT_PASS_RATE,
        "gauge",
        ("domain",),
        "Fraction of sampled completions that earned the accuracy reward.",
    ),
    MetricSpec(
        ROLLOUT_ZERO_SIGNAL_PROMPTS,
        "gauge",
        ("domain",),
        "Profiled prompts whose completions all earned the same total reward (no GRPO signal).",
    ),
    MetricSpec(DATA_ROWS, "gauge", ("domain", "split"), "Curated rows written per domain and split."),
    MetricSpec(
        DATA_QUARANTINED_ROWS, "gauge", ("domain",), "Rows rejected by validation (kept with reasons)."
    ),
    MetricSpec(MIXTURE_WEIGHT, "gauge", ("domain",), "Sampling weight of the domain in the run's mixture."),
    MetricSpec(MIXTURE_SURROGATE_R2, "gauge", ("model",), "Cross-validated R^2 of a fitted surrogate model."),
    MetricSpec(MIXTURE_PREDICTED_SCORE, "gauge", (), "Surrogate-predicted score of the best mixture found."),
    MetricSpec(
        MIXTURE_SEARCH_TRIALS,
        "gauge",
        (),
        "Optuna trials of the mixture search beyond the observed mixtures it starts from (search.trials).",
    ),
    MetricSpec(
        MIXTURE_FINAL_SCORE,
        "gauge",
        ("score",),
        "A score column (in_score, out_score, <benchmark>_score) of the pipeline's final run, from its report.",
    ),
    MetricSpec(
        MIXTURE_FINAL_PREDICTED_SCORE,
        "gauge",
        ("score",),
        "Surrogate-predicted search.target score of the final (chosen) mixture, from its report.",
    ),
)
"""Every metric modomodo exports; ``docs/metrics.md`` documents exactly this list."""


def mixture_label(weights: Mapping[str, float]) -> str:
    """Short, stable label of a mixture for the ``mixture`` label: ``"a=0.50,b=0.25,c=0.25"``
    (domains sorted, zero weights left out)."""
    return ",".join(f"{domain}={w:.2f}" for domain, w in sorted(weights.items()) if w > 0)


def _build(spec: MetricSpec, registry: CollectorRegistry) -> MetricWrapperBase:
    labelnames = BASE_LABELS + spec.labels
    if spec.kind == "counter":
        # prometheus_client appends "_total" itself.
        return Counter(spec.name.removesuffix("_total"), spec.help, labelnames, registry=registry)
    if spec.kind == "gauge":
        return Gauge(spec.name, spec.help, labelnames, registry=registry)
    return Histogram(spec.name, spec.help, labelnames, registry=registry, buckets=STEP_SECONDS_BUCKETS)


def _is_transient_push_error(exc: BaseException) -> bool:
    # A 4xx (e.g. inconsistent labels) will not heal by retrying; refused connections and 5xx may.
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500
    return isinstance(exc, OSError)


class StageMetrics:
    """The metrics of one stage execution of one run, in a private registry."""

    def __init__(
        self,
        run: str,
        stage: str,
        mixture: str = "",
        *,
        gateway: str = "",
        push_retry: RetryPolicy = RetryPolicy(attempts=3, base_delay=1.0),
        push_timeout: float = 10.0,
    ) -> None:
        for what, value in (("run", run), ("stage", stage)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"StageMetrics needs a non-empty {what} name, got {value!r}")
        self.run, self.stage, self.mixture = run, stage, mixture
        self.gateway = gateway
        self.push_retry = push_retry
        self.push_timeout = push_timeout
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics = {spec.name: _build(spec, self.registry) for spec in METRICS}
        # Exported at 0 from the start so that increase()-based failure alerts see the first one.
        self._series(STAGE_FAILURES)

    def _series(self, name: str, **labels: str) -> MetricWrapperBase:
        return self._metrics[name].labels(run=self.run, stage=self.stage, mixture=self.mixture, **labels)

    # Recording -------------------------------------------------------------------------------

    def record_train_step(
        self,
        step_seconds: float,
        tokens: int,
        rewards: Mapping[str, float],
        accuracies: Mapping[str, float],
        samples: Mapping[str, int],
        loss: float | None = None,
        kl: float | None = None,
        steps: int = 1,
        peak_memory: Mapping[str, int] | None = None,
    ) -> None:
        """Record the ``steps`` optimizer steps since the last record (trainers log every few):
        the time of one step (their mean; not observed when ``steps`` is 0), tokens generated
        (and their rate over the steps' time, when that is known), the per-domain mean
        reward/accuracy of the latest samples, prompts drawn per domain, loss and KL when the
        trainer reports them, and peak memory per device (see :func:`peak_memory`). A domain
        absent here keeps its last value."""
        if steps < 0:
            raise ValueError(f"record_train_step needs steps >= 0, got {steps}")
        self._series(TRAIN_STEPS).inc(steps)
        step_time = self._series(TRAIN_STEP_SECONDS)
        for _ in range(steps):  # keeps the histogram's _count equal to the step counter
            step_time.observe(step_seconds)
        self._series(TRAIN_TOKENS_GENERATED).inc(tokens)
        if steps and step_seconds > 0:
            self._series(TRAIN_TOKENS_PER_SECOND).set(tokens / (step_seconds * steps))
        for device, used in (peak_memory or {}).items():
            self._series(TRAIN_PEAK_MEMORY, device=device).set(used)
        for domain, reward in rewards.items():
            self._series(TRAIN_REWARD, domain=domain).set(reward)
        for domain, accuracy in accuracies.items():
            self._series(TRAIN_ACCURACY, domain=domain).set(accuracy)
        for domain, count in samples.items():
            self._series(TRAIN_SAMPLES, domain=domain).inc(count)
        if loss is not None:
            self._series(TRAIN_LOSS).set(loss)
        if kl is not None:
            self._series(TRAIN_KL).set(kl)

    def record_eval(
        self,
        in_scores: Mapping[str, float],
        out_scores: Mapping[str, float],
        in_score: float | None = None,
        out_score: float | None = None,
    ) -> None:
        """Per-benchmark scores (in-domain and out-of-domain) and the aggregated In/Out scores."""
        overlap = in_scores.keys() & out_scores.keys()
        if overlap:
            raise ValueError(f"benchmarks {sorted(overlap)} are listed both in and out of domain")
        for split, scores in (("in", in_scores), ("out", out_scores)):
            for benchmark, score in scores.items():
                self._series(EVAL_SCORE, benchmark=benchmark, split=split).set(score)
        if in_score is not None:
            self._series(EVAL_IN_SCORE).set(in_score)
        if out_score is not None:
            self._series(EVAL_OUT_SCORE).set(out_score)

    def record_data(self, rows: Mapping[str, Mapping[str, int]], quarantined: Mapping[str, int]) -> None:
        """Curated rows as ``rows[domain][split]`` and quarantined rows per domain."""
        for domain, per_split in rows.items():
            for split, count in per_split.items():
                self._series(DATA_ROWS, domain=domain, split=split).set(count)
        for domain, count in quarantined.items():
            self._series(DATA_QUARANTINED_ROWS, domain=domain).set(count)

    def record_pass_rates(
        self, pass_rates: Mapping[str, float], zero_signal: Mapping[str, int] | None = None
    ) -> None:
        """Per-domain pass rate of a rollout profile and, optionally, its prompts without GRPO signal."""
        for domain, rate in pass_rates.items():
            self._series(ROLLOUT_PASS_RATE, domain=domain).set(rate)
        for domain, count in (zero_signal or {}).items():
            self._series(ROLLOUT_ZERO_SIGNAL_PROMPTS, domain=domain).set(count)

    def record_mixture(self, weights: Mapping[str, float]) -> None:
        """The run's mixture weights, one series per domain."""
        for domain, weight in weights.items():
            self._series(MIXTURE_WEIGHT, domain=domain).set(weight)

    def record_surrogate(self, cv_r2: Mapping[str, float]) -> None:
        """Cross-validated R^2 per fitted surrogate model (``quadratic``, baselines...)."""
        for model, r2 in cv_r2.items():
            self._series(MIXTURE_SURROGATE_R2, model=model).set(r2)

    def record_search(self, predicted_score: float, trials: int) -> None:
        """Outcome of a mixture search: best predicted score and number of trials."""
        self._series(MIXTURE_PREDICTED_SCORE).set(predicted_score)
        self._series(MIXTURE_SEARCH_TRIALS).set(trials)

    def record_final(self, scores: Mapping[str, float], predicted: Mapping[str, float] | None = None) -> None:
        """The pipeline's final run as its report sees it: its score columns and, after a search,
        the surrogate's prediction for the chosen mixture (by score column)."""
        for column, score in scores.items():
            self._series(MIXTURE_FINAL_SCORE, score=column).set(score)
        for column, score in (predicted or {}).items():
            self._series(MIXTURE_FINAL_PREDICTED_SCORE, score=column).set(score)

    def record_earlier_failures(self, count: int) -> None:
        """Failures of earlier attempts of this stage of this run (raised, or lost with their pod),
        so that a retried stage's failure counter goes on instead of restarting at 0."""
        self._series(STAGE_FAILURES).inc(count)

    @contextmanager
    def stage_timer(self, push: bool = True) -> Iterator[None]:
        """Time the enclosed stage body: always its duration, then the last-success time on
        success or one more failure on an exception (re-raised). Pushes at the end unless
        ``push=False`` (a no-op when no Pushgateway is configured); a success also replaces the
        stage's ``run="latest"`` group, which outlives the run's own group."""
        start = time.monotonic()
        succeeded = False
        try:
            yield
            succeeded = True
        except BaseException:
            self._series(STAGE_FAILURES).inc()
            raise
        finally:
            finished = time.time()
            if succeeded:
                self._series(STAGE_LAST_SUCCESS).set(finished)
            self._series(STAGE_DURATION).set(time.monotonic() - start)
            if push and self.push() and succeeded:
                self._push_latest_success(finished)

    def _push_latest_success(self, finished: float) -> bool:
        latest = CollectorRegistry(auto_describe=True)
        spec = next(s for s in METRICS if s.name == STAGE_LAST_SUCCESS)
        _build(spec, latest).labels(run=LATEST_RUN, stage=self.stage, mixture=self.mixture).set(finished)
        return self._send(latest, {"run": LATEST_RUN, "stage": self.stage}, replace=True)

    # Export ----------------------------------------------------------------------------------

    def gateway_url(self, gateway: str | None = None) -> str:
        """The Pushgateway to use: ``gateway``, else the one given at construction, else
        ``$MODOMODO_PUSHGATEWAY``; empty when none is configured."""
        return gateway or self.gateway or os.environ.get(PUSHGATEWAY_ENV, "")

    def push(self, gateway: str | None = None, *, strict: bool = False) -> bool:
        """Push-add this registry to :meth:`gateway_url`, grouped by ``job``, ``run`` and
        ``stage``; True if pushed.

        Without a gateway this does nothing. Transient failures are retried with backoff; a
        failure that persists is logged as a warning and False returned, or raised if ``strict``.
        """
        return self._send(
            self.registry, {"run": self.run, "stage": self.stage}, gateway=gateway, strict=strict
        )

    def _send(
        self,
        registry: CollectorRegistry,
        grouping_key: dict[str, str],
        *,
        replace: bool = False,
        gateway: str | None = None,
        strict: bool = False,
    ) -> bool:
        url = self.gateway_url(gateway)
        if not url:
            return False
        send = push_to_gateway if replace else pushadd_to_gateway  # PUT replaces the whole group
        try:
            self.push_retry.call(
                lambda: send(
                    url, job=PUSH_JOB, registry=registry, grouping_key=grouping_key, timeout=self.push_timeout
                ),
                is_transient=_is_transient_push_error,
                what=f"push metrics to {redact_url(url)}",
            )
        except Exception as exc:
            if strict:
                raise
            logger.warning(
                "metrics of run %r stage %r not pushed to %s (%s: %s); the stage goes on",
                self.run,
                self.stage,
                redact_url(url),
                type(exc).__name__,
                redact_text(str(exc)),
            )
            return False
        return True

    def end_pipeline(
        self, experiment: str, *, grace_s: float | None = None, strict: bool = False
    ) -> list[dict[str, str]]:
        """Delete the Pushgateway groups of a pipeline that ended: every group whose run belongs
        to ``experiment`` (run ids ``<experiment>-...``) and every earlier report's group.
        A group pushed less than ``grace_s`` seconds ago (default ``$MODOMODO_PUSHGATEWAY_GRACE``,
        else :data:`DEFAULT_GRACE_S`) stays, so Prometheus scrapes it first; the experiment's
        next pipeline end deletes it. This stage's own group and the groups without a run
        (``run="latest"`` last successes, the accepted run) stay. Returns the grouping keys
        deleted; a Pushgateway that cannot be reached is logged (raised if ``strict``)."""
        if not experiment:
            raise ValueError("end_pipeline needs the experiment name whose runs ended")
        if grace_s is None:
            grace_s = float(os.environ.get(GRACE_ENV) or DEFAULT_GRACE_S)
        url = self.gateway_url()
        if not url:
            return []
        try:
            groups = self.push_retry.call(
                lambda: _groups_with_push_time(url, timeout=self.push_timeout),
                is_transient=_is_transient_push_error,
                what=f"list the groups of {url}",
            )
            now = time.time()
            ended = [
                g
                for g, pushed in groups
                if g.get("run", LATEST_RUN) not in (LATEST_RUN, self.run)
                and (g["run"].startswith(f"{experiment}-") or g.get("stage") == self.stage)
                and now - pushed >= grace_s
            ]
            for group in ended:
                key = {k: v for k, v in group.items() if k != "job"}
                self.push_retry.call(
                    lambda key=key: delete_from_gateway(
                        url, job=PUSH_JOB, grouping_key=key, timeout=self.push_timeout
                    ),
                    is_transient=_is_transient_push_error,
                    what=f"delete the group {key} from {url}",
                )
        except Exception as exc:
            if strict:
                raise
            logger.warning(
                "Pushgateway groups of experiment %r not deleted from %s (%s: %s)",
                experiment,
                url,
                type(exc).__name__,
                exc,
            )
            return []
        return ended

    def serve(self, port: int, addr: str = "0.0.0.0") -> WSGIServer:
        """Serve ``/metrics`` from a daemon thread (for long-running pods). Port 0 picks a free
        port (``server.server_port``); ``server.shutdown()`` stops it."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server

    def render(self) -> str:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry).decode()


def pushgateway_groups(gateway: str, timeout: float = 10.0) -> list[dict[str, str]]:
    """The grouping keys (``job`` included) of the modomodo groups on the Pushgateway ``gateway``
    (``host:port`` or URL), from its ``/api/v1/metrics``."""
    return [labels for labels, _pushed in _groups_with_push_time(gateway, timeout)]


def _groups_with_push_time(gateway: str, timeout: float) -> list[tuple[dict[str, str], float]]:
    base = gateway if "://" in gateway else f"http://{gateway}"
    with urllib.request.urlopen(f"{base.rstrip('/')}/api/v1/metrics", timeout=timeout) as response:
        data = json.load(response)["data"]
    return [
        (group["labels"], float(group["push_time_seconds"]["metrics"][0]["value"]))
        for group in data
        if group["labels"].get("job") == PUSH_JOB
    ]


def peak_memory() -> dict[str, int]:
    """Peak memory of this process per device, in bytes: allocated memory of each CUDA device
    torch has initialised, else (CPU training) the process's maximum resident set size."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return {f"cuda:{i}": torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count())}
    return {"cpu": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}  # Linux: KiB


def push_accepted(
    run: str,
    scores: Mapping[str, float],
    mixture: Mapping[str, float] | None = None,
    *,
    gateway: str = "",
    strict: bool = True,
) -> bool:
    """Publish ``run`` as the accepted run: its score columns (``in_score``, ``out_score``...)
    become ``modomodo_eval_accepted_score{score=...}``, the baseline of the evaluation-regression
    alert. The ``stage="accept"`` group is replaced, so it always holds exactly the last accepted
    run. Raises when the push fails unless ``strict=False``; False when no gateway is configured."""
    if not scores:
        raise ValueError(f"push_accepted needs the accepted run's scores, got none for {run!r}")
    metrics = StageMetrics(run=run, stage=ACCEPT_STAGE, mixture=mixture_label(mixture or {}), gateway=gateway)
    for column, score in scores.items():
        metrics._series(EVAL_ACCEPTED_SCORE, score=column).set(score)
    metrics._series(STAGE_LAST_SUCCESS).set_to_current_time()
    return metrics._send(metrics.registry, {"stage": ACCEPT_STAGE}, replace=True, strict=strict)
