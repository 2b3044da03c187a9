"""Answer extraction: the last ``<answer>...</answer>`` block of a completion.

Every reward and the evaluation stage read the model's answer through :func:`extract_answer`, so
"what did the model answer" has exactly one definition.
"""

from __future__ import annotations

MAX_SCAN_CHARS = 65_536
"""Rewards look at the last 64 Ki characters of a completion and no further.

This bounds the time any reward spends on a runaway generation. Real completions are far shorter
(a 4,096-token budget is about 16 Ki characters). A completion longer than this fails the format
check, and an answer block must lie wholly inside the last ``MAX_SCAN_CHARS`` characters to be seen.
"""

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS: tuple[str, ...] = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
"""The four tags of the reasoning format, matched case-sensitively as the prompts write them."""


def extract_answer(completion: str) -> str | None:
    """Return the stripped content of the last complete ``<answer>...</answer>`` block, or ``None``.

    Only the last block counts, so a policy cannot hedge with several answers, and nothing in
    ``<think>`` is ever read. Multi-line answers are kept whole. Plain ``str.rfind`` scans keep this
    linear in the (capped) input length.
    """
    window = completion[-MAX_SCAN_CHARS:]
    close = window.rfind(ANSWER_CLOSE)
    if close < 0:
        return None
    open_ = window.rfind(ANSWER_OPEN, 0, close)
    if open_ < 0:
        return None
    return window[open_ + len(ANSWER_OPEN) : close].strip()
