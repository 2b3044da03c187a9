"""The format reward: did the completion follow the reasoning format the prompt asked for?

The one format rule of the project (documented in ``docs/rewards.md``):

1. the completion, stripped of surrounding whitespace and at most :data:`MAX_SCAN_CHARS` long,
   fully matches :data:`FORMAT_REGEX` with ``re.DOTALL`` (Visual-RFT's form), and
2. each of ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` occurs exactly once.

Rule 1 accepts the paper's Fig. 2 target ``<think> ... </think> <answer> B </answer>``, which
open-r1's newline-only regex would reject. Rule 2 rejects nested or repeated blocks (which the bare
regex lets through, since ``.*?`` may swallow a tag): the prompt asks for one reasoning block and one
answer, a second block is at best ambiguous and at worst a hedge. With each tag present once, the
lazy ``.*?`` scans can only succeed one way, so the match is linear in the input length.
"""

from __future__ import annotations

import re

from modomodo.rewards.context import RewardContext
from modomodo.rewards.errors import RewardConfigError
from modomodo.rewards.parsing import ANSWER_CLOSE, ANSWER_OPEN, MAX_SCAN_CHARS, TAGS, THINK_CLOSE, THINK_OPEN
from modomodo.rewards.registry import register_reward

FORMAT_REGEX = r"<think>.*?</think>\s*<answer>.*?</answer>"
"""The format regex, used with ``re.fullmatch`` and ``re.DOTALL`` on the stripped completion."""
FORMAT_PATTERN = re.compile(FORMAT_REGEX, re.DOTALL)

_EXAMPLE_REASONING = "..."


def is_well_formatted(completion: str) -> bool:
    """Rules 1 and 2 of the module docstring."""
    if len(completion) > MAX_SCAN_CHARS:
        return False
    text = completion.strip()
    if any(text.count(tag) != 1 for tag in TAGS):
        return False
    return FORMAT_PATTERN.fullmatch(text) is not None


@register_reward("format")
def format_reward(completion: str, ctx: RewardContext) -> float:
    """1.0 if the completion is well formatted, else 0.0 (the context is not needed)."""
    del ctx
    return 1.0 if is_well_formatted(completion) else 0.0


def format_example(answer: str) -> str:
    """The example output a prompt shows for ``answer``: ``<think> ... </think> <answer> B </answer>``.

    It passes :func:`is_well_formatted` by construction; an answer holding one of the tags could not,
    so it is refused.
    """
    if any(tag in answer for tag in TAGS):
        raise RewardConfigError(f"an example answer must not contain the tags {TAGS}: {answer!r}")
    return f"{THINK_OPEN} {_EXAMPLE_REASONING} {THINK_CLOSE} {ANSWER_OPEN} {answer} {ANSWER_CLOSE}"
