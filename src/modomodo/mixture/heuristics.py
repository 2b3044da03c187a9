"""The paper's heuristic mixtures (MoDoMoDo, Appendix Algorithms 1-3), computed from seed runs.

Each heuristic reads the seed runs of a run-records table (single-domain, exclude-one and uniform
mixtures, recognised from their weights; other rows are ignored, as in the paper where heuristics
come from the 11 seed runs) and returns one mixture, or raises ``HeuristicError`` naming what is
missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from modomodo.mixture.records import RUN_ID, RunRecords
from modomodo.mixture.seeds import excluded_domain, is_seed, single_domain
from modomodo.mixture.simplex import Mixture

COLI_RIDGE = 1e-3
"""The paper's ridge strength lambda for Coli (Algorithm 2)."""


class HeuristicError(ValueError):
    """The run records lack what a heuristic needs."""


@dataclass(frozen=True)
class HeuristicMixture:
    name: str
    """The paper's name: Ain, Aout, Abal, Coli or Norm."""
    mixture: Mixture
    runs: tuple[str, ...]
    """The run ids it was computed from."""


def _seed_rows(records: RunRecords, name: str) -> np.ndarray:
    rows = np.array([i for i, w in enumerate(records.weights()) if is_seed(w)], dtype=int)
    if rows.size == 0:
        raise HeuristicError(
            f"{name} needs seed runs (single-domain, exclude-one or uniform mixtures); the records have none"
        )
    return rows


def _scores(records: RunRecords, column: str, name: str) -> np.ndarray:
    if column not in records.frame.columns:
        raise HeuristicError(
            f"{name} needs the score column {column!r}; the records have {list(records.score_columns)}"
        )
    return records.scores(column)


def _run_ids(records: RunRecords, rows: np.ndarray) -> tuple[str, ...]:
    return tuple(records.frame[RUN_ID].iloc[rows])


def _min_max(values: np.ndarray) -> np.ndarray:
    # Equal totals carry no ranking information: they normalise to 0 rather than dividing by 0.
    spread = values.max() - values.min()
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)


def _normalised(records: RunRecords, scores: np.ndarray, name: str) -> Mixture:
    total = scores.sum()
    if total <= 0:
        raise HeuristicError(
            f"{name}: every domain scored 0, so no mixture follows; scores {dict(zip(records.domains, scores, strict=True))}"
        )
    return Mixture.from_vector(records.domains, scores / total)


def alpha_mixture(
    records: RunRecords,
    alpha: float,
    *,
    alpha_single: float = 1.0,
    in_column: str = "in_score",
    out_column: str = "out_score",
    name: str = "Alpha",
) -> HeuristicMixture:
    """Algorithm 1: credit every seed run's In/Out score to each domain it trained on.

    A single-domain run's scores are multiplied by ``alpha_single`` (its value is not given in the
    paper; 1.0 means no discount). The per-domain totals are min-max normalised, blended as
    ``alpha * In + (1 - alpha) * Out`` and normalised to sum 1, so with alpha 0 or 1 the weakest
    domain gets weight 0, as in the paper.
    """
    if not 0.0 <= alpha <= 1.0 or not 0.0 <= alpha_single <= 1.0:
        raise HeuristicError(f"{name}: alpha and alpha_single lie in [0, 1], got {alpha} and {alpha_single}")
    rows = _seed_rows(records, name)
    weights = records.weights()[rows]
    trained = (weights > 0).astype(float)
    uncovered = [d for d, used in zip(records.domains, trained.any(axis=0), strict=True) if not used]
    if uncovered:
        raise HeuristicError(f"{name}: no seed run trains on {uncovered}")
    discount = np.array([alpha_single if single_domain(w) is not None else 1.0 for w in weights])
    blended = np.zeros(len(records.domains))
    for column, share in ((in_column, alpha), (out_column, 1.0 - alpha)):
        if share > 0:
            totals = trained.T @ (discount * _scores(records, column, name)[rows])
            blended += share * _min_max(totals)
    return HeuristicMixture(name, _normalised(records, blended, name), _run_ids(records, rows))


