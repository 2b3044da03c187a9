"""How well a surrogate predicts runs it did not see: k-fold and leave-one-out cross-validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modomodo.mixture.regression import r2_score, rmse, spearman
from modomodo.mixture.surrogates import Surrogate, SurrogateError


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold predictions of every run and the scores computed on them (pooled over folds)."""

    scheme: str
    """``5-fold``, ``leave-one-out``, ..."""
    actual: np.ndarray
    predicted: np.ndarray
    fold: np.ndarray
    """The fold each run was held out in."""
    r2: float
    rmse: float
    spearman: float

    def to_dict(self) -> dict[str, object]:
        return {
            "scheme": self.scheme,
            "r2": self.r2,
            "rmse": self.rmse,
            "spearman": self.spearman,
            "actual": self.actual.tolist(),
            "predicted": self.predicted.tolist(),
            "fold": self.fold.tolist(),
        }


def cross_validate(
    surrogate: Surrogate, weights: np.ndarray, y: np.ndarray, *, folds: int | None = 5, seed: int = 0
) -> CrossValidation:
    """Refit an unfitted copy of ``surrogate`` with each fold held out.

    ``folds=None`` (or at least the number of runs) is leave-one-out; folds are a seeded shuffle.
    R^2, RMSE and Spearman are computed on all out-of-fold predictions together, which is also
    what makes them defined for leave-one-out.
    """
    weights, y = np.asarray(weights, dtype=float), np.asarray(y, dtype=float)
    n = len(y)
    if folds is None or folds >= n:
        fold, scheme = np.arange(n), "leave-one-out"
    elif folds >= 2:
        fold, scheme = np.random.default_rng(seed).permutation(n) % folds, f"{folds}-fold"
    else:
        raise SurrogateError(f"cross-validation needs at least 2 folds, got {folds}")
    predicted = np.empty(n)
    for held_out in np.unique(fold):
        train = fold != held_out
        try:
            model = surrogate.clone().fit(weights[train], y[train])
        except SurrogateError as err:
            raise SurrogateError(
                f"{scheme} cross-validation trains on {int(train.sum())} of {n} runs: {err}"
            ) from err
        predicted[~train] = model.predict(weights[~train])
    return CrossValidation(
        scheme, y, predicted, fold, r2_score(y, predicted), rmse(y, predicted), spearman(y, predicted)
    )
