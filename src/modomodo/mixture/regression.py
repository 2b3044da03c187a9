"""Regression scores shared by surrogate fitting and cross-validation."""

from __future__ import annotations

import numpy as np


def r2_score(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Coefficient of determination; NaN when the actual values are all equal."""
    total = float(((actual - actual.mean()) ** 2).sum())
    return float("nan") if total == 0 else 1.0 - float(((actual - predicted) ** 2).sum()) / total


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(((actual - predicted) ** 2).mean()))


def spearman(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Rank correlation (what matters for picking mixtures); NaN when either side is constant."""
    if np.ptp(actual) == 0 or np.ptp(predicted) == 0:
        return float("nan")
    # Imported here: scipy.stats costs ~0.3 s, and validating a config imports the surrogate
    # registry (and so this module) in every pipeline step (docs/benchmarks.md, component imports).
    from scipy.stats import spearmanr

    return float(spearmanr(actual, predicted).statistic)
