"""Each training domain's reward set, as its config declares it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modomodo.rewards.reward_set import RewardSet, RewardSpec

if TYPE_CHECKING:
    from modomodo.config import ExperimentConfig


def reward_sets(cfg: ExperimentConfig) -> dict[str, RewardSet]:
    """Each training domain's reward set, as declared in its config (validated on construction)."""
    return {
        name: RewardSet(
            tuple(RewardSpec(r.name, r.weight) for r in dom.rewards), gate_on_format=dom.gate_on_format
        )
        for name, dom in cfg.data.domains.items()
    }
