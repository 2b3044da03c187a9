"""The reward registry: one name -> one reward function, open to user rewards (TRL/verl style).

A reward function maps ``(completion, ctx)`` to a finite float in ``[0, 1]`` and never raises on
a hostile completion. Built-in rewards register themselves when :mod:`modomodo.rewards` is
imported; a user adds one with::

    @register_reward("length_penalty")
    def length_penalty(completion: str, ctx: RewardContext) -> float:
        return 1.0 if len(completion) < 2000 else 0.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol

from modomodo.rewards.context import RewardContext
from modomodo.rewards.errors import RewardConfigError


class RewardFn(Protocol):
    """A verifiable reward: ``fn(completion, ctx) -> float`` in ``[0, 1]``."""

    def __call__(self, completion: str, ctx: RewardContext, /) -> float: ...


_REGISTRY: dict[str, RewardFn] = {}
REWARDS: Mapping[str, RewardFn] = MappingProxyType(_REGISTRY)
"""Read-only view of every registered reward, by name; :func:`register_reward` is the only way in."""


def register_reward(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator registering a reward function under ``name`` (unique, no whitespace)."""
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise RewardConfigError(f"reward name must be a non-empty string without whitespace, got {name!r}")
    if name in _REGISTRY:
        raise RewardConfigError(f"reward {name!r} is already registered")

    def decorate(fn: RewardFn) -> RewardFn:
        _REGISTRY[name] = fn
        return fn

    return decorate


def get_reward(name: str) -> RewardFn:
    """The reward registered as ``name``; a clear error listing the known names otherwise."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise RewardConfigError(f"unknown reward {name!r}; known rewards: {sorted(_REGISTRY)}")
    return _REGISTRY[name]
