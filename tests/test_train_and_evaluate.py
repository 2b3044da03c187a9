"""A pipeline's pilot trains and evaluates in one step: ``rl_stage(evaluate_to=...)`` evaluates the
trained model in the process that trained it (this one, or the isolated training child), with the
same scores and samples as a separate evaluation of that model, and the step reads them back
(``EvalResult.read``) without the ML stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_pod_entry import TINY

from modomodo import stages
from modomodo.config import load_config
from modomodo.evaluation.evaluate import EvalResult

pytestmark = pytest.mark.slow  # trains twice (about 90 s on 2 loaded cores)

CFG = load_config("smoke", [item for item in TINY if not item.startswith("train.deepspeed")])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny")
    stages.curate_stage(CFG, root / "data")
    return root / "data", stages.base_policy_stage(CFG, root / "data", root / "base")


@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "training-child"])
def test_the_training_process_evaluates_the_model_it_trained(inputs, tmp_path, isolate):
    data, base = inputs
    evaluated = tmp_path / "samples"
    result = stages.rl_stage(
        CFG, data, base, tmp_path / "run", run_id=f"tiny-{isolate}", isolate=isolate, evaluate_to=evaluated
    )
    assert result.steps == CFG.train.steps
    scores = EvalResult.read(evaluated)
    # the same as evaluating the stored model on its own (greedy decoding: deterministic)
    alone = stages.evaluate_stage(CFG, data, Path(result.model_dir), tmp_path / "alone", run_id="alone")
    assert scores == alone
    assert scores.out_score is not None and scores.max_new_tokens == CFG.eval.max_new_tokens
    samples = (evaluated / "samples.jsonl").read_text().splitlines()
    assert samples == (tmp_path / "alone" / "samples.jsonl").read_text().splitlines()
    assert (
        len(samples) == sum(s.n for s in scores.scores) and json.loads(samples[0])["completion"] is not None
    )