def coli_mixture(
    records: RunRecords, *, target: str = "out_score", ridge: float = COLI_RIDGE
) -> HeuristicMixture:
    """Algorithm 2: ridge (no intercept) of the score on the 0/1 "which domains were used" matrix.

    ``beta = (X'X + ridge I)^-1 X'y`` and the paper's "VIF" ``diag((X'X + ridge I)^-1)`` (not the
    textbook 1/(1-R^2)); each domain scores ``max(0, beta_i / VIF_i)``, normalised to sum 1.
    """
    rows = _seed_rows(records, "Coli")
    indicators = (records.weights()[rows] > 0).astype(float)
    rank = np.linalg.matrix_rank(indicators)
    if rank < len(records.domains):
        raise HeuristicError(
            f"Coli needs seed runs whose domain sets separate all {len(records.domains)} domains "
            f"(indicator matrix of rank {len(records.domains)}); the {len(rows)} seed runs give rank {rank}"
        )
    y = _scores(records, target, "Coli")[rows]
    inverse = np.linalg.inv(indicators.T @ indicators + ridge * np.eye(len(records.domains)))
    beta = inverse @ indicators.T @ y
    vif = np.diag(inverse)
    return HeuristicMixture(
        "Coli", _normalised(records, np.maximum(0.0, beta / vif), "Coli"), _run_ids(records, rows)
    )


def norm_mixture(records: RunRecords, *, target: str = "out_score") -> HeuristicMixture:
    """Algorithm 3: weight each domain by how much the score drops when it is left out.

    With ``s_(-i)`` the score of the run without domain ``i`` (the mean if there are several),
    ``s_hat = min-max(s)`` and ``w_i ∝ 0.2 - 0.1 * s_hat_(-i)``: raw weights in [0.1, 0.2], the
    domain whose absence hurts most gets twice the weight of the one whose absence helps most.
    After the final normalisation only that 2:1 ratio matters, so the constants hold for any
    number of domains.
    """
    weights = records.weights()
    left_out = np.array([excluded_domain(w) if excluded_domain(w) is not None else -1 for w in weights])
    missing = [d for i, d in enumerate(records.domains) if not (left_out == i).any()]
    if missing:
        raise HeuristicError(f"Norm needs an exclude-one run for every domain; none leaves out {missing}")
    y = _scores(records, target, "Norm")
    without = np.array([y[left_out == i].mean() for i in range(len(records.domains))])
    raw = 0.2 - 0.1 * _min_max(without)
    rows = np.flatnonzero(left_out >= 0)
    return HeuristicMixture("Norm", _normalised(records, raw, "Norm"), _run_ids(records, rows))


HEURISTICS: dict[str, Callable[..., HeuristicMixture]] = {
    "ain": partial(alpha_mixture, alpha=1.0, name="Ain"),
    "aout": partial(alpha_mixture, alpha=0.0, name="Aout"),
    "abal": partial(alpha_mixture, alpha=0.5, name="Abal"),
    "coli": coli_mixture,
    "norm": norm_mixture,
}
"""Name -> heuristic; each takes the run records plus its keyword options."""


def compute_heuristics(
    records: RunRecords,
    names: Sequence[str] | None = None,
    *,
    alpha_single: float = 1.0,
    in_column: str = "in_score",
    out_column: str = "out_score",
) -> tuple[list[HeuristicMixture], dict[str, str]]:
    """Run several heuristics; returns those that worked and, for the others, why they could not."""
    options: dict[str, dict[str, object]] = {
        "ain": {"alpha_single": alpha_single, "in_column": in_column, "out_column": out_column},
        "coli": {"target": out_column},
        "norm": {"target": out_column},
    }
    options["aout"] = options["abal"] = options["ain"]
    results: list[HeuristicMixture] = []
    failures: dict[str, str] = {}
    for name in names or list(HEURISTICS):
        if name not in HEURISTICS:
            raise HeuristicError(f"unknown heuristic {name!r}; choose from {list(HEURISTICS)}")
        try:
            results.append(HEURISTICS[name](records, **options[name]))
        except HeuristicError as err:
            failures[name] = str(err)
    return results, failures
