"""The reward registry: one name -> one reward function, open to user rewards (TRL/verl style).

A reward function maps ``(completion, ctx)`` to a finite float in ``[0, 1]`` and never raises on
a hostile completion. Built-in rewards register themselves when :mod:`modomodo.rewards` is
imported; a user adds one with::

    @register_reward("length_penalty")
    def length_penalty(completion: str, ctx: RewardContext) -> float:
        return 1.0 if len(completion) < 2000 else 0.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Protocol

from modomodo.data.schema import ANSWER_KINDS
from modomodo.rewards.context import RewardContext
from modomodo.rewards.errors import RewardConfigError


class RewardFn(Protocol):
    """A verifiable reward: ``fn(completion, ctx) -> float`` in ``[0, 1]``."""

    def __call__(self, completion: str, ctx: RewardContext, /) -> float: ...


_REGISTRY: dict[str, RewardFn] = {}
REWARDS: Mapping[str, RewardFn] = MappingProxyType(_REGISTRY)
"""Read-only view of every registered reward, by name; :func:`register_reward` is the only way in."""


_ANSWER_KINDS: dict[str, frozenset[str]] = {}


def register_reward(
    name: str, *, answer_kinds: Iterable[str] = ANSWER_KINDS
) -> Callable[[RewardFn], RewardFn]:
    """Decorator registering a reward function under ``name`` (unique, no whitespace).

    ``answer_kinds`` are the answers it can score (``box`` only for an IoU): a config that gives it
    to a domain with other answers is rejected before training, not at the first GRPO step.
    """
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise RewardConfigError(f"reward name must be a non-empty string without whitespace, got {name!r}")
    if name in _REGISTRY:
        raise RewardConfigError(f"reward {name!r} is already registered")
    kinds = frozenset(answer_kinds)
    if not kinds or not kinds <= set(ANSWER_KINDS):
        raise RewardConfigError(f"reward {name!r}: answer_kinds must be a non-empty subset of {ANSWER_KINDS}")

    def decorate(fn: RewardFn) -> RewardFn:
        _REGISTRY[name] = fn
        _ANSWER_KINDS[name] = kinds
        return fn

    return decorate


def unscorable_kinds(name: str, kinds: Iterable[str]) -> list[str]:
    """The answer kinds among ``kinds`` that the reward ``name`` cannot score (sorted; empty: none)."""
    get_reward(name)
    return sorted(set(kinds) - _ANSWER_KINDS[name])


def get_reward(name: str) -> RewardFn:
    """The reward registered as ``name``; a clear error listing the known names otherwise."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise RewardConfigError(f"unknown reward {name!r}; known rewards: {sorted(_REGISTRY)}")
    return _REGISTRY[name]
