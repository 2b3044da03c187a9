from __future__ import annotations

import numpy as np
import pytest

from modomodo.mixture.seeds import (
    excluded_domain,
    is_seed,
    is_uniform,
    random_pilots,
    seed_mixtures,
    single_domain,
    spread_pilots,
)
from modomodo.mixture.simplex import MixtureError, total_variation

DOMAINS = ["coco", "lisa", "geoqav", "sat", "scienceqa"]


def test_paper_seed_mixtures_for_five_domains() -> None:
    planned = seed_mixtures(DOMAINS)
    assert [p.name for p in planned[:2]] == ["single-coco", "single-lisa"]
    assert len(planned) == 11 and {p.kind for p in planned} == {"seed"}
    by_name = {p.name: p.mixture for p in planned}
    assert by_name["single-sat"].vector(DOMAINS).tolist() == [0, 0, 0, 1, 0]
    assert by_name["exclude-coco"].vector(DOMAINS).tolist() == [0, 0.25, 0.25, 0.25, 0.25]
    assert by_name["uniform"].vector(DOMAINS).tolist() == [0.2] * 5


def test_two_domains_list_each_seed_once() -> None:
    assert [p.name for p in seed_mixtures(["a", "b"])] == ["single-a", "single-b", "uniform"]
    with pytest.raises(MixtureError, match="at least two"):
        seed_mixtures(["a"])


def test_random_pilots_are_reproducible_by_seed() -> None:
    first = random_pilots(DOMAINS, 6, seed=3)
    assert [p.mixture for p in first] == [p.mixture for p in random_pilots(DOMAINS, 6, seed=3)]
    assert [p.mixture for p in first] != [p.mixture for p in random_pilots(DOMAINS, 6, seed=4)]
    assert [p.name for p in first][:2] == ["pilot-000", "pilot-001"] and first[0].kind == "pilot"


def test_concentration_and_prior_control_the_spread() -> None:
    prior = {"coco": 0.6, "lisa": 0.1, "geoqav": 0.1, "sat": 0.1, "scienceqa": 0.1}
    tight = np.array(
        [
            p.mixture.vector(DOMAINS)
            for p in random_pilots(DOMAINS, 300, seed=0, prior=prior, concentration=500)
        ]
    )
    loose = np.array(
        [p.mixture.vector(DOMAINS) for p in random_pilots(DOMAINS, 300, seed=0, prior=prior, concentration=2)]
    )
    assert np.allclose(tight.mean(axis=0), list(prior.values()), atol=0.01)
    assert tight.std(axis=0).max() < 0.03 < loose.std(axis=0).max()


def test_min_weight_zeroes_small_shares_like_regmix() -> None:
    pilots = np.array(
        [
            p.mixture.vector(DOMAINS)
            for p in random_pilots(DOMAINS, 200, seed=1, concentration=1.0, min_weight=0.05)
        ]
    )
    assert np.allclose(pilots.sum(axis=1), 1.0)
    positive = pilots[pilots > 0]
    assert positive.min() >= 0.05 and (pilots == 0).any()
    with pytest.raises(MixtureError, match=r"min_weight must lie in \[0, 1/5\]"):
        random_pilots(DOMAINS, 1, seed=0, min_weight=0.3)
    with pytest.raises(MixtureError, match="positive weight"):
        random_pilots(DOMAINS, 1, seed=0, prior={"coco": 1.0})


def test_seed_shapes_are_read_from_the_weights() -> None:
    assert single_domain(np.array([0.0, 1.0, 0.0])) == 1
    assert excluded_domain(np.array([0.5, 0.0, 0.5])) == 1
    assert excluded_domain(np.array([0.6, 0.0, 0.4])) is None
    assert is_uniform(np.full(4, 0.25)) and not is_uniform(np.array([0.3, 0.7]))
    assert not is_seed(np.array([0.2, 0.3, 0.5]))


def _closest_pair(points: np.ndarray) -> float:
    distances = total_variation(points[:, None, :], points[None, :, :])
    return float(distances[~np.eye(len(points), dtype=bool)].min())


def test_spread_pilots_fill_the_simplex_away_from_existing_runs() -> None:
    seeds = np.array([p.mixture.vector(DOMAINS) for p in seed_mixtures(DOMAINS)])
    spread = np.array([p.mixture.vector(DOMAINS) for p in spread_pilots(DOMAINS, 8, seed=0, existing=seeds)])
    random = np.array([p.mixture.vector(DOMAINS) for p in random_pilots(DOMAINS, 8, seed=0)])
    assert _closest_pair(np.vstack([seeds, spread])) > _closest_pair(np.vstack([seeds, random]))
    assert np.array_equal(
        spread,
        np.array([p.mixture.vector(DOMAINS) for p in spread_pilots(DOMAINS, 8, seed=0, existing=seeds)]),
    )
    assert [p.name for p in spread_pilots(DOMAINS, 2, seed=0)] == ["spread-000", "spread-001"]
