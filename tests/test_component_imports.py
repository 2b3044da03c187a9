"""Each pipeline step is a fresh Python process, so what a light step imports is paid ~28 times a
run (benchmarks/component_imports.py, docs/benchmarks.md): the planning and run-record steps load
no deep-learning stack, no scipy and no S3 client."""

from __future__ import annotations

import json
import subprocess
import sys

LIGHT_STEPS = """
import json, sys
from modomodo.cli.common import resolve_config
from modomodo.components.pilots import plan_seed_pilots, run_record

config = resolve_config("smoke", []).to_dict()
pilots = plan_seed_pilots.python_func(config=config)
run = {"run_id": "x-uniform", "mixture": pilots[-1]["mixture"], "kind": "seed", "seed": 42, "steps": 2}
record = run_record.python_func(run=run, scores={"out_score": 0.3, "in_score": 0.2})
loaded = [m for m in ("torch", "transformers", "trl", "deepspeed", "scipy", "sklearn", "boto3") if m in sys.modules]
print(json.dumps({"pilots": len(pilots), "record": record.record["run_id"], "loaded": loaded}))
"""


def test_the_planning_and_run_record_steps_load_no_heavy_package():
    done = subprocess.run([sys.executable, "-c", LIGHT_STEPS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["pilots"] == 6 and result["record"] == "x-uniform"  # the smoke preset's seeds
    assert result["loaded"] == []
