"""Mixture science: seed and heuristic mixtures, surrogates of score(mixture), search over the simplex.

Names are imported lazily on first use, so ``from modomodo.mixture.simplex import Mixture``
(what training and pipelines need) costs numpy only, while optuna, scikit-learn and matplotlib
load only when a search, a Gaussian process or a plot asks for them.
"""

from __future__ import annotations

import importlib

_EXPORTS: dict[str, str] = {
    "Mixture": "simplex",
    "MixtureError": "simplex",
    "stick_breaking": "simplex",
    "inverse_stick_breaking": "simplex",
    "weight_column": "simplex",
    "RunRecords": "records",
    "RunRecordsError": "records",
    "load_run_records": "records",
    "make_run_record": "records",
    "PlannedMixture": "seeds",
    "seed_mixtures": "seeds",
    "random_pilots": "seeds",
    "spread_pilots": "seeds",
    "HEURISTICS": "heuristics",
    "HeuristicError": "heuristics",
    "HeuristicMixture": "heuristics",
    "alpha_mixture": "heuristics",
    "coli_mixture": "heuristics",
    "norm_mixture": "heuristics",
    "compute_heuristics": "heuristics",
    "SURROGATES": "surrogates",
    "Prediction": "surrogates",
    "Surrogate": "surrogates",
    "SurrogateError": "surrogates",
    "make_surrogate": "surrogates",
    "register_surrogate": "surrogates",
    "CrossValidation": "quality",
    "cross_validate": "quality",
    "Proposal": "search",
    "ProposalSet": "search",
    "StudySettings": "study",
    "SearchError": "study",
    "best_mixtures": "search",
    "next_pilots": "search",
    "paper_candidates": "search",
    "propose": "search",
    "resolve_storage": "study",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
