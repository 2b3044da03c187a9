"""Registry, reward specs and sets, the format gate and the paper's default sets."""

from __future__ import annotations

import math

import pytest

from modomodo.rewards import (
    REWARDS,
    RewardBreakdown,
    RewardConfigError,
    RewardContext,
    RewardSet,
    RewardSpec,
    default_reward_set,
    get_reward,
    register_reward,
    unscorable_kinds,
)

MC = RewardContext(solution="B", answer_kind="mc", options=("red", "blue"))
BOX = RewardContext(solution="[{'Position': [0, 0, 10, 10], 'Confidence': 1}]", answer_kind="box")
GOOD = "<think>it is blue</think> <answer>B</answer>"
UNFORMATTED_BUT_RIGHT = "<answer>B</answer>"  # no reasoning block


@register_reward("test_short_completion")
def short_completion(completion: str, ctx: RewardContext) -> float:
    return 1.0 if len(completion) < 40 else 0.0


@register_reward("test_faulty_above_one")
def faulty_above_one(completion: str, ctx: RewardContext) -> float:
    return 1.5


@register_reward("test_faulty_nan")
def faulty_nan(completion: str, ctx: RewardContext) -> float:
    return math.nan


def test_built_in_rewards_are_registered() -> None:
    assert {"format", "accuracy", "iou_visual_rft", "iou_continuous"} <= set(REWARDS)
    assert REWARDS["accuracy"](GOOD, MC) == 1.0


def test_the_registry_is_read_only() -> None:
    with pytest.raises(TypeError, match="does not support item assignment"):
        REWARDS["accuracy"] = short_completion  # type: ignore[index]


def test_registering_a_name_twice_fails() -> None:
    with pytest.raises(RewardConfigError, match="already registered"):
        register_reward("accuracy")


