"""Stage 4, evaluate: greedy scores of a policy on every curated benchmark."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.data.curated import load_curated
from modomodo.mixture.pilots import FAILED_RUN_FILE
from modomodo.stages.common import stage_metrics


def evaluate_stage(
    cfg: ExperimentConfig,
    data_dir: Path,
    model_dir: Path,
    out_dir: Path,
    *,
    run_id: str = "",
    mixture: Mapping[str, float] | None = None,
    console=None,
):
    """Greedy evaluation of ``model_dir`` on every curated benchmark; ``mixture`` (what trained the
    model, if known) labels the metrics."""
    from modomodo.evaluation.evaluate import EvalResult, evaluate_policy
    from modomodo.policy.load import load_policy, policy_device

    if (Path(model_dir) / FAILED_RUN_FILE).is_file():  # a failed pilot: nothing to score
        return EvalResult([], None, None, cfg.eval.max_new_tokens)
    data = load_curated(data_dir)
    model, processor = load_policy(model_dir, cfg.policy.dtype, policy_device())
    metrics = stage_metrics(cfg, run_id or Path(out_dir).name, "evaluate", mixture)
    with metrics.stage_timer():
        result = evaluate_policy(
            model,
            processor,
            data.benchmarks,
            data.splits,
            replace(cfg.eval, metrics=cfg.benchmark_metrics()),
            Path(out_dir),
            on_benchmark=(lambda name, score: console.print(f"  {name}: {score:.3f}")) if console else None,
        )
        metrics.record_eval(
            {s.benchmark: s.score for s in result.scores if s.split == "in"},
            {s.benchmark: s.score for s in result.scores if s.split == "out"},
            result.in_score,
            result.out_score,
        )
    return result
