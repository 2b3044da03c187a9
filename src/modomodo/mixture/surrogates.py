"""Surrogate models of score(mixture): one interface, chosen by name from a registry.

Every surrogate fits ``(n_runs, n_domains)`` weights on the simplex to one score per run, predicts
scores, and predicts with uncertainty from a Bayesian bootstrap: ``n_bootstrap`` refits with
random Dirichlet(1, ..., 1) run weights (Rubin 1981). Unlike resampling runs, reweighting never
drops a run, so a refit is never rank-deficient where the full fit was not. Refits keep the
hyperparameters chosen on the full data (ridge strength, kernel), so the spread measures how
much the fit depends on the data, not the model choice.

A model given fewer runs than it can fit raises ``SurrogateError`` saying how many it needs;
the regularised quadratic fits any number from 3 and says when it is underdetermined.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from statistics import NormalDist
from typing import ClassVar, Self

import numpy as np

from modomodo.mixture.regression import r2_score
from modomodo.mixture.simplex import SUM_TOLERANCE

RIDGE_GRID: tuple[float, ...] = tuple(float(x) for x in np.logspace(-6, 3, 19))
"""Ridge strengths tried by ``ridge="auto"`` (penalty on standardised terms)."""


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


def make_surrogate(name: str, **options: object) -> Surrogate:
    """Build a registered surrogate; unknown names or options are errors listing the valid ones."""
    if name not in SURROGATES:
        raise SurrogateError(f"unknown surrogate {name!r}; choose from {sorted(SURROGATES)}")
    cls = SURROGATES[name]
    accepted = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise SurrogateError(f"surrogate {name!r} has no options {unknown}; it takes {sorted(accepted)}")
    return cls(**options)


@register_surrogate("linear")
@dataclass(kw_only=True)
class LinearSurrogate(Surrogate):
    """``sum_i b_i w_i`` by least squares: the baseline the paper shows failing (its maximum is
    always a single domain)."""

    def min_runs(self, n_domains: int) -> int:
        return n_domains

    def _fit(self, weights: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> None:
        self.coef_ = _least_squares(weights, y, sample_weight, "linear")

    def _predict(self, weights: np.ndarray) -> np.ndarray:
        return weights @ self.coef_

    def describe(self, domains: Sequence[str]) -> dict[str, object]:
        return super().describe(domains) | {
            "coefficients": dict(zip(domains, self.coef_.tolist(), strict=True))
        }


@register_surrogate("quadratic")
@dataclass(kw_only=True)
class QuadraticSurrogate(Surrogate):
    """The paper's ``a + b'w + w'Cw`` in its identifiable (Scheffé) form on the simplex.

    Because ``sum_i w_i = 1``, the constant folds into the linear terms (``a = a sum_i w_i``) and
    each square into linear and cross terms (``w_i^2 = w_i - sum_(j != i) w_i w_j``), leaving
    ``sum_i b_i w_i + sum_(i<j) c_ij w_i w_j``: m(m+1)/2 coefficients (15 for five domains)
    instead of the paper's 31 columns.
    """

    ridge: float | str = "auto"
    """0: ordinary least squares (needs m(m+1)/2 runs); > 0: ridge on standardised terms, which
    shrinks toward a flat surface at the mean score; ``"auto"``: the strength in ``ridge_grid``
    with the lowest leave-one-out error (closed form)."""
    ridge_grid: tuple[float, ...] = RIDGE_GRID

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ridge != "auto" and not (isinstance(self.ridge, int | float) and self.ridge >= 0):
            raise SurrogateError(f"ridge is 'auto' or a number >= 0, got {self.ridge!r}")

    def min_runs(self, n_domains: int) -> int:
        # A ridge fit is defined for any number of runs; 3 is the fewest leave-one-out can rank.
        return n_quadratic_terms(n_domains) if self.ridge == 0 else 3

    def _too_few_hint(self) -> str:
        return "; pass a ridge (e.g. 'auto') for a regularised fit" if self.ridge == 0 else ""

    def _fit(self, weights: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> None:
        features = scheffe_features(weights)
        if self.ridge == 0:
            self.ridge_ = 0.0
            self.coef_ = _least_squares(features, y, sample_weight, "quadratic")
            return
        self.ridge_ = (
            _loo_best_ridge(features, y, self.ridge_grid) if self.ridge == "auto" else float(self.ridge)
        )
        self.coef_ = _ridge_scheffe(features, y, sample_weight, self.ridge_, weights.shape[1])

    def _replica(self) -> Surrogate:
        return replace(self, n_bootstrap=0, ridge=self.ridge_)

    def _predict(self, weights: np.ndarray) -> np.ndarray:
        return scheffe_features(weights) @ self.coef_

    def quadratic_form(self) -> tuple[float, np.ndarray, np.ndarray]:
        """The fit as the paper's ``(a, b, C)``: ``a = 0``, ``b`` linear, ``C`` symmetric, zero diagonal."""
        m = self._n_domains or 0
        i, j = np.triu_indices(m, k=1)
        cross = np.zeros((m, m))
        cross[i, j] = cross[j, i] = self.coef_[m:] / 2.0
        return 0.0, self.coef_[:m].copy(), cross

    def describe(self, domains: Sequence[str]) -> dict[str, object]:
        terms = n_quadratic_terms(len(domains))
        return super().describe(domains) | {
            "ridge": self.ridge_,
            "terms": terms,
            "underdetermined": self._n_runs < terms,
            "coefficients": dict(zip(scheffe_term_names(domains), self.coef_.tolist(), strict=True)),
        }


