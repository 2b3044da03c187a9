from __future__ import annotations

import numpy as np
import pytest

from modomodo.mixture.quality import cross_validate
from modomodo.mixture.surrogates import (
    SURROGATES,
    QuadraticSurrogate,
    SurrogateError,
    make_surrogate,
    scheffe_features,
)

RNG = np.random.default_rng(7)
M = 4
# The paper's form a + b'w + w'Cw with a full (non-symmetric) C, diagonal included.
A, B, C = 0.3, RNG.normal(size=M), RNG.normal(size=(M, M))


def paper_quadratic(weights: np.ndarray) -> np.ndarray:
    return A + weights @ B + np.einsum("ni,ij,nj->n", weights, C, weights)


def _points(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(M), size=n)


def test_quadratic_recovers_a_known_quadratic_exactly() -> None:
    train, test = _points(25), _points(50, seed=1)
    model = QuadraticSurrogate(ridge=0).fit(train, paper_quadratic(train))
    assert np.allclose(model.predict(test), paper_quadratic(test), atol=1e-10)
    # Identifiable form on the simplex: b_i = a + B_i + C_ii, c_ij = C_ij + C_ji - C_ii - C_jj.
    i, j = np.triu_indices(M, k=1)
    expected = np.concatenate([A + B + np.diag(C), C[i, j] + C[j, i] - np.diag(C)[i] - np.diag(C)[j]])
    assert np.allclose(model.coef_, expected, atol=1e-9)
    a, b, cross = model.quadratic_form()
    assert np.allclose(a + test @ b + np.einsum("ni,ij,nj->n", test, cross, test), paper_quadratic(test))


@pytest.mark.parametrize("name", ["quadratic", "quadratic-paper"])
def test_quadratic_models_fit_noiseless_data(name: str) -> None:
    train, test = _points(30), _points(50, seed=1)
    model = make_surrogate(name).fit(train, paper_quadratic(train))
    assert np.allclose(model.predict(test), paper_quadratic(test), atol=1e-5)


def test_linear_recovers_a_linear_surface_and_misses_curvature() -> None:
    train = _points(12)
    linear = make_surrogate("linear").fit(train, train @ B)
    assert np.allclose(linear.coef_, B)
    cv_quadratic = cross_validate(
        make_surrogate("quadratic", ridge=0), _points(30), paper_quadratic(_points(30)), folds=None
    )
    cv_linear = cross_validate(linear, _points(30), paper_quadratic(_points(30)), folds=None)
    assert cv_quadratic.r2 > 0.999 > cv_linear.r2


def test_gaussian_process_follows_a_smooth_non_quadratic_surface() -> None:
    def surface(w: np.ndarray) -> np.ndarray:
        return np.exp(-4.0 * ((w - 0.25) ** 2).sum(axis=1)) + np.sin(3 * w[:, 0])

    train, test = _points(40), _points(40, seed=2)
    errors = {
        name: np.sqrt(
            np.mean((make_surrogate(name).fit(train, surface(train)).predict(test) - surface(test)) ** 2)
        )
        for name in ("gp", "quadratic")
    }
    assert errors["gp"] < 0.04 and errors["gp"] < errors["quadratic"] / 2


def test_too_few_runs_say_how_many_are_needed() -> None:
    weights = _points(9)
    with pytest.raises(
        SurrogateError, match="quadratic needs at least 10 runs for 4 domains, got 9; pass a ridge"
    ):
        make_surrogate("quadratic", ridge=0).fit(weights, paper_quadratic(weights))
    with pytest.raises(SurrogateError, match="linear needs at least 4 runs"):
        make_surrogate("linear").fit(weights[:3], paper_quadratic(weights[:3]))
    with pytest.raises(SurrogateError, match="quadratic-paper needs at least 12 runs"):
        make_surrogate("quadratic-paper").fit(weights, paper_quadratic(weights))
    assert make_surrogate("quadratic-paper", allow_underdetermined=True).fit(
        weights, paper_quadratic(weights)
    ).predict(weights).shape == (9,)


