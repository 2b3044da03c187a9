"""The accuracy reward: binary exact match of the extracted answer (see :mod:`.matching`)."""

from __future__ import annotations

from modomodo.data.answers import answers_match
from modomodo.rewards.context import RewardContext
from modomodo.rewards.parsing import extract_answer
from modomodo.rewards.registry import register_reward


@register_reward("accuracy")
def accuracy_reward(completion: str, ctx: RewardContext) -> float:
    """1.0 if the last ``<answer>`` block matches the solution, else 0.0."""
    answer = extract_answer(completion)
    if answer is None:
        return 0.0
    return 1.0 if answers_match(answer, ctx.solution, ctx.options) else 0.0
