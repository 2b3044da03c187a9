"""The GRPO wiring: the trainer consumes the mixture schedule in order, and each completion is scored
by its own domain's reward set. Fast (seconds): a developer who reshuffles the data or routes a
domain to the wrong rewards sees these fail before any slow test runs."""

from __future__ import annotations

from collections import Counter

import pytest
from tiny import build_test_model
from transformers import TrainerCallback

from modomodo.config import load_config
from modomodo.data.prompts import reference_completion, render_prompt
from modomodo.data.synthetic import generate
from modomodo.rewards.domains import reward_sets
from modomodo.rl.grpo import DomainRewards, grpo_args, schedule_dataset, train_grpo, training_schedule
from modomodo.rl.sampler import mixture_schedule

DOMAINS = (
    "data.domains={geo: {n_train: 5, rewards: [{name: format}, {name: accuracy, weight: 2}]},"
    " det: {n_train: 5, rewards: [{name: format}, {name: iou_visual_rft, weight: 2}]}}"
)
TRAIN = {"geo": generate("geo", "train", 5, seed=0), "det": generate("det", "train", 5, seed=0)}


def tiny_config(*overrides: str):
    return load_config(
        "smoke",
        [
            DOMAINS,
            "train.mixture={geo: 0.3, det: 0.7}",
            "train.steps=2",
            "train.prompts_per_step=3",
            "train.num_generations=2",
            "train.max_completion_length=2",
            "train.checkpoint_every=100",
            *overrides,
        ],
    )


def schedule_of(cfg):
    """The schedule rl_stage draws for ``cfg``: its resolved mixture, drawn once."""
    return training_schedule(TRAIN, cfg.train, cfg.resolved_mixture())


def test_training_schedule_is_the_mixture_sampler_cut_to_whole_steps():
    cfg = tiny_config("train.steps=3")
    schedule = schedule_of(cfg)
    draws, steps = schedule.draws, schedule.steps
    assert steps == 3
    assert draws == mixture_schedule({"geo": 5, "det": 5}, {"geo": 0.3, "det": 0.7}, 9, 42, "cycle")
    # The paper's rule stops at the first exhausted domain: 12 draws from 5 + 5 examples must stop
    # by the 11th, and the schedule is cut to whole steps of 3 prompts.
    exhaust = tiny_config("train.steps=4", "train.sampling=exhaust")
    schedule = schedule_of(exhaust)
    draws, steps = schedule.draws, schedule.steps
    full = mixture_schedule({"geo": 5, "det": 5}, {"geo": 0.3, "det": 0.7}, 12, 42, "exhaust")
    assert 3 <= len(full) <= 10 and len(full) % 3
    assert steps == len(full) // 3 and draws == full[: steps * 3]


def test_a_schedule_shorter_than_one_step_is_refused():
    cfg = tiny_config("train.prompts_per_step=7", "train.sampling=exhaust", "train.mixture={det: 1.0}")
    with pytest.raises(ValueError, match="shorter than one step"):
        schedule_of(cfg)


def test_the_dataset_is_the_schedule_row_by_row():
    cfg = tiny_config()
    schedule = schedule_of(cfg)
    dataset, draws, steps = schedule_dataset(TRAIN, schedule.draws), schedule.draws, schedule.steps
    assert (steps, len(dataset)) == (2, 6)
    for row, draw in zip(dataset, draws, strict=True):
        ex = TRAIN[draw.domain][draw.index]
        assert (row["example_id"], row["domain"], row["solution"]) == (ex.id, ex.domain, ex.solution)
        assert row["prompt"] == [{"role": "user", "content": render_prompt(ex)}]
        assert list(row["options"]) == list(ex.options)


def test_grpo_args_keep_the_schedule_order(tmp_path):
    args = grpo_args(tiny_config(), tmp_path, 2)
    assert args.shuffle_dataset is False
    assert (args.per_device_train_batch_size, args.num_generations, args.max_steps) == (6, 2, 2)


class KeepDataloader(TrainerCallback):
    """Holds the dataloader the trainer trains from (HF passes it to every callback event)."""

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.dataloader = train_dataloader


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_test_model(tmp_path_factory.mktemp("tiny"), [e for ex in TRAIN.values() for e in ex])


def test_the_trainer_yields_the_schedules_draws_each_repeated_g_times_in_order(tiny_model, tmp_path):
    cfg = tiny_config()
    keep = KeepDataloader()
    result = train_grpo(
        cfg,
        TRAIN,
        tiny_model,
        tmp_path,
        schedule=schedule_of(cfg),
        run_id="wiring",
        reward_sets=reward_sets(cfg),
        callbacks=[keep],
    )
    draws = schedule_of(cfg).draws
    scheduled = [TRAIN[d.domain][d.index].id for d in draws]
    assert len(set(scheduled)) > 1 and Counter(d.domain for d in draws) == Counter(result.realised_counts)
    batches = [[row["example_id"] for row in batch] for batch in keep.dataloader]
    g = cfg.train.num_generations
    expected = [i for i in scheduled for _ in range(g)]
    assert [i for batch in batches for i in batch] == expected, "the trainer reordered the mixture schedule"
    # One batch per optimizer step: prompts_per_step prompts x G completions.
    assert [len(b) for b in batches] == [cfg.train.prompts_per_step * g] * cfg.train.steps
    assert result.steps == cfg.train.steps


def _completion(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_a_mixed_batch_is_scored_by_each_domains_own_rewards():
    cfg = tiny_config()
    geo, det = TRAIN["geo"][0], TRAIN["det"][3]
    assert (geo.answer_kind, det.solution) == ("mc", "[{'Position': [28, 84, 56, 112], 'Confidence': 1}]")
    # det's box moved right by a quarter of its width: intersection 21x28 over union 35x28, IoU 0.6
    # (above Visual-RFT's 0.5 threshold), while an exact-match accuracy would give it 0.
    shifted = "<think> x </think> <answer> [{'Position': [35, 84, 63, 112], 'Confidence': 1}] </answer>"
    rows = [det, geo, det, geo]
    texts = [
        shifted,  # det's set (format 1 + IoU 2): 1 + 2 * 0.6; geo's (accuracy): 1 + 0
        reference_completion(geo),  # geo's set: 1 + 2; det's: a letter is no box, 1 + 0
        reference_completion(geo),  # a letter where det wants boxes: 1 + 0
        reference_completion(det),  # boxes where geo wants a letter: 1 + 0
    ]
    logged: dict[str, float] = {}
    totals = DomainRewards(reward_sets(cfg))(
        prompts=[render_prompt(r) for r in rows],
        completions=[_completion(t) for t in texts],
        domain=[r.domain for r in rows],
        solution=[r.solution for r in rows],
        answer_kind=[r.answer_kind for r in rows],
        options=[list(r.options) for r in rows],
        example_id=[r.id for r in rows],  # TRL passes every dataset column; unused ones are ignored
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert totals == pytest.approx([2.2, 3.0, 1.0, 1.0])
    assert logged == pytest.approx(
        {"reward/det": 1.6, "accuracy/det": 0.3, "reward/geo": 2.0, "accuracy/geo": 0.5}
    )
    # Plain-text completions (non-conversational prompts) are scored the same way.
    plain = DomainRewards(reward_sets(cfg))(
        None, texts, [r.domain for r in rows], [r.solution for r in rows], [r.answer_kind for r in rows],
        [list(r.options) for r in rows],
    )  # fmt: skip
    assert plain == totals
