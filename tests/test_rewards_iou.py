"""Box parsing and the two IoU rewards, with hand-computed values."""

from __future__ import annotations

import pytest

from modomodo.rewards import (
    MAX_PRED_BOXES,
    Box,
    RewardConfigError,
    RewardContext,
    continuous_score,
    iou_continuous,
    iou_matrix,
    iou_visual_rft,
    parse_boxes,
    visual_rft_score,
)

GT = "[{'Position': [0, 0, 10, 10], 'Confidence': 1}]"
ONE_BOX = RewardContext(solution=GT, answer_kind="box")
NO_BOX = RewardContext(solution="No Objects", answer_kind="box")
IOU_REWARDS = [iou_visual_rft, iou_continuous]


def answer(text: str) -> str:
    return f"<think>look</think> <answer>{text}</answer>"


def boxes(*corners: tuple[float, float, float, float]) -> str:
    return "[" + ", ".join(f"{{'Position': {list(c)}, 'Confidence': 1}}" for c in corners) + "]"


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[{'Position': [1, 2, 3, 4], 'Confidence': 0.9}]", [Box(1, 2, 3, 4, 0.9)]),
        ('[{"Position": [1, 2, 3, 4], "Confidence": 0.9}]', [Box(1, 2, 3, 4, 0.9)]),
        ("[{'Confidence': 0.5, 'position': [1.5, 2, 3, 4e1]}]", [Box(1.5, 2, 3, 40, 0.5)]),
        ("[{'Position': [1, 2, 3, 4]}]", [Box(1, 2, 3, 4, 1.0)]),
        ("[1, 2, 3, 4]", [Box(1, 2, 3, 4)]),
        ("[[1, 2, 3, 4], [5, 6, 7, 8]]", [Box(1, 2, 3, 4), Box(5, 6, 7, 8)]),
        ("[[1,2,3,4], {'Position': [5,6,7,8], 'Confidence': 0.1}]", [Box(1, 2, 3, 4), Box(5, 6, 7, 8, 0.1)]),
        ("\n [ {'Position' :\n[-1, -2, 3, 4] , 'Confidence':1} ]\n", [Box(-1, -2, 3, 4)]),
        ("[10, 20, 0, 5]", [Box(0, 5, 10, 20)]),  # corners in any order are normalised
        ("No Objects", []),
        ("no objects.", []),
        ("'No Objects'", []),
        ("[]", []),
    ],
)
def test_parse_boxes_accepts(text: str, expected: list[Box]) -> None:
    assert parse_boxes(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "The box is [1, 2, 3, 4]",
        "[1, 2, 3]",
        "[1, 2, 3, 4, 5]",
        "[[[1, 2, 3, 4]]]",
        "[{'Position': [1, 2, 3, 4], 'Confidence': 0.9},]",  # trailing comma
        "[{'Position': [1, 2, 3, 4], 'Conf",  # truncated
        "[{'Position': [1, 2, 3, 4], 'Label': 'cat'}]",  # unknown key
        "[{'Position': [1, 2, 3, 4], 'Position': [1, 2, 3, 4]}]",  # repeated key
        "[{'Confidence': 0.9}]",
        "[nan, 0, 1, 1]",
        "[0, 0, inf, 1]",
        "[0, 0, 1e999, 1]",
        "[0, 0, -Infinity, 1]",
        "[{'Position': [1, 2, 3, 4], 'Confidence': NaN}]",
        "[1, 2, 3, 4] [5, 6, 7, 8]",
        "[" + "9" * 40 + ", 0, 1, 1]",  # more digits than one number token holds
        "[__import__('os'), 0, 1, 1]",
        "No Objects [1, 2, 3, 4]",
    ],
)
def test_parse_boxes_rejects(text: str) -> None:
    assert parse_boxes(text) is None


# --- IoU values ----------------------------------------------------------------------------------


def test_iou_matrix_hand_computed() -> None:
    gt = [Box(0, 0, 10, 10)]
    pred = [Box(0, 0, 10, 10), Box(0, 0, 10, 5), Box(5, 0, 15, 10), Box(20, 20, 30, 30), Box(0, 0, 0, 0)]
    assert iou_matrix(pred, gt)[:, 0].tolist() == pytest.approx([1.0, 0.5, 50 / 150, 0.0, 0.0])


@pytest.mark.parametrize("reward", IOU_REWARDS)
def test_a_perfect_box_scores_one(reward) -> None:
    assert reward(answer(GT), ONE_BOX) == 1.0
    assert reward(answer("[0, 0, 10, 10]"), ONE_BOX) == 1.0
    assert reward(answer("[10, 10, 0, 0]"), ONE_BOX) == 1.0  # swapped corners, same rectangle


def test_half_overlap() -> None:
    half = answer(boxes((5, 0, 15, 10)))  # intersection 50, union 150
    assert iou_continuous(half, ONE_BOX) == pytest.approx(1 / 3)
    assert iou_visual_rft(half, ONE_BOX) == 0.0  # 1/3 is below Visual-RFT's 0.5
    upper = answer(boxes((0, 0, 10, 6)))  # intersection 60, union 100
    assert iou_continuous(upper, ONE_BOX) == pytest.approx(0.6)
    assert iou_visual_rft(upper, ONE_BOX) == pytest.approx(0.6)


def test_visual_rft_threshold_is_strict() -> None:
    point_four = answer(boxes((0, 0, 10, 4)))
    assert iou_visual_rft(point_four, ONE_BOX) == 0.0
    assert iou_continuous(point_four, ONE_BOX) == pytest.approx(0.4)
    exactly_half = answer(boxes((0, 0, 10, 5)))
    assert iou_visual_rft(exactly_half, ONE_BOX) == 0.0
    assert iou_continuous(exactly_half, ONE_BOX) == pytest.approx(0.5)


