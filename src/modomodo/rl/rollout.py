"""Rollout + reward outside training: profile how often a policy solves each prompt.

For every prompt, G completions are sampled (as GRPO would) and scored with the prompt's domain
reward set. A prompt whose G samples all earn the same total reward gives GRPO no learning signal
(its group-normalised advantages are all 0); the profile counts those prompts per domain, the
candidates that curriculum filters in the RLVR literature drop. That is not the same as "always or
never solved": a never-solved prompt whose samples differ in format or in partial IoU still teaches.

Definitions (also in ``PassRateReport.to_json``):
- a sample *passes* when the task part of its reward (accuracy or IoU, format excluded; see
  ``rl.grpo.task_part``) is at least ``pass_threshold`` (default 0.5);
- a domain's pass rate is the share of all its samples that pass;
- standard deviations are population ones (ddof 0) over a prompt's G samples: a total-reward std
  of 0 (below :data:`ZERO_SIGNAL_STD`) means GRPO's advantage is 0 for every sample of that prompt.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from modomodo.data.schema import Example
from modomodo.policy.inputs import generation_batch
from modomodo.rewards import RewardContext, RewardSet
from modomodo.rl.grpo import task_part

PASS_THRESHOLD = 0.5
"""A sample passes when its task reward part reaches this (IoU 0.5 is the usual detection bar)."""
ZERO_SIGNAL_STD = 1e-6
"""A prompt's total-reward std at or below this is 0 up to float rounding: no GRPO signal."""


class RolloutError(ValueError):
    """Bad input to a rollout profile (no examples, unknown domain, G < 1, ...)."""


@dataclass(frozen=True)
class PromptProfile:
    """What the G samples of one prompt scored."""

    id: str
    domain: str
    reward_mean: float
    """Mean total (weighted, format-gated) reward."""
    reward_std: float
    task_mean: float
    """Mean task part (accuracy or IoU) of the reward."""
    task_std: float
    passed: int
    """Samples whose task part reached the pass threshold."""
    samples: int

    @property
    def always_solved(self) -> bool:
        return self.passed == self.samples

    @property
    def never_solved(self) -> bool:
        return self.passed == 0

    @property
    def zero_signal(self) -> bool:
        """Every sample earned the same total reward: GRPO's advantages for this prompt are all 0."""
        return self.reward_std <= ZERO_SIGNAL_STD


@dataclass(frozen=True)
class PassRateReport:
    """Per-prompt profiles plus the sampling settings that produced them."""

    prompts: list[PromptProfile]
    num_generations: int
    temperature: float
    max_new_tokens: int
    pass_threshold: float

    def pass_rates(self) -> dict[str, float]:
        """Domain -> share of its samples whose task part reached the threshold."""
        passed: dict[str, int] = defaultdict(int)
        total: dict[str, int] = defaultdict(int)
        for prompt in self.prompts:
            passed[prompt.domain] += prompt.passed
            total[prompt.domain] += prompt.samples
        return {domain: passed[domain] / total[domain] for domain in sorted(total)}

    @property
    def always_solved(self) -> list[str]:
        return [p.id for p in self.prompts if p.always_solved]

    @property
    def never_solved(self) -> list[str]:
        return [p.id for p in self.prompts if p.never_solved]

    def zero_signal_per_domain(self) -> dict[str, int]:
        """Domain -> prompts without a learning signal (every sample earned the same total reward)."""
        counts = {p.domain: 0 for p in self.prompts}
        for prompt in self.prompts:
            counts[prompt.domain] += prompt.zero_signal
        return dict(sorted(counts.items()))

    def to_json(self) -> dict[str, object]:
        return {
            "definitions": {
                "pass": f"a sample passes when its task reward part (accuracy or IoU, format excluded) is >= {self.pass_threshold}",
                "pass_rate": "share of a domain's samples that pass",
                "std": "population standard deviation (ddof 0) over a prompt's samples",
                "zero_signal": "a prompt whose samples all earned the same total reward (std 0): GRPO learns nothing from it",
            },
            "num_generations": self.num_generations,
            "temperature": self.temperature,
            "max_new_tokens": self.max_new_tokens,
            "pass_threshold": self.pass_threshold,
            "pass_rates": self.pass_rates(),
            "zero_signal_per_domain": self.zero_signal_per_domain(),
            "always_solved": self.always_solved,
            "never_solved": self.never_solved,
            "prompts": [asdict(p) for p in self.prompts],
        }

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        return path