def test_distinct_mixtures_must_determine_the_coefficients() -> None:
    weights = np.repeat(_points(5), 3, axis=0)  # 15 runs, only 5 distinct mixtures
    with pytest.raises(SurrogateError, match="determine only 5 of its 10 coefficients"):
        make_surrogate("quadratic", ridge=0).fit(weights, paper_quadratic(weights))


def test_regularised_fit_below_the_parameter_count_is_explicit() -> None:
    weights = _points(6)
    model = make_surrogate("quadratic").fit(weights, paper_quadratic(weights))
    summary = model.describe(list("abcd"))
    assert summary["underdetermined"] is True and summary["ridge"] > 0 and summary["terms"] == 10


def test_auto_ridge_shrinks_more_under_noise() -> None:
    weights = _points(40)
    clean = paper_quadratic(weights)
    noisy = clean + np.random.default_rng(3).normal(scale=1.0, size=len(clean))
    assert (
        make_surrogate("quadratic").fit(weights, clean).ridge_
        < make_surrogate("quadratic").fit(weights, noisy).ridge_
    )


def test_bootstrap_uncertainty_is_seeded_and_grows_away_from_the_data() -> None:
    rng = np.random.default_rng(4)
    # Runs only near the uniform mixture; query there and at a vertex.
    weights = rng.dirichlet(np.full(M, 30.0), size=20)
    y = paper_quadratic(weights) + rng.normal(scale=0.05, size=20)
    first = make_surrogate("quadratic", n_bootstrap=30, seed=1).fit(weights, y)
    again = make_surrogate("quadratic", n_bootstrap=30, seed=1).fit(weights, y)
    query = np.array([np.full(M, 0.25), np.eye(M)[0]])
    prediction = first.predict_with_uncertainty(query)
    assert np.array_equal(prediction.std, again.predict_with_uncertainty(query).std)
    assert prediction.std[1] > 5 * prediction.std[0]
    assert (prediction.lower <= prediction.upper).all()
    with pytest.raises(SurrogateError, match="n_bootstrap=0"):
        make_surrogate("quadratic").fit(weights, y).predict_with_uncertainty(query)


def test_registry_and_input_errors() -> None:
    assert {"quadratic", "quadratic-paper", "linear", "gp"} <= set(SURROGATES)
    with pytest.raises(SurrogateError, match="unknown surrogate 'cubic'"):
        make_surrogate("cubic")
    with pytest.raises(SurrogateError, match=r"has no options \['ridge'\]"):
        make_surrogate("linear", ridge=1.0)
    with pytest.raises(SurrogateError, match="do not sum to 1"):
        make_surrogate("linear").fit([[0.5, 0.6], [1.0, 0.0]], [1.0, 2.0])
    with pytest.raises(SurrogateError, match="not fitted"):
        make_surrogate("linear").predict([[0.5, 0.5]])


def test_cross_validation_scores_out_of_fold_predictions() -> None:
    weights = _points(20)
    y = scheffe_features(weights) @ np.arange(1.0, 11.0)
    loo = cross_validate(make_surrogate("quadratic", ridge=0), weights, y, folds=None)
    assert loo.scheme == "leave-one-out" and np.unique(loo.fold).size == 20
    assert loo.r2 == pytest.approx(1.0) and loo.rmse < 1e-8 and loo.spearman == pytest.approx(1.0)
    five = cross_validate(make_surrogate("linear"), weights, y, folds=5, seed=0)
    assert five.scheme == "5-fold" and np.bincount(five.fold).tolist() == [4] * 5
    assert five.rmse > 1e-3
    with pytest.raises(
        SurrogateError, match="5-fold cross-validation trains on 8 of 10 runs: quadratic needs at least 10"
    ):
        cross_validate(make_surrogate("quadratic", ridge=0), weights[:10], y[:10], folds=5)
