"""Verifiable rewards: format, accuracy and IoU, a registry of reward functions, per-domain sets.

Importing this package registers the built-in rewards ``format``, ``accuracy``,
``iou_visual_rft`` and ``iou_continuous``. See ``docs/rewards.md`` for the rules.
"""

from __future__ import annotations

from modomodo.data.answers import (
    OPTION_LETTERS,
    Box,
    answers_match,
    choice_index,
    normalise_answer,
    parse_boxes,
)
from modomodo.rewards.accuracy import accuracy_reward
from modomodo.rewards.context import RewardContext
from modomodo.rewards.errors import RewardConfigError
from modomodo.rewards.format import (
    FORMAT_PATTERN,
    FORMAT_REGEX,
    format_example,
    format_reward,
    is_well_formatted,
)
from modomodo.rewards.iou import (
    MAX_PRED_BOXES,
    VISUAL_RFT_IOU_THRESHOLD,
    continuous_score,
    iou_continuous,
    iou_matrix,
    iou_visual_rft,
    visual_rft_score,
)
from modomodo.rewards.parsing import MAX_SCAN_CHARS, extract_answer
from modomodo.rewards.registry import REWARDS, RewardFn, get_reward, register_reward, unscorable_kinds
from modomodo.rewards.reward_set import (
    ACCURACY_WEIGHT,
    FORMAT_REWARD,
    FORMAT_WEIGHT,
    IOU_REWARDS,
    IOU_WEIGHT,
    RewardBreakdown,
    RewardSet,
    RewardSpec,
    default_reward_set,
)

__all__ = [
    "ACCURACY_WEIGHT",
    "FORMAT_PATTERN",
    "FORMAT_REGEX",
    "FORMAT_REWARD",
    "FORMAT_WEIGHT",
    "IOU_REWARDS",
    "IOU_WEIGHT",
    "MAX_PRED_BOXES",
    "MAX_SCAN_CHARS",
    "OPTION_LETTERS",
    "REWARDS",
    "VISUAL_RFT_IOU_THRESHOLD",
    "Box",
    "RewardBreakdown",
    "RewardConfigError",
    "RewardContext",
    "RewardFn",
    "RewardSet",
    "RewardSpec",
    "accuracy_reward",
    "answers_match",
    "choice_index",
    "continuous_score",
    "default_reward_set",
    "extract_answer",
    "format_example",
    "format_reward",
    "get_reward",
    "iou_continuous",
    "iou_matrix",
    "iou_visual_rft",
    "is_well_formatted",
    "normalise_answer",
    "parse_boxes",
    "register_reward",
    "unscorable_kinds",
    "visual_rft_score",
]
