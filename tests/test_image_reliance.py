"""The image-reliance check: loss with each example's own image against rotated images."""

from __future__ import annotations

import dataclasses

import pytest
from tiny import build_test_model

from modomodo.data.synthetic import generate
from modomodo.policy.image_reliance import image_reliance, rotate_images
from modomodo.policy.load import load_policy

SCI = generate("sci", "train", 6, seed=3)


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    return load_policy(build_test_model(tmp_path_factory.mktemp("tiny"), SCI), "fp32")


def test_rotation_gives_each_example_the_next_image_and_keeps_the_rest():
    rotated = rotate_images(SCI)
    assert [e.image for e in rotated] == [e.image for e in SCI[1:] + SCI[:1]]
    assert [dataclasses.replace(r, image=e.image) for r, e in zip(rotated, SCI, strict=True)] == SCI


def test_when_every_image_is_the_same_the_wrong_image_costs_nothing(tiny_policy):
    model, processor = tiny_policy
    same = [dataclasses.replace(e, image=SCI[0].image) for e in SCI]
    reliance = image_reliance(model, processor, same, batch_size=4)
    assert reliance.gap == 0.0
    assert reliance.examples == len(SCI) and reliance.own_image_loss > 0


def test_different_images_change_the_loss_and_the_model_is_left_as_it_was(tiny_policy):
    model, processor = tiny_policy
    model.train()
    reliance = image_reliance(model, processor, SCI, batch_size=4)
    assert reliance.gap != 0.0, "even a random model's loss depends a little on which image it sees"
    assert model.training, "the caller's train/eval mode is restored"
    model.eval()


def test_one_example_cannot_be_checked(tiny_policy):
    with pytest.raises(ValueError, match="at least two"):
        image_reliance(*tiny_policy, SCI[:1])


def test_the_base_policy_check_prefers_each_domains_held_out_split():
    from modomodo.data.curated import CuratedData
    from modomodo.stages.base_policy import RELIANCE_EXAMPLES, reliance_examples

    geo, sci_test = generate("geo", "train", 40, seed=1), generate("sci", "test", 3, seed=1)
    data = CuratedData(
        train={"geo": geo, "sci": SCI, "lonely": SCI[:1]},
        benchmarks={"sci": sci_test, "chart": generate("chart", "test", 5, seed=1)},
        splits={"sci": "in", "chart": "out"},
    )
    chosen = reliance_examples(data)
    assert chosen == {"geo": geo[:RELIANCE_EXAMPLES], "sci": sci_test}, "one example has no image to swap"