@pytest.mark.parametrize("name", ["", "two words", 3])
def test_reward_names_are_checked(name: object) -> None:
    with pytest.raises(RewardConfigError, match="reward name"):
        register_reward(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("kinds", [(), ("box", "bbox")])
def test_answer_kinds_are_checked(kinds: tuple[str, ...]) -> None:
    with pytest.raises(RewardConfigError, match="answer_kinds must be a non-empty subset"):
        register_reward("test_kinds", answer_kinds=kinds)


def test_a_reward_declares_the_answer_kinds_it_scores() -> None:
    assert unscorable_kinds("iou_continuous", ["box"]) == []
    assert unscorable_kinds("iou_visual_rft", ["text", "box", "mc"]) == ["mc", "text"]
    assert unscorable_kinds("test_short_completion", ["box", "mc", "text"]) == []  # default: every kind


def test_unknown_rewards_are_reported_with_the_known_names() -> None:
    with pytest.raises(RewardConfigError, match=r"unknown reward 'acc'.*'accuracy'"):
        get_reward("acc")
    with pytest.raises(RewardConfigError, match="unknown reward"):
        RewardSpec("acc")


def test_a_user_reward_takes_part_in_a_set() -> None:
    rewards = RewardSet((RewardSpec("format"), RewardSpec("test_short_completion", 0.5)))
    assert rewards.score("<think></think><answer>B</answer>", MC) == RewardBreakdown(
        parts={"format": 1.0, "test_short_completion": 1.0}, total=1.5
    )
    assert rewards.score(f"<think>{'x' * 40}</think><answer>B</answer>", MC).total == 1.0


@pytest.mark.parametrize("name", ["test_faulty_above_one", "test_faulty_nan"])
def test_a_reward_breaking_its_contract_fails_loudly(name: str) -> None:
    rewards = RewardSet((RewardSpec(name),), gate_on_format=False)
    with pytest.raises(RewardConfigError, match=f"reward '{name}' returned"):
        rewards.score(GOOD, MC)


@pytest.mark.parametrize("weight", [-1.0, math.nan, math.inf, True, "2"])
def test_weights_must_be_finite_and_non_negative(weight: object) -> None:
    with pytest.raises(RewardConfigError, match="finite number >= 0"):
        RewardSpec("accuracy", weight)  # type: ignore[arg-type]


def test_weights_become_floats() -> None:
    spec = RewardSpec("accuracy", 2)
    assert spec.weight == 2.0 and isinstance(spec.weight, float)
    assert RewardSpec("accuracy", 0).weight == 0.0


def test_a_set_without_rewards_is_a_config_error() -> None:
    with pytest.raises(RewardConfigError, match="at least one reward"):
        RewardSet(())


def test_gating_needs_a_format_reward() -> None:
    with pytest.raises(RewardConfigError, match="gate_on_format needs the 'format' reward"):
        RewardSet((RewardSpec("accuracy", 2.0),))
    ungated = RewardSet((RewardSpec("accuracy", 2.0),), gate_on_format=False)
    ungated.validate()
    assert ungated.score(UNFORMATTED_BUT_RIGHT, MC).total == 2.0


def test_a_reward_appears_once_per_set() -> None:
    with pytest.raises(RewardConfigError, match="more than once"):
        RewardSet((RewardSpec("format"), RewardSpec("format", 2.0)))


def test_specs_given_as_a_list_are_frozen_into_a_tuple() -> None:
    rewards = RewardSet([RewardSpec("format"), RewardSpec("accuracy")])  # type: ignore[arg-type]
    assert isinstance(rewards.specs, tuple)
    with pytest.raises(RewardConfigError, match="RewardSpec"):
        RewardSet(("format",))  # type: ignore[arg-type]


def test_format_failure_zeroes_every_part_when_gated() -> None:
    gated = default_reward_set("mc")
    assert gated.score(UNFORMATTED_BUT_RIGHT, MC) == RewardBreakdown(
        parts={"format": 0.0, "accuracy": 0.0}, total=0.0
    )
    ungated = RewardSet(gated.specs, gate_on_format=False)
    assert ungated.score(UNFORMATTED_BUT_RIGHT, MC) == RewardBreakdown(
        parts={"format": 0.0, "accuracy": 1.0}, total=2.0
    )


def test_gate_on_a_box_domain() -> None:
    right_box_bad_format = "<answer>[0, 0, 10, 10]</answer><think>after</think>"
    gated = default_reward_set("box")
    assert gated.score(right_box_bad_format, BOX).total == 0.0
    assert RewardSet(gated.specs, gate_on_format=False).score(right_box_bad_format, BOX).parts == {
        "format": 0.0,
        "iou_continuous": 1.0,
    }


def test_the_paper_scores() -> None:
    mc = default_reward_set("mc")
    assert mc.max_total == 3.0
    assert mc.score(GOOD, MC) == RewardBreakdown(parts={"format": 1.0, "accuracy": 1.0}, total=3.0)
    assert mc.score("<think>x</think><answer>A</answer>", MC).total == 1.0
    half = "<think>x</think><answer>[0, 0, 10, 5]</answer>"
    assert default_reward_set("box").score(half, BOX).total == pytest.approx(1.0 + 2.0 * 0.5)
    assert default_reward_set("box", iou="iou_visual_rft").score(half, BOX).total == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kind", "iou", "expected"),
    [
        ("mc", "iou_continuous", (("format", 1.0), ("accuracy", 2.0))),
        ("text", "iou_continuous", (("format", 1.0), ("accuracy", 2.0))),
        ("box", "iou_continuous", (("format", 1.0), ("iou_continuous", 2.0))),
        ("box", "iou_visual_rft", (("format", 1.0), ("iou_visual_rft", 2.0))),
    ],
)
def test_default_reward_sets(kind: str, iou: str, expected: tuple) -> None:
    rewards = default_reward_set(kind, iou=iou)
    assert tuple((spec.name, spec.weight) for spec in rewards.specs) == expected
    assert rewards.gate_on_format


def test_default_reward_set_refuses_unknown_choices() -> None:
    with pytest.raises(RewardConfigError, match="answer_kind"):
        default_reward_set("yesno")
    with pytest.raises(RewardConfigError, match="iou must be one of"):
        default_reward_set("box", iou="accuracy")
