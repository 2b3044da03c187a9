"""The report: base policy against the final run and the pilots, with the search's evidence."""

from __future__ import annotations

import json
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.stages.common import stage_metrics
from modomodo.versions import versions


def report_stage(
    cfg: ExperimentConfig,
    out_dir: Path,
    *,
    run_id: str,
    base_scores: dict[str, float],
    final_run: dict,
    final_scores: dict[str, float],
    final_label: str = "chosen",
    records_csv: Path | None = None,
    surrogate_dir: Path | None = None,
    search_dir: Path | None = None,
    profile_dir: Path | None = None,
) -> Path:
    """Write ``report.html`` and ``report.json`` into ``out_dir``: base against the final run
    (``final_run`` as the RL update reports it) and, after a search, against the uniform and best
    pilots, with the surrogate's quality, the proposals and the plots."""
    from modomodo.mixture.evidence import seed_noise
    from modomodo.mixture.records import load_run_records
    from modomodo.report import Contender, ReportData, compare
    from modomodo.report_page import build_report

    records = load_run_records(records_csv, list(cfg.data.domains)) if records_csv else None
    search = json.loads((Path(search_dir) / "proposals.json").read_text()) if search_dir else None
    final = Contender(final_label, final_run["run_id"], final_run["mixture"], dict(final_scores))
    plots = report_plots(cfg, surrogate_dir, search_dir)
    data = ReportData(
        experiment=cfg.name,
        target=cfg.search.target,
        domains=tuple(cfg.data.domains),
        splits=cfg.data.benchmark_roles(),
        contenders=compare(cfg.search.target, base_scores, final, records),
        pilots=records,
        surrogate=json.loads((Path(surrogate_dir) / "surrogate.json").read_text()) if surrogate_dir else None,
        proposals=search["proposals"] if search else [],
        decision=search.get("decision") if search else None,
        seed_noise=seed_noise(records, cfg.search.target, cfg.search.seed_noise),
        pass_rates=json.loads((Path(profile_dir) / "pass_rates.json").read_text()) if profile_dir else None,
        plots=tuple(plots),
        settings=report_settings(cfg, with_pilots=records is not None),
        versions=versions(),
    )
    metrics = stage_metrics(cfg, run_id, "report", final_run["mixture"])
    with metrics.stage_timer():
        page = build_report(data, Path(out_dir))
        # The chosen mixture is the search's first proposal (the final run trains on it).
        predicted = {search["target"]: search["proposals"][0]["mean"]} if search else None
        metrics.record_final(final_scores, predicted)
    # The pipeline has ended: its run groups leave the Pushgateway (Prometheus keeps the history).
    metrics.end_pipeline(cfg.name)
    return page


def report_plots(cfg: ExperimentConfig, surrogate_dir: Path | None, search_dir: Path | None) -> list:
    """The report's plots: the surrogate's held-out predictions and the simplex around the choice."""
    from modomodo.report import Plot

    plots = []
    if surrogate_dir is not None:
        plots.append(
            Plot(
                "Surrogate: held-out prediction against actual score",
                f"{cfg.search.surrogate} surrogate, leave-one-out; one point a pilot run.",
                Path(surrogate_dir) / "cv.png",
            )
        )
    if search_dir is not None:
        plots.append(
            Plot(
                "Predicted score over the simplex",
                "2-D slices through the chosen mixture (red star); white dots are pilot runs projected onto each slice.",
                Path(search_dir) / "simplex.png",
            )
        )
    return plots


def report_settings(cfg: ExperimentConfig, *, with_pilots: bool) -> dict:
    """The settings the report lists next to its results."""
    return {
        "RL steps per run": cfg.train.steps,
        "prompts per step x generations": f"{cfg.train.prompts_per_step} x {cfg.train.num_generations}",
        "RL seed": cfg.train.seed,
        "seed families": ", ".join(cfg.search.seeds) if with_pilots else "–",
        "heuristics": ", ".join(cfg.search.heuristics) or "none",
        "surrogate": cfg.search.surrogate,
        "search trials": cfg.search.trials,
        "active rounds": cfg.search.rounds,
    }
