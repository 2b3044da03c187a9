"""Model inputs are built on the CPU and land on the model's device (a GPU on a cluster node)."""

from __future__ import annotations

import pytest
import torch
from tiny import build_test_model

from modomodo.data.prompts import reference_completion
from modomodo.data.synthetic import generate
from modomodo.policy.inputs import generation_batch, sft_batch
from modomodo.policy.load import policy_device
from modomodo.policy.tiny import load_tiny_processor

REF = generate("ref", "train", 3, seed=2)


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return load_tiny_processor(build_test_model(tmp_path_factory.mktemp("tiny"), REF))


def test_batches_stay_on_the_cpu_unless_a_device_is_named(processor):
    for batch in (
        generation_batch(processor, REF),
        sft_batch(processor, REF, [reference_completion(e) for e in REF]),
    ):
        assert {v.device.type for v in batch.values()} == {"cpu"}


def test_batches_move_to_the_named_device(processor):
    meta = torch.device("meta")  # a device other than the CPU that exists on every machine
    gen = generation_batch(processor, REF, meta)
    sft = sft_batch(processor, REF, [reference_completion(e) for e in REF], meta)
    assert {v.device.type for v in gen.values()} == {"meta"}
    assert {v.device.type for v in sft.values()} == {"meta"}
    assert set(gen) <= set(sft), "the SFT batch carries what generation needs, plus labels"


def test_single_process_stages_use_the_gpu_only_where_there_is_one():
    assert policy_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
