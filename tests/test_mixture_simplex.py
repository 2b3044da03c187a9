from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.stats import kstest

from modomodo.mixture.simplex import (
    Mixture,
    MixtureError,
    inverse_stick_breaking,
    stick_breaking,
    total_variation,
    weight_column,
)


def test_mixture_is_a_read_only_mapping_with_a_stable_label() -> None:
    mixture = Mixture({"sat": 0.75, "ref": 0.25, "geo": 0.0})
    assert dict(mixture) == {"sat": 0.75, "ref": 0.25, "geo": 0.0}
    assert mixture.label() == "ref=0.25,sat=0.75"
    assert Mixture({"ref": 0.25, "sat": 0.75}).label() == mixture.label()
    assert mixture.support == ("sat", "ref")
    assert Mixture.parse(mixture.label()) == Mixture({"ref": 0.25, "sat": 0.75})


def test_mixture_rejects_points_off_the_simplex() -> None:
    with pytest.raises(MixtureError, match="sum to 0.9"):
        Mixture({"a": 0.5, "b": 0.4})
    with pytest.raises(MixtureError, match="'b'.*>= 0"):
        Mixture({"a": 1.5, "b": -0.5})
    with pytest.raises(MixtureError, match="at least one domain"):
        Mixture({})
    assert Mixture({"a": 2.0, "b": 6.0}, normalize=True) == Mixture({"a": 0.25, "b": 0.75})


def test_columns_round_trip_and_missing_domains_weigh_zero() -> None:
    mixture = Mixture({"ref": 0.25, "sat": 0.75})
    row = {"run_id": "r1", **mixture.to_columns(), "out_score": 0.5}
    assert weight_column("ref") in row
    assert Mixture.from_columns(row) == mixture
    assert mixture.vector(["geo", "sat", "ref"]).tolist() == [0.0, 0.75, 0.25]
    with pytest.raises(MixtureError, match="not among"):
        mixture.vector(["ref"])


def test_from_vector_cleans_round_off_only() -> None:
    mixture = Mixture.from_vector(["a", "b"], [1.0 + 1e-12, -1e-13])
    assert mixture["b"] == 0.0
    with pytest.raises(MixtureError, match="negative"):
        Mixture.from_vector(["a", "b"], [1.1, -0.1])


def test_total_variation_distance() -> None:
    a, b = Mixture({"x": 1.0}), Mixture({"x": 0.5, "y": 0.5})
    assert a.distance(b) == pytest.approx(0.5)
    assert total_variation(np.array([1.0, 0.0]), np.array([[0.5, 0.5], [1.0, 0.0]])).tolist() == [0.5, 0.0]


@pytest.mark.parametrize("n_domains", [2, 3, 5])
def test_stick_breaking_is_a_bijection_onto_the_simplex(n_domains: int) -> None:
    rng = np.random.default_rng(0)
    cube = rng.uniform(size=(200, n_domains - 1))
    weights = stick_breaking(cube)
    assert np.allclose(weights.sum(axis=1), 1.0) and (weights >= 0).all()
    assert np.allclose(inverse_stick_breaking(weights), cube)
    mixtures = rng.dirichlet(np.ones(n_domains), size=200)
    assert np.allclose(stick_breaking(inverse_stick_breaking(mixtures)), mixtures)


def test_stick_breaking_reaches_vertices_and_faces_exactly() -> None:
    points = np.vstack([np.eye(4), [[0.0, 0.5, 0.5, 0.0], [1 / 3, 1 / 3, 0.0, 1 / 3]]])
    assert np.allclose(stick_breaking(inverse_stick_breaking(points)), points)


def test_uniform_cube_maps_to_uniform_simplex() -> None:
    # Uniform on the simplex of m vertices <=> every coordinate is Beta(1, m - 1).
    weights = stick_breaking(np.random.default_rng(1).uniform(size=(4000, 4)))
    for column in weights.T:
        assert kstest(column, "beta", args=(1, 4)).pvalue > 0.001


def test_importing_the_simplex_module_stays_light() -> None:
    heavy = ("pandas", "optuna", "sklearn", "matplotlib", "scipy")
    code = (
        "import sys; import modomodo.mixture.simplex; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))"
    )
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
