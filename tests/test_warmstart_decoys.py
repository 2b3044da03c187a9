"""The warm-start's decoys (``sft.decoy_rate``): which target each draw of an example gets."""

from __future__ import annotations

import numpy as np
import pytest

from modomodo.config import ConfigError, load_config
from modomodo.data.prompts import decoy_completion, reference_completion
from modomodo.data.synthetic import generate
from modomodo.policy.warmstart import draw_targets


def _with_and_without_decoy():
    examples = generate("spatial", "train", 60, seed=0)
    with_decoy = next(e for e in examples if "decoy_solution" in e.meta)
    without = next(e for e in examples if "decoy_solution" not in e.meta)
    return with_decoy, without


def test_rate_zero_teaches_only_references():
    with_decoy, without = _with_and_without_decoy()
    targets = draw_targets([with_decoy, without] * 200, np.random.default_rng(0), 0.0)
    assert set(targets) == {reference_completion(with_decoy), reference_completion(without)}


def test_each_draw_of_an_example_gets_its_decoy_at_the_rate():
    """Drawn afresh per draw (the same example gets both targets), at about the rate; an example
    without a decoy always gets its reference."""
    with_decoy, without = _with_and_without_decoy()
    rng = np.random.default_rng(0)
    draws = [draw_targets([with_decoy, without], rng, 0.5) for _ in range(2000)]
    decoys = sum(t[0] == decoy_completion(with_decoy) for t in draws)
    assert decoy_completion(with_decoy) != reference_completion(with_decoy)
    assert 900 < decoys < 1100, decoys
    assert {t[1] for t in draws} == {reference_completion(without)}


@pytest.mark.parametrize("rate", ["-0.1", "1.0", "nan"])
def test_a_decoy_rate_outside_zero_to_one_is_refused_at_load(rate):
    with pytest.raises(ConfigError, match=r"sft\.decoy_rate"):
        load_config("smoke", [f"sft.decoy_rate={rate}"])
