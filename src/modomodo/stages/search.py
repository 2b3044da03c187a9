"""The mixture search: Optuna over the simplex on the fitted surrogate."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.config_search import SearchConfig
from modomodo.mixture.search import SEARCH_BOOTSTRAP, UCB_KAPPA
from modomodo.stages.common import stage_metrics
from modomodo.stages.surrogate import loo_validation, surrogate_options


def section_search(
    search: SearchConfig,
    records,
    *,
    mode: str,
    k: int,
    storage: str | Path | None,
    study_name: str | None = None,
    min_distance: float | None = None,
    model_options: Mapping[str, object] | None = None,
    n_bootstrap: int = SEARCH_BOOTSTRAP,
    kappa: float = UCB_KAPPA,
):
    """Propose ``k`` mixtures (``mode`` best, explore or paper) on ``search``'s surrogate, target,
    trials and seed, the study kept in ``storage`` (a URL or SQLite file; None: ``./study.db``):
    what the search stage runs and ``modomodo mixture propose`` too."""
    from modomodo.mixture.search import propose
    from modomodo.mixture.study import StudySettings, resolve_storage

    distance = {} if min_distance is None else {"min_distance": min_distance}
    model_options = {**surrogate_options(search, search.surrogate), **(model_options or {})}
    study = StudySettings(
        n_trials=search.trials,
        seed=search.seed,
        storage=resolve_storage(storage),
        study_name=study_name,
        **distance,
    )
    return propose(records, search.target, k=k, mode=mode, model=search.surrogate, model_options=model_options,
                   n_bootstrap=n_bootstrap, kappa=kappa, config=study)  # fmt: skip


def search_stage(
    cfg: ExperimentConfig, records, out_dir: Path, *, mode: str, k: int, storage: str | None, run_id: str
):
    """Optuna over the simplex on the configured surrogate: ``best`` mixtures to train, or the next
    pilots to ``explore``. The study lives in ``storage`` (an RDB URL), else in ``out_dir/study.db``.
    In ``best`` mode the surrogate must first rank the pilots better than chance (leave-one-out,
    ``search.trust_alpha``; also with ``search.candidates: paper``, where ``best`` samples as the
    paper does); when it does not, the best pilots are proposed instead and
    ``decision`` says why. Writes ``proposals.json`` and ``simplex.png`` (the fitted surface around
    the top proposal)."""
    from modomodo.mixture.plots import plot_simplex_slices
    from modomodo.mixture.study import STUDY_FILE, StudySettings
    from modomodo.report import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = stage_metrics(cfg, run_id, "search")
    if mode == "best" and cfg.search.candidates == "paper":
        mode = "paper"  # the final search, with the paper's candidate sampling
    with metrics.stage_timer():
        found = section_search(cfg.search, records, mode=mode, k=k, storage=storage or out_dir / STUDY_FILE)
        if not found.proposals:
            min_distance = StudySettings().min_distance
            raise ValueError(
                f"the {mode} search proposed no mixture (min_distance {min_distance} rules all out)"
            )
        if mode in ("best", "paper"):
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
