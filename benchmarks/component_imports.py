"""What a light pipeline step costs before its work: kfp's local runner (and a cluster) starts a
fresh Python for each of the ~16 tasks of the mixture search, which imports kfp's executor and
then whatever the component's body imports.

    python benchmarks/component_imports.py [--repeats 5]

For each light component (plan-seed-pilots, fit-surrogate, search-mixture) a fresh
interpreter does what its task's process does: import kfp's executor entry
(``kfp.dsl.executor_main``), then run the component's body on small real inputs (the smoke
preset's config with 20 search trials, seven seed pilots' records). Shown per component, median
of ``--repeats``: the process's wall time, kfp's executor import, the body (its imports and its
work), the body's imports alone, and which heavy packages the process loaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = (
    "torch",
    "transformers",
    "trl",
    "deepspeed",
    "scipy",
    "sklearn",
    "pandas",
    "matplotlib",
    "optuna",
    "boto3",
)

CHILD = """
import builtins, json, sys, time
start = time.perf_counter()
import kfp.dsl.executor_main  # every task's process starts here
executor = time.perf_counter()
from kfp import dsl
import modomodo.components.{module} as module
inputs = json.loads(open(sys.argv[1]).read())
for name in ("records", "surrogate", "quality", "proposals"):
    if name in inputs:
        kind = {{"records": dsl.Dataset, "surrogate": dsl.Model, "quality": dsl.Metrics}}.get(name, dsl.Dataset)
        inputs[name] = kind(name=name, uri=inputs[name])
# time spent in the body's outermost imports (nested ones count in their importer's time)
real_import, depth, imports = builtins.__import__, 0, 0.0
def timed_import(*args, **kwargs):
    global depth, imports
    if depth:
        return real_import(*args, **kwargs)
    depth, began = 1, time.perf_counter()
    try:
        return real_import(*args, **kwargs)
    finally:
        depth, imports = 0, imports + time.perf_counter() - began
builtins.__import__ = timed_import
body = time.perf_counter()
module.{function}.python_func(**inputs)
done = time.perf_counter()
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"executor": executor - start, "imports": imports, "body": done - body, "heavy": heavy}}))
"""


def inputs(work: Path) -> dict[str, dict]:
    """Small real inputs of each component: the smoke config, seven seed pilots' records."""
    from modomodo.cli.common import resolve_config
    from modomodo.components.surrogate import fit_surrogate
    from modomodo.mixture import pilots as plans

    cfg = resolve_config("smoke", ["search.seeds=[single, exclude_one, uniform]", "search.trials=20"])
    config = cfg.to_dict()
    pilots = plans.seed_pilots(cfg)
    rows = []
    for i, pilot in enumerate(pilots):
        run = {
            "run_id": f"bench-{pilot['run']}",
            "mixture": pilot["mixture"],
            "kind": "seed",
            "seed": 42,
            "steps": 2,
        }
        rows.append(plans.run_record(run, {"out_score": 0.1 + 0.02 * i, "in_score": 0.2 - 0.01 * i}))
    fitted = {name: str(work / "fit" / name) for name in ("records", "surrogate", "quality")}
    fit = {"config": config, "pushgateway": "", "rows": rows}
    from kfp import dsl

    # the search reads the records table a fit wrote
    fit_surrogate.python_func(
        **fit,
        records=dsl.Dataset(name="records", uri=fitted["records"]),
        surrogate=dsl.Model(name="surrogate", uri=fitted["surrogate"]),
        quality=dsl.Metrics(name="quality", uri=fitted["quality"]),
    )
    return {
        "pilots:plan_seed_pilots": {"config": config},
        "surrogate:fit_surrogate": {
            **fit,
            **{name: str(work / "fit-again" / name) for name in ("records", "surrogate", "quality")},
        },
        "search:search_mixture": {
            "config": config,
            "pushgateway": "",
            "mode": "best",
            "wave": "search",
            "records": fitted["records"],
            "proposals": str(work / "proposals"),
        },
    }


def measure(target: str, arguments: dict, work: Path) -> dict:
    module, function = target.split(":")
    path = work / f"{function}.json"
    path.write_text(json.dumps(arguments))
    code = CHILD.format(module=module, function=function, heavy=HEAVY)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    return {"wall": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        print(
            f"{'component':<18} {'wall s':>7} {'executor s':>10} {'body s':>7} {'its imports s':>13}  "
            "heavy packages loaded"
        )
        for target, arguments in inputs(work).items():
            runs = [measure(target, arguments, work) for _ in range(args.repeats)]
            median = {
                key: statistics.median(r[key] for r in runs)
                for key in ("wall", "executor", "imports", "body")
            }
            name = target.split(":")[1].replace("_", "-")
            print(
                f"{name:<18} {median['wall']:7.2f} {median['executor']:10.2f} {median['body']:7.2f} "
                f"{median['imports']:13.2f}  {' '.join(runs[-1]['heavy'])}"
            )


if __name__ == "__main__":
    main()
