"""Trainer callbacks: Prometheus metrics per logged step, and a progress bar for the CLI."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import TrainerCallback

from modomodo.metrics import StageMetrics, peak_memory
from modomodo.progress import progress_bar
from modomodo.rl.sampler import Draw, realised_counts


class MetricsCallback(TrainerCallback):
    """Feed each trainer log line into :class:`StageMetrics` and push every ``push_every`` logs.

    Per-domain rewards come from the ``reward/<domain>`` and ``accuracy/<domain>`` entries that
    :class:`~modomodo.rl.grpo.DomainRewards` logs; prompts drawn per domain come from the schedule.
    """

    def __init__(
        self, metrics: StageMetrics, draws: Sequence[Draw], prompts_per_step: int, push_every: int = 10
    ):
        self.metrics = metrics
        self.draws = draws
        self.prompts_per_step = prompts_per_step
        self.push_every = push_every
        self.last_step = 0
        self.logs_seen = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.last_step = state.global_step  # a resumed run counts from its checkpoint

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs or not state.is_world_process_zero:
            return  # the end-of-training summary line carries no step metrics
        steps = state.global_step - self.last_step
        drawn = self.draws[self.last_step * self.prompts_per_step : state.global_step * self.prompts_per_step]
        rollouts = args.per_device_train_batch_size * args.world_size
        self.metrics.record_train_step(
            step_seconds=float(logs.get("step_time", 0.0)),
            tokens=int(logs.get("completions/mean_length", 0.0) * rollouts * steps),
            rewards=_per_domain(logs, "reward/"),
            accuracies=_per_domain(logs, "accuracy/"),
            samples=realised_counts(list(drawn)),
            loss=logs.get("loss"),
            kl=logs.get("kl"),
            steps=steps,
            peak_memory=peak_memory(),
        )
        self.last_step = state.global_step
        self.logs_seen += 1
        if self.logs_seen % self.push_every == 0:
            self.metrics.push()

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:  # the other ranks record nothing
            self.metrics.push()


class ProgressCallback(TrainerCallback):
    """Progress of GRPO with the latest mean reward, through the stages' progress bar."""

    def __init__(self, console):
        self.console = console
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.bar = progress_bar(self.console, "GRPO", state.max_steps)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "reward" in logs:
            self.bar.update(state.global_step, f"reward {logs['reward']:.3f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()


def _per_domain(logs: dict, prefix: str) -> dict[str, float]:
    return {
        k.removeprefix(prefix): float(v) for k, v in logs.items() if k.startswith(prefix) and v is not None
    }
