"""modomodo's Grafana dashboards as code: training, mixture search, evaluation, stages.

``python monitoring/dashboards.py`` writes them to ``charts/modomodo/files/dashboards/*.json``
(the chart wraps each file in a ConfigMap for Grafana's sidecar); ``--check`` only compares and
fails when the committed JSON differs from what this code generates.

Metric names come from :mod:`modomodo.metrics`, never typed here. Pushgateway groups of a run are
deleted when its pipeline ends (``docs/metrics.md``), so per-run values are read over the
dashboard's time range (``last_over_time(...[$__range])``), not from the Pushgateway's present.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `monitoring` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modomodo import metrics as m
from monitoring.grafana import Dashboard, Panel, Query, render, run_variable

OUT_DIR = Path(__file__).resolve().parents[1] / "charts" / "modomodo" / "files" / "dashboards"
"""Where the generated JSON goes (one file per dashboard, named by its uid)."""

RUN = 'run=~"$run"'
"""Matcher of the dashboard's ``run`` variable."""
FINAL_RUNS = ".+-(chosen|train)-[0-9a-f]{10}"
"""Run ids of a pipeline's final RL update: ``<experiment>-<run_name>-<fingerprint>`` with the
run_name the pipelines give it (``chosen`` after a search, ``train`` in the train pipeline);
every other RL update is a pilot."""


def _last(metric: str, matchers: str) -> str:
    """The last value of each series of ``metric`` in the dashboard's time range."""
    selector = f"{metric}{{{matchers}}}" if matchers else metric
    return f"last_over_time({selector}[$__range])"


def training() -> Dashboard:
    return Dashboard(
        uid="modomodo-training",
        title="modomodo / Training",
        description="GRPO updates: rewards, accuracy, KL, speed, memory and the mixture they really sampled.",
        time_from="now-24h",
        variables=(run_variable(m.TRAIN_STEPS),),
        panels=(*_training_learning_panels(), *_training_throughput_panels()),
    )


def _training_learning_panels() -> tuple[Panel, ...]:
    """What the policy learns: reward, accuracy, KL, loss, step time."""
    per_domain = "{{run}} {{domain}}"
    return (
        Panel(
            "Reward per domain",
            "Mean total reward of the last logged step's samples of each domain.",
            (Query(f"avg by (run, domain) ({m.TRAIN_REWARD}{{{RUN}}})", per_domain),),
        ),
        Panel(
            "Accuracy per domain",
            "Mean accuracy (or IoU) reward part of the last logged step's samples of each domain.",
            (Query(f"avg by (run, domain) ({m.TRAIN_ACCURACY}{{{RUN}}})", per_domain),),
            unit="percentunit",
        ),
        Panel(
            "KL to the reference policy",
            "KL divergence at the last logged step (absent when beta = 0).",
            (Query(f"avg by (run) ({m.TRAIN_KL}{{{RUN}}})", "{{run}}"),),
        ),
        Panel(
            "Loss",
            "Training loss at the last logged step.",
            (Query(f"avg by (run) ({m.TRAIN_LOSS}{{{RUN}}})", "{{run}}"),),
        ),
        Panel(
            "Step time",
            "Mean and 90th percentile of a training step (rollout + update) over the run so far.",
            (
                Query(
                    f"sum by (run) ({m.TRAIN_STEP_SECONDS}_sum{{{RUN}}})"
                    f" / sum by (run) ({m.TRAIN_STEP_SECONDS}_count{{{RUN}}})",
                    "{{run}} mean",
                ),
                Query(
                    f"histogram_quantile(0.9, sum by (run, le) ({m.TRAIN_STEP_SECONDS}_bucket{{{RUN}}}))",
                    "{{run}} p90",
                ),
            ),
            unit="s",
        ),
    )


