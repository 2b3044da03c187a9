"""What a pipeline step's fresh Python costs before its stage body runs: CPU seconds (user +
system, less sensitive to other load than wall time) of a process that imports what the step
imports, for each kind of step of the mixture search, and the smoke run's total over its tasks.

    python benchmarks/step_startup.py [--repeats 5]

Each of kfp's tasks (local runner or pod) is a fresh interpreter that imports kfp's executor,
then what the component's body imports; a pilot's step also starts a training child
(``python -m modomodo.cli train``), which imports the ML stack. Model loading and the store's
copies are not included: they are part of the stage's work, counted by
``benchmarks/orchestration_overhead.py``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys

EXECUTOR = "import kfp.dsl.executor_main"
PROCESSES = {
    "kfp executor alone": EXECUTOR,
    "light step (planner, run record)": f"{EXECUTOR}; import modomodo.components.runtime, modomodo.mixture.pilots",
    "pilot step's own process": f"{EXECUTOR}; import modomodo.components.rl_run, modomodo.evaluation.evaluate",
    "training child": "import modomodo.cli.app, modomodo.stages.rl, modomodo.rl.grpo, modomodo.policy.load",
    "training child, then its evaluation": (
        "import modomodo.cli.app, modomodo.stages.rl, modomodo.rl.grpo, modomodo.policy.load;"
        " import modomodo.stages.evaluate, modomodo.evaluation.evaluate"
    ),
    "evaluate step": (
        f"{EXECUTOR}; import modomodo.components.runtime, modomodo.stages;"
        " import modomodo.evaluation.evaluate, modomodo.policy.load, modomodo.store"
    ),
}
"""Which imports each kind of process does before its work (the bodies import inside functions)."""

SMOKE_PILOTS = 7
"""Six seed pilots of the smoke preset and the final run."""
PER_PILOT = {
    "rl-update -> evaluate -> run-record": [
        "pilot step's own process",
        "training child",
        "evaluate step",
        "light step (planner, run record)",
    ],
    "train-and-evaluate": ["pilot step's own process", "training child, then its evaluation"],
}
"""The processes one pilot starts, before and after the pilot became one step."""


def cpu_of(code: str) -> float:
    """CPU seconds of a fresh interpreter running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cpu = {}
    print(f"{'process':<40}{'CPU s (median)':>16}")
    for name, code in PROCESSES.items():
        cpu[name] = statistics.median(cpu_of(code) for _ in range(args.repeats))
        print(f"{name:<40}{cpu[name]:>16.2f}")
    print(f"\nstartup CPU of the smoke run's {SMOKE_PILOTS} trained runs (6 pilots + the final run)")
    for shape, processes in PER_PILOT.items():
        each = sum(cpu[p] for p in processes)
        print(f"{shape:<40}{each:>8.2f} s a pilot, {SMOKE_PILOTS * each:6.1f} s a run")


if __name__ == "__main__":
    main()
