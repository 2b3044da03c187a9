"""The mixture search: Optuna over the simplex on the fitted surrogate."""

from __future__ import annotations

from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.stages.common import stage_metrics
from modomodo.stages.surrogate import loo_validation


def search_stage(
    cfg: ExperimentConfig, records, out_dir: Path, *, mode: str, k: int, storage: str | None, run_id: str
):
    """Optuna over the simplex on the configured surrogate: ``best`` mixtures to train, or the next
    pilots to ``explore``. The study lives in ``storage`` (an RDB URL), else in ``out_dir/study.db``.
    In ``best`` mode the surrogate must first rank the pilots better than chance (leave-one-out,
    ``search.trust_alpha``); when it does not, the best pilots are proposed instead and
    ``decision`` says why. Writes ``proposals.json`` and ``simplex.png`` (the fitted surface around
    the top proposal)."""
    from modomodo.mixture.plots import plot_simplex_slices
    from modomodo.mixture.search import propose
    from modomodo.mixture.study import StudySettings, resolve_storage
    from modomodo.report import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = StudySettings(
        n_trials=cfg.search.trials,
        seed=cfg.search.seed,
        storage=resolve_storage(storage or out_dir / "study.db"),
    )
    metrics = stage_metrics(cfg, run_id, "search")
    with metrics.stage_timer():
        found = propose(records, cfg.search.target, k=k, mode=mode, model=cfg.search.surrogate, config=config)
        if not found.proposals:
            raise ValueError(
                f"the {mode} search proposed no mixture (min_distance {config.min_distance} rules all out)"
            )
        if mode == "best":
            found = _trusted_or_best_pilots(cfg, records, found, k)
        metrics.record_search(found.proposals[0].mean, cfg.search.trials)
    plot_simplex_slices(
        found.surrogate,
        list(records.domains),
        out_dir / "simplex.png",
        anchor=found.proposals[0].mixture,
        observed=records.weights(),
    )
    write_json(out_dir / "proposals.json", found.to_dict())
    return found


def _trusted_or_best_pilots(cfg: ExperimentConfig, records, found, k: int):
    """``found`` with its ``decision``: kept when the surrogate ranks held-out pilots better than
    chance, else replaced by the ``k`` best pilot mixtures (a surrogate that cannot rank the runs
    it was fitted on has no claim on a mixture it never saw)."""
    from dataclasses import replace

    from modomodo.mixture.evidence import observed_mixtures, ranking_trust
    from modomodo.mixture.search import Proposal

    validation = loo_validation(cfg, records, cfg.search.surrogate)
    trust = ranking_trust(validation.actual, validation.predicted, cfg.search.trust_alpha)
    if trust.trusted:
        return replace(
            found, decision={"path": "surrogate", "reason": trust.reason, "trust": trust.to_dict()}
        )
    nan = float("nan")
    best = [
        Proposal(o.mixture, o.mean, nan, nan, nan, o.mean, "best pilot")
        for o in observed_mixtures(records, cfg.search.target)[:k]
    ]
    reason = f"{trust.reason}; the best pilot is trained instead of the surrogate's optimum"
    return replace(
        found, proposals=best, decision={"path": "best-pilot", "reason": reason, "trust": trust.to_dict()}
    )
