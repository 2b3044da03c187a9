"""Steps/s of `modomodo train` against a bare TRL GRPOTrainer script, same tiny model, data and batch.

    python benchmarks/grpo_overhead.py [--steps 30] [--repeats 2] [--workdir DIR]

Both variants train the same warm-started tiny Qwen2-VL on the same mixture schedule (same rows in
the same order) with the same GRPOConfig. The bare variant is what a user would write by hand:
a dataset, one reward function, GRPOTrainer. Ours adds the mixture sampler, per-domain reward routing
and logging, Prometheus metrics, checkpoint copies to the artifact store and the summary. Steps/s is
measured from the trainer's own ``train_runtime`` (model loading excluded in both). Runs alternate
(ours, bare, ours, bare, ...) so that machine load drifts hit both alike; the table shows the median.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from modomodo import stages
from modomodo.config import load_config
from modomodo.data.curated import load_curated
from modomodo.rewards.domains import reward_sets


def bare_trl(cfg, data_dir: Path, base: Path, out: Path, steps: int) -> float:
    """The hand-written baseline; returns steps/s."""
    from trl import GRPOTrainer

    from modomodo.policy.load import freeze_vision_tower, load_policy
    from modomodo.rewards import RewardContext
    from modomodo.rl.grpo import grpo_args, schedule_dataset, training_schedule

    data = load_curated(data_dir)
    dataset = schedule_dataset(
        data.train, training_schedule(data.train, cfg.train, cfg.resolved_mixture()).draws
    )
    sets = reward_sets(cfg)

    def reward(prompts, completions, domain, solution, answer_kind, options, **_):
        return [
            sets[d].score(c[-1]["content"], RewardContext(solution=s, answer_kind=k, options=tuple(o))).total
            for c, d, s, k, o in zip(completions, domain, solution, answer_kind, options, strict=True)
        ]

    model, processor = load_policy(base, "fp32")
    freeze_vision_tower(model)
    args = grpo_args(cfg, out, steps)
    args.save_strategy = "no"
    trainer = GRPOTrainer(
        model=model, reward_funcs=[reward], args=args, train_dataset=dataset, processing_class=processor
    )
    output = trainer.train()
    return steps / output.metrics["train_runtime"]


def ours(cfg, data_dir: Path, base: Path, out: Path, run_id: str) -> float:
    result = stages.rl_stage(cfg, data_dir, base, out, run_id=run_id)
    runtime = next(h["train_runtime"] for h in reversed(result.log_history) if "train_runtime" in h)
    return result.steps / runtime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="grpo-overhead-"))
    cfg = load_config(
        "smoke", [f"train.steps={args.steps}", f"train.checkpoint_every={args.steps}", "sft.steps=50"]
    )
    if not (work / "data" / "curation.json").exists():
        stages.curate_stage(cfg, work / "data")
    base = work / "base" / "model"
    if not base.exists():
        base = stages.base_policy_stage(cfg, work / "data", work / "base")
    rates: dict[str, list[float]] = {"modomodo train": [], "bare TRL GRPOTrainer": []}
    for i in range(args.repeats):
        rates["modomodo train"].append(
            ours(cfg, work / "data", base, work / f"ours-{i}", run_id=f"bench-{time.time_ns()}")
        )
        rates["bare TRL GRPOTrainer"].append(
            bare_trl(cfg, work / "data", base, work / f"bare-{i}", args.steps)
        )
    med = {k: statistics.median(v) for k, v in rates.items()}
    rollouts = cfg.train.prompts_per_step * cfg.train.num_generations
    print(f"\nGRPO overhead: tiny Qwen2-VL (hidden {cfg.policy.hidden_size}, {cfg.policy.num_layers} layers), "
          f"{args.steps} steps x {rollouts} rollouts x {cfg.train.max_completion_length} tokens, {args.repeats} repeats")  # fmt: skip
    print(f"{'variant':<24}{'steps/s (median)':>18}{'all runs':>28}")
    for name, values in rates.items():
        print(f"{name:<24}{med[name]:>18.3f}{', '.join(f'{v:.3f}' for v in values):>28}")
    ratio = med["modomodo train"] / med["bare TRL GRPOTrainer"]
    print(
        f"{'ratio (ours / bare)':<24}{ratio:>18.3f}   goal >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
