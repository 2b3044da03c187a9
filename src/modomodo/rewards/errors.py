"""The one exception the rewards package raises."""

from __future__ import annotations


class RewardConfigError(ValueError):
    """A reward is misconfigured or misused: unknown name, bad weight, a domain without rewards,
    a reward context that contradicts itself, a reward returning an out-of-range value.

    Hostile *completions* never raise; only the trusted side (configs, solutions, custom reward
    functions) can produce this error, and its message names the offending value.
    """
