"""The rollout profile: pass rates of the base policy on the training prompts."""

from __future__ import annotations

from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.data.curated import load_curated
from modomodo.rewards.domains import reward_sets
from modomodo.stages.common import check_reward_kinds, stage_metrics


def rollout_stage(
    cfg: ExperimentConfig,
    data_dir: Path,
    model_dir: Path,
    out_dir: Path,
    *,
    run_id: str,
    prompts_per_domain: int = 0,
):
    """Profile the pass rates of ``model_dir`` on the training prompts (the first
    ``prompts_per_domain`` of each domain; 0 means all) with the RL update's sampling settings;
    writes ``pass_rates.json``."""
    from modomodo.policy.load import load_policy, policy_device
    from modomodo.rl.rollout import profile_pass_rates

    if prompts_per_domain < 0:
        raise ValueError(f"prompts_per_domain must be >= 0, got {prompts_per_domain}")
    data = load_curated(data_dir)
    check_reward_kinds(cfg, data.train)
    examples = [e for d in sorted(data.train) for e in data.train[d][: prompts_per_domain or None]]
    model, processor = load_policy(model_dir, cfg.policy.dtype, policy_device())
    metrics = stage_metrics(cfg, run_id, "rollout")
    with metrics.stage_timer():
        report = profile_pass_rates(
            model,
            processor,
            examples,
            reward_sets(cfg),
            num_generations=cfg.train.num_generations,
            temperature=cfg.train.temperature,
            max_new_tokens=cfg.train.max_completion_length,
            batch_size=max(1, cfg.eval.batch_size // cfg.train.num_generations),
            seed=cfg.train.seed,
        )
        metrics.record_pass_rates(report.pass_rates(), report.zero_signal_per_domain())
    report.save(Path(out_dir) / "pass_rates.json")
    return report
