"""What every surrogate of score(mixture) is: the :class:`Surrogate` interface, its registry, and the Scheffé features and least squares the polynomial ones share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Self

import numpy as np

from modomodo.mixture.simplex import SUM_TOLERANCE


class SurrogateError(ValueError):
    """Bad input for a surrogate, too few runs for it, or a request it cannot serve."""


@dataclass(frozen=True)
class Prediction:
    """Predicted scores with their bootstrap spread, one entry per queried mixture."""

    mean: np.ndarray
    """The full-data fit's prediction."""
    std: np.ndarray
    """Standard deviation over the bootstrap refits."""
    lower: np.ndarray
    upper: np.ndarray
    """Bootstrap quantiles bounding the central ``interval`` of the refits' predictions."""


def n_quadratic_terms(n_domains: int) -> int:
    """Coefficients of the Scheffé quadratic: m linear + m(m-1)/2 interaction terms."""
    return n_domains * (n_domains + 1) // 2


def scheffe_features(weights: np.ndarray) -> np.ndarray:
    """``[w_1..w_m, w_i w_j for i < j]``: the identifiable quadratic terms on the simplex."""
    i, j = np.triu_indices(weights.shape[1], k=1)
    return np.hstack([weights, weights[:, i] * weights[:, j]])


def scheffe_term_names(domains: Sequence[str]) -> list[str]:
    i, j = np.triu_indices(len(domains), k=1)
    return list(domains) + [f"{domains[a]}*{domains[b]}" for a, b in zip(i, j, strict=True)]


def _check_weights(weights: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2 or weights.shape[1] < 2:
        raise SurrogateError(f"weights must be an (n_runs, n_domains >= 2) array, got shape {weights.shape}")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise SurrogateError("weights must be finite and >= 0")
    off = np.abs(weights.sum(axis=1) - 1.0) > SUM_TOLERANCE
    if off.any():
        raise SurrogateError(
            f"rows {np.flatnonzero(off).tolist()} do not sum to 1: surrogates model mixtures on the simplex"
        )
    return weights


def _least_squares(features: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, what: str) -> np.ndarray:
    """Weighted least squares that refuses an unidentified fit."""
    rank = np.linalg.matrix_rank(features)
    if rank < features.shape[1]:
        raise SurrogateError(
            f"{what}: the {len(y)} mixtures determine only {rank} of its {features.shape[1]} coefficients "
            "(too few distinct mixtures, or all on a lower-dimensional set); add runs or use a ridge"
        )
    root = np.sqrt(sample_weight)
    return np.linalg.lstsq(features * root[:, None], y * root, rcond=None)[0]


@dataclass(kw_only=True)
class Surrogate(ABC):
    """Base class: subclasses implement ``min_runs``, ``_fit`` and ``_predict``."""

    name: ClassVar[str]
    n_bootstrap: int = 0
    """Bootstrap refits behind ``predict_with_uncertainty`` (0: point predictions only)."""
    interval: float = 0.9
    """Central probability of the reported prediction interval."""
    seed: int = 0
    """Seeds the bootstrap weights and any randomness inside the model."""
    _replicas: list[Surrogate] = field(default_factory=list, init=False, repr=False)
    _n_domains: int | None = field(default=None, init=False, repr=False)
    _n_runs: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n_bootstrap < 0 or self.n_bootstrap == 1:
            raise SurrogateError(f"n_bootstrap is 0 or at least 2, got {self.n_bootstrap}")
        if not 0 < self.interval < 1:
            raise SurrogateError(f"interval is a probability in (0, 1), got {self.interval}")

    @abstractmethod
    def min_runs(self, n_domains: int) -> int:
        """The fewest runs this model fits for ``n_domains`` domains."""

    def _too_few_hint(self) -> str:
        return ""

    @abstractmethod
    def _fit(self, weights: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> None: ...

    @abstractmethod
    def _predict(self, weights: np.ndarray) -> np.ndarray: ...

    def _replica(self) -> Surrogate:
        """An unfitted copy for a bootstrap refit that keeps hyperparameters chosen in ``_fit``."""
        return self.clone()

    def describe(self, domains: Sequence[str]) -> dict[str, object]:
        """What the fit chose (hyperparameters, coefficients), for reports."""
        return {"model": self.name, "runs": self._n_runs}

    def clone(self) -> Surrogate:
        """An unfitted copy with the same settings and no bootstrap (for cross-validation)."""
        return replace(self, n_bootstrap=0)

    @property
    def has_uncertainty(self) -> bool:
        return bool(self._replicas)

    def fit(self, weights: np.ndarray | Sequence[Sequence[float]], y: np.ndarray | Sequence[float]) -> Self:
        weights = _check_weights(weights)
        y = np.asarray(y, dtype=float)
        if y.shape != (len(weights),) or not np.isfinite(y).all():
            raise SurrogateError(
                f"need one finite score per run: {len(weights)} runs, scores of shape {y.shape}"
            )
        n, m = weights.shape
        needed = self.min_runs(m)
        if n < needed:
            raise SurrogateError(
                f"{self.name} needs at least {needed} runs for {m} domains, got {n}{self._too_few_hint()}"
            )
        self._fit(weights, y, np.ones(n))
        self._n_domains, self._n_runs = m, n
        rng = np.random.default_rng(self.seed)
        self._replicas = []
        for _ in range(self.n_bootstrap):
            replica = self._replica()
            replica._fit(weights, y, rng.dirichlet(np.ones(n)) * n)
            replica._n_domains, replica._n_runs = m, n
            self._replicas.append(replica)
        return self

    def _checked(self, weights: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        if self._n_domains is None:
            raise SurrogateError(f"{self.name} is not fitted yet")
        weights = _check_weights(np.atleast_2d(np.asarray(weights, dtype=float)))
        if weights.shape[1] != self._n_domains:
            raise SurrogateError(f"fitted on {self._n_domains} domains, asked about {weights.shape[1]}")
        return weights

    def predict(self, weights: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        return self._predict(self._checked(weights))

    def predict_with_uncertainty(self, weights: np.ndarray | Sequence[Sequence[float]]) -> Prediction:
        weights = self._checked(weights)
        if not self._replicas:
            raise SurrogateError(
                f"{self.name} was fitted with n_bootstrap=0; fit with n_bootstrap >= 2 for uncertainty"
            )
        draws = np.stack([replica._predict(weights) for replica in self._replicas])
        tail = (1.0 - self.interval) / 2.0
        lower, upper = np.quantile(draws, [tail, 1.0 - tail], axis=0)
        return Prediction(self._predict(weights), draws.std(axis=0, ddof=1), lower, upper)


SURROGATES: dict[str, type[Surrogate]] = {}
"""Registered surrogate classes by name."""


def register_surrogate(name: str) -> Callable[[type[Surrogate]], type[Surrogate]]:
    def register(cls: type[Surrogate]) -> type[Surrogate]:
        if name in SURROGATES:
            raise ValueError(f"surrogate {name!r} is already registered")
        cls.name = name
        SURROGATES[name] = cls
        return cls

    return register