@torch.no_grad()
def sample_completions(
    model,
    processor,
    examples: Sequence[Example],
    num_generations: int,
    temperature: float,
    max_new_tokens: int,
    batch_size: int,
) -> list[list[str]]:
    """G sampled completions per example, in the order of ``examples``."""
    model.eval()
    grouped: list[list[str]] = []
    for start in range(0, len(examples), batch_size):
        batch = generation_batch(processor, examples[start : start + batch_size], model.device)
        ids = model.generate(
            **batch,
            do_sample=True,
            temperature=temperature,
            top_k=0,  # plain temperature sampling, as GRPO rollouts use
            top_p=1.0,
            num_return_sequences=num_generations,
            max_new_tokens=max_new_tokens,
        )
        texts = processor.batch_decode(ids[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
        # generate() returns the G sequences of each prompt next to each other.
        grouped += [texts[i : i + num_generations] for i in range(0, len(texts), num_generations)]
    return grouped


def profile_pass_rates(
    model,
    processor,
    examples: Sequence[Example],
    reward_sets: Mapping[str, RewardSet],
    num_generations: int,
    temperature: float,
    max_new_tokens: int,
    batch_size: int,
    *,
    pass_threshold: float = PASS_THRESHOLD,
    seed: int = 0,
) -> PassRateReport:
    """Sample ``num_generations`` completions per example and score them with its domain's rewards.

    ``batch_size`` counts prompts per ``generate`` call (each expands to G sequences). Sampling is
    seeded without touching the caller's global RNG state.
    """
    if num_generations < 1 or batch_size < 1 or max_new_tokens < 1:
        raise RolloutError(
            f"num_generations, batch_size and max_new_tokens must be >= 1, got {num_generations}, {batch_size}, {max_new_tokens}"
        )
    if temperature <= 0:
        raise RolloutError(f"temperature must be > 0 for sampling, got {temperature}")
    _check_inputs(examples, reward_sets, pass_threshold)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        completions = sample_completions(
            model, processor, examples, num_generations, temperature, max_new_tokens, batch_size
        )
    prompts = score_samples(examples, completions, reward_sets, pass_threshold=pass_threshold)
    return PassRateReport(prompts, num_generations, float(temperature), max_new_tokens, pass_threshold)


def score_samples(
    examples: Sequence[Example],
    completions: Sequence[Sequence[str]],
    reward_sets: Mapping[str, RewardSet],
    *,
    pass_threshold: float = PASS_THRESHOLD,
) -> list[PromptProfile]:
    """Score each example's completions with its domain's reward set."""
    _check_inputs(examples, reward_sets, pass_threshold)
    if len(completions) != len(examples) or any(not texts for texts in completions):
        raise RolloutError(f"need at least one completion for each of the {len(examples)} examples")
    prompts = []
    for example, texts in zip(examples, completions, strict=True):
        context = RewardContext(
            solution=example.solution, answer_kind=example.answer_kind, options=example.options
        )
        scored = [reward_sets[example.domain].score(text, context) for text in texts]
        totals = np.array([s.total for s in scored])
        tasks = np.array([task_part(s.parts) for s in scored])
        prompts.append(
            PromptProfile(
                id=example.id,
                domain=example.domain,
                reward_mean=float(totals.mean()),
                reward_std=float(totals.std()),
                task_mean=float(tasks.mean()),
                task_std=float(tasks.std()),
                passed=int((tasks >= pass_threshold).sum()),
                samples=len(texts),
            )
        )
    return prompts


def _check_inputs(
    examples: Sequence[Example], reward_sets: Mapping[str, RewardSet], pass_threshold: float
) -> None:
    if not examples:
        raise RolloutError("a pass-rate profile needs at least one example")
    if not 0.0 < pass_threshold <= 1.0:
        raise RolloutError(f"pass_threshold must lie in (0, 1], got {pass_threshold}")
    unknown = sorted({e.domain for e in examples} - set(reward_sets))
    if unknown:
        raise RolloutError(f"no reward set for domains {unknown}; configured: {sorted(reward_sets)}")