def _training_throughput_panels() -> tuple[Panel, ...]:
    """What it costs and samples: tokens per second, steps, memory, the realised mixture."""
    realised = f"sum by (run, domain) ({m.TRAIN_SAMPLES}{{{RUN}}})"
    return (
        Panel(
            "Tokens per second",
            "Completion tokens generated per second of step time over the last logged steps.",
            (Query(f"avg by (run) ({m.TRAIN_TOKENS_PER_SECOND}{{{RUN}}})", "{{run}}"),),
        ),
        Panel(
            "Optimizer steps",
            "Steps completed per run (a retried pod counts from its checkpoint).",
            (Query(f"max by (run) ({m.TRAIN_STEPS}{{{RUN}}})", "{{run}}"),),
        ),
        Panel(
            "Peak memory",
            "Peak allocated memory per CUDA device, or the process's maximum RSS on CPU.",
            (Query(f"max by (run, device) ({m.TRAIN_PEAK_MEMORY}{{{RUN}}})", "{{run}} {{device}}"),),
            unit="bytes",
        ),
        Panel(
            "Realised mixture share",
            "Share of the prompts drawn from each domain so far, against the configured weight.",
            (
                Query(
                    f"{realised} / ignoring(domain) group_left() sum by (run) ({realised})",
                    "{{run}} {{domain}} realised",
                ),
                Query(
                    f'avg by (run, domain) ({m.MIXTURE_WEIGHT}{{stage="train", {RUN}}})',
                    "{{run}} {{domain}} configured",
                ),
            ),
            unit="percentunit",
            width=24,
        ),
    )


def mixture_search() -> Dashboard:
    return Dashboard(
        uid="modomodo-mixture-search",
        title="modomodo / Mixture search",
        description="Pilot runs, the surrogate's quality, and the chosen mixture's predicted against realised score.",
        panels=(*_pilot_and_search_panels(), *_surrogate_and_choice_panels()),
    )


def _pilot_and_search_panels() -> tuple[Panel, ...]:
    """The pilots and the searches: updates done and failed, trials, best predictions."""
    pilots = f'stage="train", run!="{m.LATEST_RUN}", run!~"{FINAL_RUNS}"'
    return (
        Panel(
            "Pilot RL updates done",
            "Pilot runs whose RL update succeeded in the time range.",
            (Query(f"count(max by (run) ({_last(m.STAGE_LAST_SUCCESS, pilots)}))", "pilots", True),),
            type="stat",
            width=6,
            height=5,
        ),
        Panel(
            "Pilot RL updates failed",
            "Failed executions of pilot RL updates in the time range (a retried pod counts again).",
            (Query(f"sum(max_over_time({m.STAGE_FAILURES}{{{pilots}}}[$__range]))", "failed", True),),
            type="stat",
            width=6,
            height=5,
        ),
        Panel(
            "Search trials",
            "Optuna trials of the last mixture search beyond the observed mixtures.",
            (Query(f"max({_last(m.MIXTURE_SEARCH_TRIALS, '')})", "trials", True),),
            type="stat",
            width=6,
            height=5,
        ),
        Panel(
            "Best predicted score per search",
            "Surrogate-predicted score of the best mixture each search found.",
            (Query(f"max by (run) ({_last(m.MIXTURE_PREDICTED_SCORE, '')})", "{{run}}", True),),
            type="stat",
            width=6,
            height=5,
        ),
    )


def _surrogate_and_choice_panels() -> tuple[Panel, ...]:
    """The surrogate's quality, the chosen mixture, the scores by mixture, the base pass rates."""
    return (
        Panel(
            "Surrogate cross-validated R²",
            "Leave-one-out R² of each fitted surrogate per fit (quadratic against the baselines); "
            "below 0 the surrogate predicts worse than the mean.",
            (Query(f"max by (run, model) ({m.MIXTURE_SURROGATE_R2})", "{{model}} {{run}}"),),
        ),
        Panel(
            "Chosen mixture: predicted against realised",
            "The surrogate's prediction for the chosen mixture and the score its final run reached.",
            (
                Query(
                    f"max by (run, mixture, score) ({m.MIXTURE_FINAL_PREDICTED_SCORE})",
                    "predicted {{score}}",
                ),
                Query(
                    f"max by (run, mixture, score) ({m.MIXTURE_FINAL_SCORE}"
                    f" and on(run, score) {m.MIXTURE_FINAL_PREDICTED_SCORE})",
                    "realised {{score}}",
                ),
            ),
        ),
        Panel(
            "Out score by mixture",
            "Out-of-domain score of every run evaluated in the time range (base, pilots, final), with its mixture.",
            (
                Query(
                    "max by (run, mixture) (" + _last(m.EVAL_OUT_SCORE, 'stage="evaluate"') + ")",
                    "{{run}}",
                    True,
                ),
            ),
            type="table",
        ),
        Panel(
            "Base policy pass rate per domain",
            "Fraction of sampled completions that earned the accuracy reward, and prompts without GRPO signal.",
            (
                Query(f"max by (domain) ({_last(m.ROLLOUT_PASS_RATE, '')})", "{{domain}}", True),
                Query(
                    f"max by (domain) ({_last(m.ROLLOUT_ZERO_SIGNAL_PROMPTS, '')})",
                    "{{domain}} zero-signal prompts",
                    True,
                ),
            ),
            type="bargauge",
        ),
    )


