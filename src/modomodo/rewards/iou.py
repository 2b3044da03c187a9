"""IoU rewards for box answers: Visual-RFT's thresholded greedy matching and a continuous one.

Both compare the boxes of the last ``<answer>`` block with the solution's boxes, in the same pixel
frame (the image the model saw), and share these rules:

- no ground-truth boxes and "No Objects" / ``[]`` predicted: 1.0; exactly one side empty: 0.0;
- an unparseable answer (see :mod:`.boxes`), including any non-finite number: 0.0;
- at most :data:`MAX_PRED_BOXES` predictions are considered, the most confident first (COCO's
  ``maxDets``), which bounds the matching cost;
- reward = sum of matched IoUs / max(#gt, #pred), so every missed or spurious box costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from modomodo.data.answers import Box, parse_boxes
from modomodo.rewards.context import RewardContext
from modomodo.rewards.errors import RewardConfigError
from modomodo.rewards.parsing import extract_answer
from modomodo.rewards.registry import register_reward

MAX_PRED_BOXES = 100
"""Predicted boxes beyond the 100 most confident are ignored (as COCO evaluation's ``maxDets=100``)."""
VISUAL_RFT_IOU_THRESHOLD = 0.5
"""Visual-RFT counts a greedy match only if its IoU is strictly above this."""


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """Pairwise IoU, shape ``(len(a), len(b))``. Degenerate pairs (zero union, overflow) get 0."""
    ca = np.array([box.corners for box in a], dtype=np.float64).reshape(-1, 1, 4)
    cb = np.array([box.corners for box in b], dtype=np.float64).reshape(1, -1, 4)
    with np.errstate(all="ignore"):
        inter_w = np.clip(np.minimum(ca[..., 2], cb[..., 2]) - np.maximum(ca[..., 0], cb[..., 0]), 0, None)
        inter_h = np.clip(np.minimum(ca[..., 3], cb[..., 3]) - np.maximum(ca[..., 1], cb[..., 1]), 0, None)
        inter = inter_w * inter_h
        area_a = (ca[..., 2] - ca[..., 0]) * (ca[..., 3] - ca[..., 1])
        area_b = (cb[..., 2] - cb[..., 0]) * (cb[..., 3] - cb[..., 1])
        iou = inter / (area_a + area_b - inter)
    return np.clip(np.nan_to_num(iou, nan=0.0, posinf=0.0, neginf=0.0), 0.0, 1.0)


def visual_rft_score(gt: Sequence[Box], pred: Sequence[Box]) -> float:
    """Visual-RFT's ``accuracy_reward_iou`` on parsed boxes.

    Exact duplicate positions are dropped, predictions are visited by descending confidence, each
    takes the unmatched ground-truth box of highest IoU, and the match counts only if that IoU is
    above :data:`VISUAL_RFT_IOU_THRESHOLD`.
    """
    first_by_position: dict[tuple[float, float, float, float], Box] = {}
    for box in pred:
        first_by_position.setdefault(box.corners, box)
    return _score(gt, list(first_by_position.values()), _greedy_thresholded)


def continuous_score(gt: Sequence[Box], pred: Sequence[Box]) -> float:
    """Optimal one-to-one matching (Hungarian, maximising total IoU), no threshold."""
    return _score(gt, pred, _hungarian)


def _score(gt: Sequence[Box], pred: Sequence[Box], match: Callable[[np.ndarray], float]) -> float:
    if not gt or not pred:
        return 1.0 if not gt and not pred else 0.0
    considered = sorted(pred, key=lambda box: -box.confidence)[:MAX_PRED_BOXES]  # stable for ties
    matched = match(iou_matrix(considered, gt))
    return min(1.0, matched / max(len(gt), len(considered)))


def _greedy_thresholded(iou: np.ndarray) -> float:
    taken = np.zeros(iou.shape[1], dtype=bool)
    total = 0.0
    for row in iou:
        candidates = np.where(taken, -1.0, row)
        best = int(np.argmax(candidates))  # first of equal IoUs, as Visual-RFT's strict ">" scan
        if candidates[best] > VISUAL_RFT_IOU_THRESHOLD:
            taken[best] = True
            total += float(candidates[best])
    return total


def _hungarian(iou: np.ndarray) -> float:
    # Imported here: scipy.optimize costs ~0.5 s, and every pipeline step imports the rewards
    # (stages does), most of them to score no box (docs/benchmarks.md, component imports).
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(iou, maximize=True)
    return float(iou[rows, cols].sum())


def _box_reward(
    completion: str, ctx: RewardContext, name: str, score: Callable[[list[Box], list[Box]], float]
) -> float:
    if ctx.answer_kind != "box":
        raise RewardConfigError(f"reward {name!r} needs answer_kind 'box', got {ctx.answer_kind!r}")
    answer = extract_answer(completion)
    pred = None if answer is None else parse_boxes(answer)
    if pred is None:
        return 0.0
    gt = parse_boxes(ctx.solution)  # never None: RewardContext validated the box solution
    return score(gt, pred)


@register_reward("iou_visual_rft", answer_kinds=("box",))
def iou_visual_rft(completion: str, ctx: RewardContext) -> float:
    """Visual-RFT's COCO IoU reward (greedy, IoU > 0.5 per box) in ``[0, 1]``."""
    return _box_reward(completion, ctx, "iou_visual_rft", visual_rft_score)


@register_reward("iou_continuous", answer_kinds=("box",))
def iou_continuous(completion: str, ctx: RewardContext) -> float:
    """Continuous IoU reward (Hungarian matching, no threshold) in ``[0, 1]``."""
    return _box_reward(completion, ctx, "iou_continuous", continuous_score)