def test_hungarian_beats_greedy() -> None:
    # G1 = [0,0,10,10], G2 = [4,0,14,10]. P1 (more confident) = [1,0,11,10]: IoU 90/110 with G1,
    # 70/130 with G2. P2 = [0,0,10,10]: IoU 1 with G1, 60/140 with G2.
    # Greedy: P1 takes G1, leaving P2 with G2 at 60/140 < 0.5 -> (90/110) / 2.
    # Hungarian: P1 -> G2, P2 -> G1 -> (70/130 + 1) / 2.
    ctx = RewardContext(solution=boxes((0, 0, 10, 10), (4, 0, 14, 10)), answer_kind="box")
    pred = answer(
        "[{'Position': [1, 0, 11, 10], 'Confidence': 0.9}, {'Position': [0, 0, 10, 10], 'Confidence': 0.8}]"
    )
    assert iou_visual_rft(pred, ctx) == pytest.approx((90 / 110) / 2)
    assert iou_continuous(pred, ctx) == pytest.approx((70 / 130 + 1) / 2)


def test_visual_rft_visits_predictions_by_confidence() -> None:
    ctx = RewardContext(solution=boxes((0, 0, 10, 10), (4, 0, 14, 10)), answer_kind="box")
    # Same boxes as above with the confidences swapped: now P2 = G1 goes first and greedy is optimal.
    pred = answer(
        "[{'Position': [1, 0, 11, 10], 'Confidence': 0.1}, {'Position': [0, 0, 10, 10], 'Confidence': 0.8}]"
    )
    assert iou_visual_rft(pred, ctx) == pytest.approx((1 + 70 / 130) / 2)


def test_every_missed_or_spurious_box_costs() -> None:
    two = RewardContext(solution=boxes((0, 0, 10, 10), (20, 20, 30, 30)), answer_kind="box")
    for reward in IOU_REWARDS:
        assert reward(answer(boxes((0, 0, 10, 10))), two) == pytest.approx(0.5)
        assert reward(
            answer(boxes((0, 0, 10, 10), (20, 20, 30, 30), (50, 50, 60, 60))), two
        ) == pytest.approx(2 / 3)


def test_duplicates_are_dropped_by_visual_rft_only() -> None:
    twice = answer(boxes((0, 0, 10, 10), (0, 0, 10, 10)))
    assert iou_visual_rft(twice, ONE_BOX) == 1.0
    assert iou_continuous(twice, ONE_BOX) == pytest.approx(0.5)
    assert (
        visual_rft_score([Box(0, 0, 1, 1)], [Box(0, 0, 1, 1, 0.2), Box.from_corners((1, 1, 0, 0), 0.9)])
        == 1.0
    )


@pytest.mark.parametrize(
    "corners", [(1, 0, 0, 1), (0, 1, 1, 0), (0, 0, float("nan"), 1), (0, 0, float("inf"), 1)]
)
def test_a_box_holds_its_invariant(corners: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError, match="x1 <= x2"):
        Box(*corners)


@pytest.mark.parametrize("reward", IOU_REWARDS)
def test_empty_cases(reward) -> None:
    assert reward(answer("No Objects"), NO_BOX) == 1.0
    assert reward(answer("[]"), NO_BOX) == 1.0
    assert reward(answer("[0, 0, 10, 10]"), NO_BOX) == 0.0
    assert reward(answer("No Objects"), ONE_BOX) == 0.0


@pytest.mark.parametrize("reward", IOU_REWARDS)
def test_unreadable_answers_score_zero(reward) -> None:
    for text in ["[nan, 0, 10, 10]", "[0, 0, 10, inf]", "[0, 0, 10, 1e999]", "box: [0, 0, 10, 10]", GT[:-3]]:
        assert reward(answer(text), ONE_BOX) == 0.0
    assert reward("<think>no answer</think>", ONE_BOX) == 0.0


def test_only_the_most_confident_boxes_are_considered() -> None:
    far = [
        f"{{'Position': [{100 + i}, 100, {110 + i}, 110], 'Confidence': 0.5}}"
        for i in range(MAX_PRED_BOXES + 20)
    ]
    hit_first = "[{'Position': [0, 0, 10, 10], 'Confidence': 0.9}, " + ", ".join(far) + "]"
    hit_last = "[" + ", ".join(far) + ", {'Position': [0, 0, 10, 10], 'Confidence': 0.1}]"
    for score in (continuous_score, visual_rft_score):
        assert score([Box(0, 0, 10, 10)], parse_boxes(hit_first)) == pytest.approx(1 / MAX_PRED_BOXES)
        assert score([Box(0, 0, 10, 10)], parse_boxes(hit_last)) == 0.0


def test_degenerate_and_huge_boxes_score_zero_not_nan() -> None:
    assert continuous_score([Box(0, 0, 0, 0)], [Box(0, 0, 0, 0)]) == 0.0
    huge = Box(-1e308, -1e308, 1e308, 1e308)
    assert continuous_score([huge], [huge]) == 0.0  # the area overflows; documented as 0
    assert continuous_score([Box(0, 0, 10, 10)], [huge]) == 0.0


def test_iou_rewards_need_a_box_context() -> None:
    with pytest.raises(RewardConfigError, match="answer_kind 'box'"):
        iou_continuous(answer("[0, 0, 1, 1]"), RewardContext(solution="B", answer_kind="mc"))
