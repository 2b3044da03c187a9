"""Wall time of the mixture-search pipeline under kfp's local runner against the same stage
functions called directly, one after another, in one process; same preset.

    python benchmarks/orchestration_overhead.py [--preset smoke] [--set key=value ...] [--workdir DIR]

The pipeline pays for a fresh Python process per step (kfp's executor, the step's imports; a
pilot's step also starts its training child, which then evaluates the model it trained) and for
artifact bookkeeping; it gains from running two pilots at once. The direct variant runs the same
graph (curate, base policy, base evaluation, pass-rate profile, every wave of pilots with RL
update + evaluation, surrogate fits, searches, the final run, the report) sequentially. Both wall
time and CPU time (this process and its children, user + system) are shown: CPU time counts the
orchestration work itself and is less sensitive to other load on the machine; wall time includes
the gain of parallel pilots. Also shown: the pipeline's task count (how many fresh processes it
started, and how many of them run on the GPU image, the ML stack's) and the overhead per task.
With ``--repeats`` the variants alternate which goes first. Goal (issue 15): pipeline / direct
wall time <= 1.10.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from modomodo import stages
from modomodo.config import ExperimentConfig, load_config
from modomodo.mixture import pilots as plans
from modomodo.pipelines.local import run_locally
from modomodo.pipelines.local_console import watch_tasks
from modomodo.pipelines.settings import STEPS

GOAL = 1.10
"""Issue 15's must-show: pipeline / direct wall time."""

PROFILE_PROMPTS = 32


def train_and_score(cfg: ExperimentConfig, data: Path, base: Path, out: Path, store, pilot: dict) -> dict:
    """One pilot as the pipeline's loop body does it: RL update -> evaluate -> run record."""
    from dataclasses import replace

    run_cfg = replace(cfg, train=replace(cfg.train, mixture=pilot["mixture"])).validate()
    run_id = f"{cfg.name}-{pilot['run']}"
    result = stages.rl_stage(run_cfg, data, base, out / run_id, run_id=run_id, resume=True, store=store)
    scores = plans.score_columns(
        stages.evaluate_stage(run_cfg, data, Path(result.model_dir), out / f"{run_id}-eval", run_id=run_id)
    )
    run = {
        "run_id": run_id,
        "mixture": run_cfg.resolved_mixture(),
        "kind": pilot["kind"],
        "seed": cfg.train.seed,
        "steps": result.steps,
    }
    return {"run": run, "scores": scores, "record": plans.run_record(run, scores)}


def direct(cfg: ExperimentConfig, out: Path) -> None:
    """The mixture-search graph, step by step, in this process."""
    from modomodo.store import ArtifactStore

    store = ArtifactStore.from_uri(str(out / "store"))
    data = out / "data"
    stages.curate_stage(cfg, data)
    base = stages.base_policy_stage(cfg, data, out / "base")
    base_scores = plans.score_columns(
        stages.evaluate_stage(cfg, data, base, out / "eval-base", run_id="base")
    )
    stages.rollout_stage(
        cfg, data, base, out / "profile", run_id="profile", prompts_per_domain=PROFILE_PROMPTS
    )

    def wave(pilots: list[dict], previous: Path | None, index: int) -> tuple[object, Path]:
        rows = [train_and_score(cfg, data, base, out, store, pilot)["record"] for pilot in pilots]
        records = plans.load_records(cfg, rows, previous)
        folder = out / f"surrogate-{index}"
        stages.fit_surrogate_stage(cfg, records, folder, run_id=f"surrogate-{index}")
        return records, folder / "records.csv"

    records, table = wave(plans.seed_pilots(cfg), None, 0)
    if cfg.search.heuristics:
        records, table = wave(plans.heuristic_pilots(cfg, records), table, 1)
    for round_index in range(1, cfg.search.rounds + 1):
        found = stages.search_stage(
            cfg,
            records,
            out / f"round{round_index}",
            mode="explore",
            k=cfg.search.pilots_per_round,
            storage=None,
            run_id="round",
        )
        pilots = [
            plans.pilot_item(f"round{round_index}-{i}", p.mixture, "pilot")
            for i, p in enumerate(found.proposals)
        ]
        records, table = wave(pilots, table, 1 + round_index)
    best = stages.search_stage(
        cfg, records, out / "search", mode="best", k=cfg.search.top_k, storage=None, run_id="search"
    )
    chosen = train_and_score(
        cfg, data, base, out, store, plans.pilot_item("chosen", best.proposals[0].mixture, "model")
    )
    stages.report_stage(
        cfg,
        out / "report",
        run_id="report",
        base_scores=base_scores,
        final_run=chosen["run"],
        final_scores=chosen["scores"],
        records_csv=table,
        surrogate_dir=table.parent,
        search_dir=out / "search",
        profile_dir=out / "profile",
    )