def evaluation() -> Dashboard:
    return Dashboard(
        uid="modomodo-evaluation",
        title="modomodo / Evaluation",
        description="In-domain and out-of-domain scores per run, per benchmark, and against the accepted run.",
        variables=(run_variable(m.EVAL_OUT_SCORE),),
        panels=(
            Panel(
                "In / Out score per run",
                "In-Score and Out-Score of every run evaluated in the time range.",
                (
                    Query(f"max by (run, mixture) ({_last(m.EVAL_IN_SCORE, RUN)})", "in", True),
                    Query(f"max by (run, mixture) ({_last(m.EVAL_OUT_SCORE, RUN)})", "out", True),
                ),
                type="table",
                width=24,
            ),
            Panel(
                "Out score over time",
                "Out-Score of each run as it was evaluated.",
                (Query(f"max by (run) ({m.EVAL_OUT_SCORE}{{{RUN}}})", "{{run}}"),),
            ),
            Panel(
                "Final run against the accepted run",
                "In/Out score of each pipeline's final run against the last accepted run's: the regression alert's view.",
                (
                    Query(
                        f'max by (score) ({m.EVAL_ACCEPTED_SCORE}{{score=~"in_score|out_score"}})',
                        "accepted {{score}}",
                    ),
                    Query(
                        f'max by (run, score) ({m.MIXTURE_FINAL_SCORE}{{score=~"in_score|out_score"}})',
                        "final {{score}} {{run}}",
                    ),
                ),
            ),
            Panel(
                "Score per benchmark",
                "Score of every benchmark (split in or out of domain) per run.",
                (
                    Query(
                        f"max by (run, benchmark, split) ({_last(m.EVAL_SCORE, RUN)})", "{{benchmark}}", True
                    ),
                ),
                type="table",
                width=24,
            ),
        ),
    )


def stages() -> Dashboard:
    return Dashboard(
        uid="modomodo-stages",
        title="modomodo / Stages",
        description="Stage failures, time since each stage last succeeded, durations and curated data.",
        panels=(
            Panel(
                "Time since last success",
                "Per stage, time since it last finished successfully (kept after its run's groups are deleted).",
                (
                    Query(
                        f'time() - max by (stage) ({m.STAGE_LAST_SUCCESS}{{run="{m.LATEST_RUN}"}})',
                        "{{stage}}",
                        True,
                    ),
                ),
                type="bargauge",
                unit="s",
            ),
            Panel(
                "Failures per stage",
                "Failed executions per stage in the time range (an OOM-killed pod shows in the OOM alert).",
                (
                    Query(
                        f'sum by (stage) (max_over_time({m.STAGE_FAILURES}{{run!="{m.LATEST_RUN}"}}[$__range]))',
                        "{{stage}}",
                        True,
                    ),
                ),
                type="bargauge",
            ),
            Panel(
                "Stage duration",
                "Wall time of each stage's last execution per run, failed or not.",
                (Query(f"max by (stage, run) ({m.STAGE_DURATION})", "{{stage}} {{run}}"),),
                unit="s",
                width=24,
            ),
            Panel(
                "Curated rows",
                "Rows written per domain and split, and rows quarantined by validation.",
                (
                    Query(f"max by (domain, split) ({_last(m.DATA_ROWS, '')})", "{{domain}} {{split}}", True),
                    Query(
                        f"max by (domain) ({_last(m.DATA_QUARANTINED_ROWS, '')})",
                        "{{domain}} quarantined",
                        True,
                    ),
                ),
                type="bargauge",
                width=24,
            ),
        ),
    )


DASHBOARDS = (training, mixture_search, evaluation, stages)
"""Every dashboard, as functions building it."""


def generate() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    files = {}
    for build in DASHBOARDS:
        dashboard = render(build())
        files[f"{dashboard['uid']}.json"] = json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is out of date")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder of the dashboard JSON files")
    args = parser.parse_args(argv)
    files = generate()
    existing = {path.name for path in args.out.glob("*.json")} if args.out.is_dir() else set()
    stale = sorted(
        name
        for name in files.keys() | existing
        if name not in files
        or name not in existing
        or (args.out / name).read_text(encoding="utf-8") != files[name]
    )
    if args.check:
        if stale:
            print(f"out of date in {args.out}: {', '.join(stale)}; run python monitoring/dashboards.py")
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in existing - files.keys():
        (args.out / name).unlink()
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} dashboards to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
