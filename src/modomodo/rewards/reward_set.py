"""Per-domain reward declarations: which rewards, with which weights, gated on format or not.

A domain config holds one :class:`RewardSet`; nothing dispatches on global tables keyed by dataset
name. The paper's sets come from :func:`default_reward_set`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from modomodo.data.schema import ANSWER_KINDS
from modomodo.rewards.context import RewardContext
from modomodo.rewards.errors import RewardConfigError
from modomodo.rewards.registry import get_reward

FORMAT_REWARD = "format"
"""The reward whose failure closes the gate."""
IOU_REWARDS: tuple[str, ...] = ("iou_continuous", "iou_visual_rft")
"""The box rewards :func:`default_reward_set` can pick from."""
FORMAT_WEIGHT, ACCURACY_WEIGHT, IOU_WEIGHT = 1.0, 2.0, 2.0
"""The paper's weights (Sec. 3.1): a perfect sample scores 3.0."""


@dataclass(frozen=True)
class RewardSpec:
    """One reward of a domain and its weight in the domain's total."""

    name: str
    """A name registered in :data:`~modomodo.rewards.registry.REWARDS`."""
    weight: float = 1.0
    """Finite and non-negative; the reward's part is multiplied by it in the total."""

    def __post_init__(self) -> None:
        get_reward(self.name)  # raises with the known names if unregistered
        weight = self.weight
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise RewardConfigError(
                f"weight of reward {self.name!r} must be a finite number >= 0, got {weight!r}"
            )
        object.__setattr__(self, "weight", float(weight))


@dataclass(frozen=True)
class RewardBreakdown:
    """The score of one completion."""

    parts: dict[str, float]
    """Unweighted value of each reward, in ``[0, 1]``, in the set's order."""
    total: float
    """Weighted sum of the parts, in ``[0, RewardSet.max_total]``."""


def gate_lacks_format(names: Sequence[str], gate_on_format: bool) -> bool:
    """The paper's gate reads the format reward: a gated set of rewards ``names`` without it is
    an error (of the reward set, and of a domain's config)."""
    return gate_on_format and FORMAT_REWARD not in names


@dataclass(frozen=True)
class RewardSet:
    """The rewards of one domain. Validated on construction (see :meth:`validate`)."""

    specs: tuple[RewardSpec, ...]
    """The rewards, each name at most once."""
    gate_on_format: bool = True
    """The paper's gate: when the format reward is 0, every part is 0 (needs a ``format`` spec)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "specs", tuple(self.specs))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`RewardConfigError` for an empty set, a repeated name, or a gate without format."""
        if not self.specs:
            raise RewardConfigError("a reward set needs at least one reward (a domain without rewards)")
        if not all(isinstance(spec, RewardSpec) for spec in self.specs):
            raise RewardConfigError(f"specs must be RewardSpec objects, got {self.specs!r}")
        names = [spec.name for spec in self.specs]
        if len(set(names)) != len(names):
            raise RewardConfigError(f"a reward appears more than once in {names}")
        if gate_lacks_format(names, self.gate_on_format):
            raise RewardConfigError(
                f"gate_on_format needs the {FORMAT_REWARD!r} reward in the set, which has {names}"
            )

    @property
    def max_total(self) -> float:
        """The total of a perfect completion: the sum of the weights."""
        return sum(spec.weight for spec in self.specs)

    def score(self, completion: str, ctx: RewardContext) -> RewardBreakdown:
        """Score one completion. Format is evaluated first; a closed gate skips the other rewards."""
        done: dict[str, float] = {}
        if self.gate_on_format:
            done[FORMAT_REWARD] = _call(FORMAT_REWARD, completion, ctx)
            if done[FORMAT_REWARD] == 0.0:
                return RewardBreakdown(parts={spec.name: 0.0 for spec in self.specs}, total=0.0)
        parts = {
            spec.name: done[spec.name] if spec.name in done else _call(spec.name, completion, ctx)
            for spec in self.specs
        }
        total = sum(spec.weight * parts[spec.name] for spec in self.specs)
        return RewardBreakdown(parts=parts, total=total)


def _call(name: str, completion: str, ctx: RewardContext) -> float:
    """Run a reward and hold it to its contract, so a faulty custom reward fails loudly."""
    value = get_reward(name)(completion, ctx)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise RewardConfigError(f"reward {name!r} returned {value!r}; a reward must return a float in [0, 1]")
    return float(value)


def default_reward_set(answer_kind: str, iou: str = "iou_continuous") -> RewardSet:
    """The paper's rewards for an answer kind, gated on format.

    ``box``: format 1 + ``iou`` 2, where ``iou`` is ``iou_continuous`` (single-box referring, the
    default) or ``iou_visual_rft`` (multi-object detection, as the lineage scores COCO).
    ``mc`` and ``text``: format 1 + accuracy 2.
    """
    if answer_kind not in ANSWER_KINDS:
        raise RewardConfigError(f"answer_kind must be one of {ANSWER_KINDS}, got {answer_kind!r}")
    if iou not in IOU_REWARDS:
        raise RewardConfigError(f"iou must be one of {IOU_REWARDS}, got {iou!r}")
    task = RewardSpec(iou, IOU_WEIGHT) if answer_kind == "box" else RewardSpec("accuracy", ACCURACY_WEIGHT)
    return RewardSet((RewardSpec(FORMAT_REWARD, FORMAT_WEIGHT), task))
