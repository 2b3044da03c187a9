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
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from statistics import NormalDist

import numpy as np

from modomodo.mixture.regression import r2_score
from modomodo.mixture.surrogate_base import (
    SURROGATES,
    Prediction,
    Surrogate,
    SurrogateError,
    _least_squares,
    n_quadratic_terms,
    register_surrogate,
    scheffe_features,
    scheffe_term_names,
)

RIDGE_GRID: tuple[float, ...] = tuple(float(x) for x in np.logspace(-6, 3, 19))
"""Ridge strengths tried by ``ridge="auto"`` (penalty on standardised terms)."""


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
