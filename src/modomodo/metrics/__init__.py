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
    METRICS_PORT_ENV,
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
    MetricKind,
    MetricSpec,
    mixture_label,
)
from modomodo.metrics.pushgateway import pushgateway_groups
from modomodo.metrics.stage import StageMetrics, peak_memory, push_accepted

__all__ = [
    "ACCEPT_STAGE",
    "BASE_LABELS",
    "DATA_QUARANTINED_ROWS",
    "DATA_ROWS",
    "DEFAULT_GRACE_S",
    "EVAL_ACCEPTED_SCORE",
    "EVAL_IN_SCORE",
    "EVAL_OUT_SCORE",
    "EVAL_SCORE",
    "GRACE_ENV",
    "LATEST_RUN",
    "METRICS",
    "METRICS_PORT_ENV",
    "MIXTURE_FINAL_PREDICTED_SCORE",
    "MIXTURE_FINAL_SCORE",
    "MIXTURE_PREDICTED_SCORE",
    "MIXTURE_SEARCH_TRIALS",
    "MIXTURE_SURROGATE_R2",
    "MIXTURE_WEIGHT",
    "MetricKind",
    "MetricSpec",
    "PUSHGATEWAY_ENV",
    "PUSH_JOB",
    "ROLLOUT_PASS_RATE",
    "ROLLOUT_ZERO_SIGNAL_PROMPTS",
    "STAGE_DURATION",
    "STAGE_FAILURES",
    "STAGE_LAST_SUCCESS",
    "STEP_SECONDS_BUCKETS",
    "StageMetrics",
    "TRAIN_ACCURACY",
    "TRAIN_KL",
    "TRAIN_LOSS",
    "TRAIN_PEAK_MEMORY",
    "TRAIN_REWARD",
    "TRAIN_SAMPLES",
    "TRAIN_STEPS",
    "TRAIN_STEP_SECONDS",
    "TRAIN_TOKENS_GENERATED",
    "TRAIN_TOKENS_PER_SECOND",
    "mixture_label",
    "peak_memory",
    "push_accepted",
    "pushgateway_groups",
]
