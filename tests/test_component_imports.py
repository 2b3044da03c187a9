"""Each pipeline step is a fresh Python process, so what a step imports is paid ~16 times a run
(benchmarks/component_imports.py, docs/benchmarks.md): the planning step loads no deep-learning
stack, no scipy and no S3 client; a pilot's step reads its scores and makes its run record without
loading torch (its training process, which evaluates the model too, loads the stack once)."""

from __future__ import annotations

import json
import subprocess
import sys

LIGHT_STEPS = """
import json, sys
from modomodo.cli.common import resolve_config
from modomodo.components.pilots import plan_seed_pilots

config = resolve_config("smoke", []).to_dict()
pilots = plan_seed_pilots.python_func(config=config)
loaded = [m for m in ("torch", "transformers", "trl", "deepspeed", "scipy", "sklearn", "boto3") if m in sys.modules]
print(json.dumps({"pilots": len(pilots), "loaded": loaded}))
"""

PILOT_STEP = """
import json, sys
from modomodo.components.rl_run import train_and_evaluate_run
from modomodo.evaluation.evaluate import EvalResult
from modomodo.mixture import pilots

result = EvalResult.read(sys.argv[1])
run = {"run_id": "x-uniform", "mixture": {"geo": 1.0}, "kind": "seed", "seed": 42, "steps": 2}
record = pilots.run_record(run, pilots.score_columns(result))
loaded = [m for m in ("torch", "transformers", "trl", "deepspeed") if m in sys.modules]
print(json.dumps({"record": record, "loaded": loaded}))
"""


def test_the_planning_step_loads_no_heavy_package():
    done = subprocess.run([sys.executable, "-c", LIGHT_STEPS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["pilots"] == 6  # the smoke preset's seeds
    assert result["loaded"] == []


def test_a_pilot_steps_own_process_reads_scores_without_the_deep_learning_stack(tmp_path):
    scores = {
        "scores": [
            {"benchmark": "geo", "split": "in", "n": 4, "score": 0.5, "metric": "accuracy"},
            {"benchmark": "chart", "split": "out", "n": 2, "score": 0.25, "metric": None},
        ],
        "in_score": 0.5,
        "out_score": 0.25,
        "max_new_tokens": 16,
    }
    (tmp_path / "scores.json").write_text(json.dumps(scores))
    done = subprocess.run(
        [sys.executable, "-c", PILOT_STEP, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    record = result["record"]
    assert record["run_id"] == "x-uniform" and record["out_score"] == 0.25 and record["geo_score"] == 0.5
