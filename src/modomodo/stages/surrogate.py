"""The surrogate fit: score(mixture) fitted to the run records, cross-validated leave-one-out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.config_search import SearchConfig
from modomodo.stages.common import stage_metrics

BASELINE_SURROGATES = ("linear", "quadratic", "gp")
"""Surrogates cross-validated next to the configured one, so the report shows what each model buys."""


def section_surrogate(search: SearchConfig, name: str = "", **options):
    """An unfitted surrogate ``name`` (default ``search.surrogate``), seeded by ``search.seed``:
    what the pipeline fits and ``modomodo mixture fit`` too."""
    from modomodo.mixture.surrogates import make_surrogate

    name = name or search.surrogate
    return make_surrogate(name, seed=search.seed, **surrogate_options(search, name), **options)


def surrogate_options(search: SearchConfig, name: str) -> dict[str, object]:
    """What the section says about surrogate ``name`` beyond its seed."""
    return (
        {"allow_underdetermined": True} if name == "quadratic-paper" and search.paper_underdetermined else {}
    )


def section_cross_validation(
    search: SearchConfig, records, name: str = "", *, folds: int | None = None, **options
):
    """Cross-validation of surrogate ``name`` (default the section's) on ``records[search.target]``:
    leave-one-out unless ``folds``; ``options`` go to the surrogate."""
    from modomodo.mixture.quality import cross_validate

    surrogate = section_surrogate(search, name, **options)
    weights, scores = records.weights(), records.scores(search.target)
    return cross_validate(surrogate, weights, scores, folds=folds, seed=search.seed)


def loo_validation(cfg: ExperimentConfig, records, name: str):
    """Leave-one-out cross-validation of surrogate ``name`` on ``records[search.target]``."""
    return section_cross_validation(cfg.search, records, name)


class TooFewPilotsError(RuntimeError):
    """Fewer successful pilot runs than ``search.min_pilots``."""


def fit_surrogate_stage(
    cfg: ExperimentConfig, records, out_dir: Path, *, run_id: str, failed: Mapping[str, str] | None = None
) -> dict:
    """Fit the configured surrogate and the baselines to ``records[search.target]``, each
    cross-validated leave-one-out; writes ``records.csv``, ``surrogate.json`` (with ``trust``: is
    the configured model's held-out ranking better than chance) and ``cv.png`` (held-out
    predictions of the configured model). A baseline with too few runs is reported, not fatal; the
    configured model must fit. ``failed`` (run id -> reason: pilots left out) goes to
    ``surrogate.json``; with fewer than ``search.min_pilots`` runs nothing is fitted."""
    from modomodo.mixture.evidence import ranking_trust
    from modomodo.mixture.plots import plot_cross_validation
    from modomodo.mixture.surrogates import SurrogateError
    from modomodo.report import write_json

    failed = dict(failed or {})
    if len(records) < cfg.search.min_pilots:
        reasons = "; ".join(f"{run}: {why}" for run, why in failed.items()) or "none recorded"
        raise TooFewPilotsError(
            f"only {len(records)} pilot runs succeeded, fewer than search.min_pilots="
            f"{cfg.search.min_pilots}; refusing to fit a surrogate (failed pilots: {reasons})"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records.write(out_dir / "records.csv")
    target, chosen = cfg.search.target, cfg.search.surrogate
    metrics = stage_metrics(cfg, run_id, "surrogate")
    summary: dict = {
        "target": target,
        "model": chosen,
        "runs": len(records),
        "failed": failed,
        "cv": {},
        "skipped": {},
    }
    with metrics.stage_timer():
        for name in dict.fromkeys([chosen, *BASELINE_SURROGATES]):
            try:
                validation = loo_validation(cfg, records, name)
            except SurrogateError as err:
                if name == chosen:
                    raise
                summary["skipped"][name] = str(err)
                continue
            summary["cv"][name] = {
                k: v for k, v in validation.to_dict().items() if k in ("scheme", "r2", "rmse", "spearman")
            }
            if name == chosen:
                plot_cross_validation(validation, out_dir / "cv.png", title=name)
                summary["trust"] = ranking_trust(
                    validation.actual, validation.predicted, cfg.search.trust_alpha
                ).to_dict()
        fitted = section_surrogate(cfg.search).fit(records.weights(), records.scores(target))
        summary["fit"] = fitted.describe(list(records.domains))
        metrics.record_surrogate({name: cv["r2"] for name, cv in summary["cv"].items()})
    write_json(out_dir / "surrogate.json", summary)
    return summary