class TaskCount:
    """The tasks a local run started, through ``modomodo run``'s hook on kfp's local runner."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, task: str) -> int:
        self.names.append(task)
        return len(self.names) - 1

    def ended(self, token: int, failed: bool, outputs, tail: str = "") -> None:
        pass

    def on_gpu(self) -> int:
        """Tasks of GPU steps (``STEPS``): the ones whose process loads the ML stack."""
        steps = [name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name for name in self.names]
        return sum(STEPS[step].gpu for step in steps if step in STEPS)


def pipeline(cfg: ExperimentConfig, out: Path, count: TaskCount) -> None:
    """The mixture-search pipeline under kfp's local runner, its tasks counted."""
    count.names.clear()
    with watch_tasks(count):
        run_locally(
            "mixture-search",
            cfg,
            out,
            store_uri=str(out / "store"),
            arguments={"profile_prompts": PROFILE_PROMPTS},
        )


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(run: Callable[[int], object], repeat: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``run(repeat)``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    run(repeat)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="smoke")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="Config override (repeatable)."
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    cfg = load_config(args.preset, args.overrides)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="orchestration-overhead-"))
    count = TaskCount()
    variants = {
        "direct stage calls, one process": lambda i: direct(cfg, work / f"direct-{i}"),
        "kfp local pipeline": lambda i: pipeline(cfg, work / f"pipeline-{i}", count),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for i in range(args.repeats):
        order = list(variants) if i % 2 == 0 else list(reversed(variants))
        for name in order:
            results[name].append(measure(variants[name], i))
    pilots = (
        len(plans.seed_pilots(cfg))
        + len(cfg.search.heuristics)
        + cfg.search.rounds * cfg.search.pilots_per_round
    )
    print(f"\nOrchestration overhead: preset {args.preset} {' '.join(args.overrides)}")
    print(
        f"{pilots} pilots + 1 final run of {cfg.train.steps} GRPO steps, ParallelFor parallelism "
        f"{cfg.search.parallelism}, {args.repeats} repeat(s), medians"
    )
    print(f"{'variant':<36}{'wall s':>10}{'CPU s':>10}")
    median = {
        name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in results.items()
    }
    for name, (wall, cpu) in median.items():
        print(f"{name:<36}{wall:>10.1f}{cpu:>10.1f}")
    (direct_wall, direct_cpu), (pipeline_wall, pipeline_cpu) = median.values()
    ratio = pipeline_wall / direct_wall
    print(f"{'ratio (pipeline / direct)':<36}{ratio:>10.3f}{pipeline_cpu / direct_cpu:>10.3f}")
    tasks = len(count.names)
    print(
        f"{tasks} pipeline tasks ({count.on_gpu()} of GPU steps); overhead per task: "
        f"{(pipeline_wall - direct_wall) / tasks:.2f} s wall, {(pipeline_cpu - direct_cpu) / tasks:.2f} s CPU"
    )
    print(f"goal: wall ratio <= {GOAL}: {'met' if ratio <= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