def _standardise(
    features: np.ndarray, sample_weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    share = sample_weight / sample_weight.sum()
    mean = share @ features
    scale = np.sqrt(share @ (features - mean) ** 2)
    scale[scale == 0] = 1.0
    return (features - mean) / scale, mean, scale


def _ridge_scheffe(
    features: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, ridge: float, n_domains: int
) -> np.ndarray:
    """Ridge with an unpenalised intercept, returned as Scheffé coefficients.

    The intercept is redundant on the simplex, so it is folded into the linear terms.
    """
    standard, mean, scale = _standardise(features, sample_weight)
    y_mean = (sample_weight / sample_weight.sum()) @ y
    gram = standard.T @ (sample_weight[:, None] * standard) + ridge * np.eye(features.shape[1])
    coef = np.linalg.solve(gram, standard.T @ (sample_weight * (y - y_mean))) / scale
    coef[:n_domains] += y_mean - mean @ coef
    return coef


def _loo_best_ridge(features: np.ndarray, y: np.ndarray, grid: Sequence[float]) -> float:
    """The grid strength with the lowest leave-one-out squared error, from the hat matrix.

    For ridge with an unpenalised intercept, hat = 1/n + U diag(d^2 / (d^2 + ridge)) U' with
    ``U d V'`` the SVD of the centred design, and the LOO residual is ``(y - fit) / (1 - hat)``.
    """
    standard, _, _ = _standardise(features, np.ones(len(y)))
    u, d, _ = np.linalg.svd(standard, full_matrices=False)
    centred = y - y.mean()
    projected = u.T @ centred
    best, best_error = float(grid[-1]), np.inf
    for ridge in grid:
        shrink = d**2 / (d**2 + ridge)
        leverage = (u**2) @ shrink + 1.0 / len(y)
        if (1.0 - leverage).min() < 1e-9:  # an interpolating fit has no leave-one-out error estimate
            continue
        error = float(np.mean(((centred - u @ (shrink * projected)) / (1.0 - leverage)) ** 2))
        if error < best_error:
            best, best_error = float(ridge), error
    return best


def paper_design(weights: np.ndarray) -> np.ndarray:
    """The paper's design matrix ``[1, w, w (x) w]``: 1 + m + m^2 columns, with duplicates."""
    n = len(weights)
    return np.hstack([np.ones((n, 1)), weights, (weights[:, :, None] * weights[:, None, :]).reshape(n, -1)])


@register_surrogate("quadratic-paper")
@dataclass(kw_only=True)
class PaperQuadraticSurrogate(Surrogate):
    """The paper's recipe (Algorithm 4), for comparison: least squares on ``[1, w, w (x) w]``
    over ``n_splits`` random train/test splits, keeping the split with the highest held-out R^2.

    The design is rank-deficient on the simplex, so least squares returns its minimum-norm
    solution, as numpy and scikit-learn do; choosing the split by test R^2 selects on test data.
    """

    n_splits: int = 5
    test_fraction: float = 0.2
    allow_underdetermined: bool = False
    """Fit even when a training split has fewer runs than the m(m+1)/2 identifiable coefficients
    (what the paper's code would silently do); off, that is an error."""

    def _n_test(self, n_runs: int) -> int:
        return max(2, round(self.test_fraction * n_runs))

    def min_runs(self, n_domains: int) -> int:
        train = 2 if self.allow_underdetermined else n_quadratic_terms(n_domains)
        n = train + 2
        while n - self._n_test(n) < train:
            n += 1
        return n

    def _too_few_hint(self) -> str:
        return (
            ""
            if self.allow_underdetermined
            else " (each training split needs the identifiable coefficients; allow_underdetermined fits anyway)"
        )

    def _fit(self, weights: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> None:
        design = paper_design(weights)
        rng = np.random.default_rng(self.seed)
        n_test = self._n_test(len(y))
        best: tuple[float, float, np.ndarray] | None = None
        for _ in range(self.n_splits):
            order = rng.permutation(len(y))
            test, train = order[:n_test], order[n_test:]
            root = np.sqrt(sample_weight[train])
            coef = np.linalg.lstsq(design[train] * root[:, None], y[train] * root, rcond=None)[0]
            test_r2 = r2_score(y[test], design[test] @ coef)
            if best is None or test_r2 > best[0]:  # a NaN R^2 (constant test scores) never wins
                best = (test_r2, r2_score(y[train], design[train] @ coef), coef)
        self.test_r2_, self.train_r2_, self.coef_ = best

    def _predict(self, weights: np.ndarray) -> np.ndarray:
        return paper_design(weights) @ self.coef_

    def describe(self, domains: Sequence[str]) -> dict[str, object]:
        return super().describe(domains) | {"split_train_r2": self.train_r2_, "split_test_r2": self.test_r2_}


@register_surrogate("gp")
@dataclass(kw_only=True)
class GaussianProcessSurrogate(Surrogate):
    """A Gaussian process on the weights: RBF kernel plus white noise, hyperparameters by
    maximum marginal likelihood. Non-parametric, so it can follow surfaces a quadratic cannot.

    Its uncertainty is by default its own posterior standard deviation, which grows away from
    the runs; bootstrap refits of a GP agree on the prior mean far from the data, and so
    understate the uncertainty exactly where exploring pays. With ``uncertainty="bootstrap"``
    refits keep the fitted kernel and weight run i by dividing its noise variance by its
    bootstrap weight (a weighted likelihood).
    """

    restarts: int = 2
    """Extra random starts of the marginal-likelihood optimiser."""
    uncertainty: str = "posterior"
    """``posterior`` (the GP's predictive std of the mean; ``n_bootstrap`` unused) or ``bootstrap``."""
    _frozen_kernel: object = field(default=None, init=False, repr=False)
    _frozen_noise: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.uncertainty not in ("posterior", "bootstrap"):
            raise SurrogateError(f"uncertainty is 'posterior' or 'bootstrap', got {self.uncertainty!r}")
        if self.uncertainty == "posterior":
            self.n_bootstrap = 0

    def min_runs(self, n_domains: int) -> int:
        return 3

    @property
    def has_uncertainty(self) -> bool:
        return self.uncertainty == "posterior" and self._n_domains is not None or super().has_uncertainty

    def predict_with_uncertainty(self, weights: np.ndarray | Sequence[Sequence[float]]) -> Prediction:
        if self.uncertainty == "bootstrap":
            return super().predict_with_uncertainty(weights)
        mean, std = self.model_.predict(self._checked(weights), return_std=True)
        # return_std includes the fitted white noise (in units of the normalised scores); the
        # uncertainty of the mean excludes it.
        std = np.sqrt(np.clip(std**2 - self.noise_ * self.y_scale_**2, 0.0, None))
        half = NormalDist().inv_cdf(0.5 + self.interval / 2.0) * std
        return Prediction(mean, std, mean - half, mean + half)

    def _fit(self, weights: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        if self._frozen_kernel is not None:
            self.model_ = GaussianProcessRegressor(
                self._frozen_kernel,
                alpha=self._frozen_noise / sample_weight,
                normalize_y=True,
                optimizer=None,
            ).fit(weights, y)
            return
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * RBF(0.3, (0.03, 3.0)) + WhiteKernel(0.1, (1e-6, 1.0))
        with warnings.catch_warnings():
            # Hyperparameters at a bound are a normal outcome with few runs, not a failure.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_ = GaussianProcessRegressor(
                kernel, normalize_y=True, n_restarts_optimizer=self.restarts, random_state=self.seed
            ).fit(weights, y)
        self.kernel_, self.noise_ = self.model_.kernel_.k1, float(self.model_.kernel_.k2.noise_level)
        self.y_scale_ = float(y.std()) or 1.0  # how normalize_y scales the scores

    def _replica(self) -> Surrogate:
        replica = replace(self, n_bootstrap=0)
        replica._frozen_kernel, replica._frozen_noise = self.kernel_, self.noise_
        return replica

    def _predict(self, weights: np.ndarray) -> np.ndarray:
        return self.model_.predict(weights)

    def describe(self, domains: Sequence[str]) -> dict[str, object]:
        return super().describe(domains) | {"kernel": str(self.kernel_), "noise": self.noise_}
