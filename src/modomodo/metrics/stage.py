"""The metrics of one stage execution: recorded in a private registry, pushed or served."""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.exposition import delete_from_gateway, push_to_gateway, pushadd_to_gateway
from prometheus_client.metrics import MetricWrapperBase

from modomodo.metrics.names import (
    ACCEPT_STAGE,
    BASE_LABELS,
    DATA_QUARANTINED_ROWS,
    DATA_ROWS,
    DEFAULT_GRACE_S,
    EVAL_ACCEPTED_SCORE,
    EVAL_IN_SCORE,
    EVAL_OUT_SCORE,
    EVAL_SCORE,
    GRACE_ENV,
    LATEST_RUN,
    METRICS,
    MIXTURE_FINAL_PREDICTED_SCORE,
    MIXTURE_FINAL_SCORE,
    MIXTURE_PREDICTED_SCORE,
    MIXTURE_SEARCH_TRIALS,
    MIXTURE_SURROGATE_R2,
    MIXTURE_WEIGHT,
    PUSH_JOB,
    PUSHGATEWAY_ENV,
    ROLLOUT_PASS_RATE,
    ROLLOUT_ZERO_SIGNAL_PROMPTS,
    STAGE_DURATION,
    STAGE_FAILURES,
    STAGE_LAST_SUCCESS,
    STEP_SECONDS_BUCKETS,
    TRAIN_ACCURACY,
    TRAIN_KL,
    TRAIN_LOSS,
    TRAIN_PEAK_MEMORY,
    TRAIN_REWARD,
    TRAIN_SAMPLES,
    TRAIN_STEP_SECONDS,
    TRAIN_STEPS,
    TRAIN_TOKENS_GENERATED,
    TRAIN_TOKENS_PER_SECOND,
    MetricSpec,
    mixture_label,
)
from modomodo.metrics.pushgateway import _groups_with_push_time, _is_transient_push_error
from modomodo.redact import redact_text, redact_url
from modomodo.retry import RetryPolicy

logger = logging.getLogger(__name__)


def _build(spec: MetricSpec, registry: CollectorRegistry) -> MetricWrapperBase:
    labelnames = BASE_LABELS + spec.labels
    if spec.kind == "counter":
        # prometheus_client appends "_total" itself.
        return Counter(spec.name.removesuffix("_total"), spec.help, labelnames, registry=registry)
    if spec.kind == "gauge":
        return Gauge(spec.name, spec.help, labelnames, registry=registry)
    return Histogram(spec.name, spec.help, labelnames, registry=registry, buckets=STEP_SECONDS_BUCKETS)


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
