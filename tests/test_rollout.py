"""Pass-rate profiling: scoring G samples per prompt with the domain rewards, and sampling them
from a real (tiny, random) policy."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import torch
from tiny import build_test_model

from modomodo import stages
from modomodo.config import load_config
from modomodo.data.prompts import reference_completion
from modomodo.data.synthetic import generate
from modomodo.policy.load import load_policy
from modomodo.rewards import RewardSet, RewardSpec, register_reward
from modomodo.rewards.domains import reward_sets
from modomodo.rl.rollout import PASS_THRESHOLD, RolloutError, profile_pass_rates, score_samples

CFG = load_config("smoke")
REWARDS = reward_sets(CFG)
GEO = generate("geo", "train", 3, seed=0)
DET = generate("det", "train", 2, seed=0)


WRONG = "<think> no idea </think> <answer> 12345 </answer>"
"""Well formatted, wrong: the format part is earned, the task part is not."""


def test_scores_split_prompts_into_always_never_and_sometimes_solved():
    examples = [*GEO, *DET]
    completions = [
        [reference_completion(GEO[0])] * 4,  # always solved
        [WRONG] * 4,  # never solved (but well formatted)
        [reference_completion(GEO[2]), WRONG, reference_completion(GEO[2]), "no format at all"],
        [reference_completion(DET[0])] * 4,
        ["<answer> [] </answer>"] * 4,  # unformatted: the gate zeroes every part
    ]
    prompts = score_samples(examples, completions, REWARDS)
    by_id = {p.id: p for p in prompts}
    # geo: format 1 + accuracy 2; a correct sample earns 3, a formatted wrong one 1.
    always, never, sometimes = (by_id[e.id] for e in GEO)
    assert (always.reward_mean, always.reward_std, always.task_mean, always.passed) == (3.0, 0.0, 1.0, 4)
    assert (never.reward_mean, never.reward_std, never.task_mean, never.passed) == (1.0, 0.0, 0.0, 0)
    assert sometimes.passed == 2 and sometimes.task_mean == 0.5 and sometimes.task_std == 0.5
    assert sometimes.reward_mean == pytest.approx((3 + 1 + 3 + 0) / 4)
    assert by_id[DET[0].id].passed == 4 and by_id[DET[1].id].passed == 0
    assert by_id[DET[1].id].reward_mean == 0.0
    from modomodo.rl.rollout import PassRateReport

    report = PassRateReport(
        prompts, num_generations=4, temperature=1.0, max_new_tokens=8, pass_threshold=PASS_THRESHOLD
    )
    assert report.pass_rates() == {"det": 4 / 8, "geo": 6 / 12}
    assert report.always_solved == [GEO[0].id, DET[0].id]
    assert report.never_solved == [GEO[1].id, DET[1].id]
    assert report.zero_signal_per_domain() == {"det": 2, "geo": 2}
    document = report.to_json()
    assert (
        "task reward part" in document["definitions"]["pass"] and ">= 0.5" in document["definitions"]["pass"]
    )
    assert len(document["prompts"]) == 5


def test_a_never_solved_prompt_still_has_signal_when_its_rewards_differ():
    # GRPO normalises the total reward within the group: format alone moves the advantage.
    (geo,) = GEO[:1]
    (prompt,) = score_samples([geo], [[WRONG, WRONG, "no format at all", WRONG]], REWARDS)
    assert prompt.never_solved and not prompt.zero_signal
    (flat,) = score_samples([geo], [[WRONG] * 4], REWARDS)
    assert flat.never_solved and flat.zero_signal


def test_pass_threshold_applies_to_the_task_part():
    (ref,) = generate("ref", "train", 1, seed=0)
    x1, y1, x2, y2 = map(
        int,
        re.fullmatch(
            r"\[\{'Position': \[(\d+), (\d+), (\d+), (\d+)\], 'Confidence': 1\}\]", ref.solution
        ).groups(),
    )
    assert (x2 - x1, y2 - y1) == (28, 28), "one grid cell"
    # Moved right by a quarter of its width: intersection 21x28 over union 35x28, IoU 0.6.
    shifted = f"<think> x </think> <answer> [{{'Position': [{x1 + 7}, {y1}, {x2 + 7}, {y2}], 'Confidence': 1}}] </answer>"
    for threshold, passed in ((0.5, 1), (0.9, 0)):
        (prompt,) = score_samples([ref], [[shifted]], REWARDS, pass_threshold=threshold)
        assert prompt.task_mean == pytest.approx(0.6)
        assert prompt.passed == passed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"examples": []}, "at least one example"),
        ({"completions": [["x"]] * 2}, "at least one completion"),
        ({"completions": [[], ["x"], ["x"]]}, "at least one completion"),
        ({"pass_threshold": 0.0}, "pass_threshold"),
        ({"reward_sets": {"det": REWARDS["det"]}}, r"no reward set for domains \['geo'\]"),
    ],
)
def test_bad_scoring_input_is_refused(kwargs, message):
    arguments = {"examples": GEO, "completions": [["x"]] * 3, "reward_sets": REWARDS} | kwargs
    pass_threshold = arguments.pop("pass_threshold", PASS_THRESHOLD)
    with pytest.raises(RolloutError, match=message):
        score_samples(
            arguments["examples"],
            arguments["completions"],
            arguments["reward_sets"],
            pass_threshold=pass_threshold,
        )


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return build_test_model(tmp_path_factory.mktemp("tiny"), [*GEO, *DET])


@pytest.fixture(scope="module")
def tiny_policy(tiny_model_dir):
    return load_policy(tiny_model_dir, "fp32")


@register_reward("test_completion_fingerprint")
def completion_fingerprint(completion: str, ctx) -> float:
    """A reward that tells any two completions apart (a hash of the text in [0, 1]): the profile of
    an untrained model, whose task rewards are all 0, then shows which samples were drawn."""
    return int(hashlib.sha256(completion.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


FINGERPRINT = {
    d: RewardSet((RewardSpec("test_completion_fingerprint"),), gate_on_format=False) for d in ("geo", "det")
}


def test_profile_samples_g_completions_a_prompt_reproducibly(tiny_policy):
    model, processor = tiny_policy
    examples = [*GEO, *DET]

    def profile(seed: int, rewards=REWARDS):
        return profile_pass_rates(model, processor, examples, rewards, 3, 1.0, 6, batch_size=2, seed=seed)

    before = torch.get_rng_state()
    first = profile(7)
    assert torch.equal(torch.get_rng_state(), before), "the caller's RNG state is left alone"
    assert [p.id for p in first.prompts] == [e.id for e in examples]
    assert all(p.samples == 3 for p in first.prompts)
    assert (first.num_generations, first.max_new_tokens) == (3, 6)
    assert set(first.pass_rates()) == {"geo", "det"}
    assert all(0.0 <= rate <= 1.0 for rate in first.pass_rates().values())
    # The seed alone decides the samples: the same seed draws the same completions whatever the
    # caller's RNG state, another seed draws others.
    torch.manual_seed(0)
    seven = profile(7, FINGERPRINT)
    torch.manual_seed(1)
    assert profile(7, FINGERPRINT).prompts == seven.prompts
    eight = profile(8, FINGERPRINT)
    differing = [
        a.id for a, b in zip(seven.prompts, eight.prompts, strict=True) if a.reward_mean != b.reward_mean
    ]
    assert len(differing) == len(examples), (
        f"seed 8 drew the same completions as seed 7 for some of {differing}"
    )


def test_profile_refuses_sampling_settings_that_cannot_sample(tiny_policy):
    model, processor = tiny_policy
    with pytest.raises(RolloutError, match="temperature"):
        profile_pass_rates(model, processor, GEO, REWARDS, 2, 0.0, 4, 2)
    with pytest.raises(RolloutError, match="num_generations"):
        profile_pass_rates(model, processor, GEO, REWARDS, 0, 1.0, 4, 2)


def test_rollout_stage_profiles_the_first_prompts_of_each_domain(tiny_model_dir, tmp_path):
    cfg = load_config(
        "smoke",
        [
            "data.domains={geo: {n_train: 6, rewards: [{name: format}, {name: accuracy, weight: 2}]},"
            " det: {n_train: 6, rewards: [{name: format}, {name: iou_visual_rft, weight: 2}]}}",
            "data.benchmarks=[chart]",
            "data.benchmark_scale=0.01",
            "train.num_generations=2",
            "train.max_completion_length=4",
        ],
    )
    stages.curate_stage(cfg, tmp_path / "data")
    report = stages.rollout_stage(
        cfg, tmp_path / "data", tiny_model_dir, tmp_path / "out", run_id="t", prompts_per_domain=2
    )
    assert sorted(p.domain for p in report.prompts) == ["det", "det", "geo", "geo"]
    saved = json.loads((tmp_path / "out" / "pass_rates.json").read_text())
    assert saved["num_generations"] == 2 and len(saved["prompts"]) == 4
    with pytest.raises(ValueError, match="prompts_per_domain"):
        stages.rollout_stage(
            cfg, tmp_path / "data", tiny_model_dir, tmp_path / "out", run_id="t", prompts_per_domain=-1
        )
