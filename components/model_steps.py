"""What the steps that make or score a model share: the base policy's build, and the recording of
an evaluation on the step's outputs (``metrics``, ``samples``, the returned score columns).

The ``evaluate`` component scores a model of another step; ``base_policy_and_evaluate`` and
``train_and_evaluate`` score the model they made, in the process that made it. Kept out of the
component modules so that the compiled components stay thin wrappers."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from modomodo.components import runtime
from modomodo.config import ExperimentConfig
from modomodo.mixture import pilots


def base_policy_run(config: dict, pushgateway: str, gpus: int, data, model) -> dict:
    """Build the base policy into the ``model`` artifact (``stages.base_policy_stage``); returns
    the run that made it (``run_id``, ``kind`` base, no mixture), which labels its evaluation."""
    from modomodo import stages
    from modomodo.stages.common import stage_metrics

    cfg = runtime.experiment_config(config, pushgateway)
    runtime.check_gpus(gpus)
    run = {
        "run_id": f"{cfg.name}-base-{runtime.fingerprint(config, data.uri)}",
        "kind": "base",
        "mixture": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        metrics = stage_metrics(cfg, run["run_id"], "warmstart")
        with metrics.stage_timer():
            built = stages.base_policy_stage(cfg, Path(data.path), Path(scratch))
        shutil.move(str(built), model.path)  # the model only; the tiny model's init stays behind
    runtime.annotate(
        model, cfg, **run, source=cfg.policy.model, sft_steps=cfg.sft.steps if cfg.sft.enabled else 0
    )
    return run


def evaluate_run(cfg: ExperimentConfig, run: dict[str, Any], data, model_dir: Path, metrics, samples) -> dict:
    """Evaluate ``model_dir`` (``stages.evaluate_stage``) into the ``samples`` artifact; returns
    the score columns, recorded as :func:`record_scores` does."""
    from modomodo import stages

    result = stages.evaluate_stage(
        cfg, Path(data.path), model_dir, Path(samples.path), run_id=run["run_id"], mixture=run.get("mixture")
    )
    return record_scores(cfg, run, result, metrics, samples)


def record_scores(cfg: ExperimentConfig, run: dict[str, Any], result, metrics, samples) -> dict[str, float]:
    """An evaluation's score columns (a run record's), logged on ``metrics``; ``samples`` gets
    the run id, mixture and decoding length that produced it."""
    columns = pilots.score_columns(result)
    runtime.log_metrics(metrics, columns)
    runtime.annotate(
        samples,
        cfg,
        run_id=run["run_id"],
        mixture=run.get("mixture", {}),
        max_new_tokens=result.max_new_tokens,
    )
    return columns
