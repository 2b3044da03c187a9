"""GRPO on a CUDA device in bf16: what a GPU node runs, on the tiny model. Marked ``gpu``: the test
command deselects it (``-m "not gpu"``); run it on a GPU machine with ``pytest -m gpu``. Without a
CUDA device it fails with a message saying so, never a skip."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from tiny import build_test_model
from transformers import TrainerCallback

from modomodo.config import load_config
from modomodo.data.synthetic import generate
from modomodo.rewards.domains import reward_sets
from modomodo.rl.grpo import train_grpo, training_schedule

pytestmark = pytest.mark.gpu

TRAIN = {"geo": generate("geo", "train", 6, seed=0), "det": generate("det", "train", 6, seed=0)}


@pytest.fixture(scope="module", autouse=True)
def cuda():
    if not torch.cuda.is_available():
        pytest.fail(
            "no CUDA device: this test needs a GPU (torch.cuda.is_available() is False); "
            'run it on a GPU node, or deselect it with -m "not gpu"',
            pytrace=False,
        )
    if not torch.cuda.is_bf16_supported():
        pytest.fail(f"{torch.cuda.get_device_name()} has no bf16 support", pytrace=False)


class Placement(TrainerCallback):
    """Where and in which dtype the trainer holds the model, and the dataloader it trains from."""

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        self.device, self.dtype, self.bf16 = model.device, model.dtype, args.bf16
        self.dataloader = train_dataloader


def test_grpo_trains_in_bf16_on_the_gpu_and_follows_the_schedule(tmp_path):
    cfg = load_config(
        "smoke",
        [
            "data.domains={geo: {n_train: 6, rewards: [{name: format}, {name: accuracy, weight: 2}]},"
            " det: {n_train: 6, rewards: [{name: format}, {name: iou_visual_rft, weight: 2}]}}",
            "policy.dtype=auto",  # bf16 on a GPU that has it, as the paper preset trains
            "train.steps=3",
            "train.prompts_per_step=4",
            "train.num_generations=4",
            "train.max_completion_length=16",
            "train.lr=1e-3",  # large enough that three steps move bf16 weights visibly
            "train.checkpoint_every=100",
        ],
    )
    base = build_test_model(tmp_path / "tiny", [e for ex in TRAIN.values() for e in ex])
    placement = Placement()
    result = train_grpo(
        cfg,
        TRAIN,
        base,
        tmp_path / "rl",
        schedule=training_schedule(TRAIN, cfg.train, cfg.resolved_mixture()),
        run_id="gpu",
        reward_sets=reward_sets(cfg),
        callbacks=[placement],
    )
    assert placement.device.type == "cuda"
    assert placement.bf16 and placement.dtype == torch.bfloat16
    assert result.steps == 3
    losses = [h["loss"] for h in result.log_history if "loss" in h]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    draws = training_schedule(TRAIN, cfg.train, cfg.resolved_mixture()).draws
    ids = [row["example_id"] for batch in placement.dataloader for row in batch]
    assert ids == [TRAIN[d.domain][d.index].id for d in draws for _ in range(4)]
    before, after = (
        load_file(str(base / "model.safetensors")),
        load_file(f"{result.model_dir}/model.safetensors"),
    )
    # The base was saved in fp32; compare in the dtype it trained in (bf16 rounding is no change).
    changed = [k for k in before if not torch.equal(before[k].to(after[k].dtype), after[k])]
    assert changed and not any(".visual." in f".{k}" for k in changed), "the language model trained"
