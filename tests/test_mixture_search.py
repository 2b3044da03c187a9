from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from test_benchmarks import load_benchmark

from modomodo.mixture.records import RunRecords, make_run_record
from modomodo.mixture.search import (
    best_mixtures,
    next_pilots,
    paper_candidates,
    propose,
    select_diverse,
)
from modomodo.mixture.simplex import Mixture, stick_breaking
from modomodo.mixture.study import SearchError, StudySettings, resolve_storage
from modomodo.mixture.surrogates import make_surrogate

PilotLoop = load_benchmark("pilot_loop").PilotLoop  # benchmarks/: what mixture_search.py drives
DOMAINS = ("a", "b", "c", "d")
OPTIMUM = np.array([0.1, 0.4, 0.3, 0.2])


def score(weights: np.ndarray) -> np.ndarray:
    """A concave quadratic whose maximum 1.0 lies at OPTIMUM, inside the simplex."""
    return 1.0 - 2.0 * ((weights - OPTIMUM) ** 2).sum(axis=1)


def records(n: int = 16, seed: int = 0, noise: float = 0.0) -> RunRecords:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(len(DOMAINS)), size=n)
    y = score(weights) + rng.normal(scale=noise, size=n)
    rows = [
        make_run_record(f"run-{i}", Mixture.from_vector(DOMAINS, w), {"out_score": v})
        for i, (w, v) in enumerate(zip(weights, y, strict=True))
    ]
    return RunRecords.from_rows(rows)


def fitted(table: RunRecords, n_bootstrap: int = 0):  # noqa: ANN201
    return make_surrogate("quadratic", n_bootstrap=n_bootstrap).fit(
        table.weights(), table.scores("out_score")
    )


def test_best_mixtures_find_the_optimum_and_stay_diverse() -> None:
    table = records()
    proposals = best_mixtures(
        fitted(table, 8), DOMAINS, table.weights(), k=5, config=StudySettings(n_trials=150, min_distance=0.05)
    )
    assert len(proposals) == 5
    assert proposals[0].mixture.distance(Mixture.from_vector(DOMAINS, OPTIMUM)) < 0.05
    assert proposals[0].mean == pytest.approx(1.0, abs=0.01)
    assert [p.mean for p in proposals] == sorted((p.mean for p in proposals), reverse=True)
    for i, first in enumerate(proposals):
        assert all(first.mixture.distance(other.mixture) >= 0.05 for other in proposals[i + 1 :])
        assert first.lower <= first.mean + 1e-9 and first.upper >= first.mean - 1e-9


def test_observed_mixtures_are_enqueued_first(tmp_path: Path) -> None:
    table = records(6)
    config = StudySettings(n_trials=5, storage=resolve_storage(tmp_path / "s.db"), study_name="enqueue")
    best_mixtures(fitted(table, 0), DOMAINS, table.weights(), k=1, config=config)
    trials = optuna.load_study(study_name="enqueue", storage=config.storage).trials
    assert len(trials) == 11
    assert [t.user_attrs.get("source") for t in trials[:6]] == ["observed"] * 6
    seen = np.array([[t.params[f"u_{d}"] for d in DOMAINS[:-1]] for t in trials[:6]])
    assert {Mixture.from_vector(DOMAINS, w).label(6) for w in stick_breaking(seen)} == {
        m.label(6) for m in table.mixtures()
    }


def test_sqlite_study_is_persisted_and_resumed(tmp_path: Path) -> None:
    table = records(8)
    url = resolve_storage(tmp_path / "studies.db")
    assert url == f"sqlite:///{(tmp_path / 'studies.db').resolve()}"
    first = propose(table, "out_score", k=2, n_bootstrap=0, config=StudySettings(n_trials=10, storage=url))
    study = optuna.load_study(study_name=first.study_name, storage=url)
    assert len(study.trials) == 18 and study.user_attrs["domains"] == list(DOMAINS)
    again = propose(table, "out_score", k=2, n_bootstrap=0, config=StudySettings(n_trials=10, storage=url))
    assert again.study_name == first.study_name
    assert len(optuna.load_study(study_name=first.study_name, storage=url).trials) == 18  # nothing rerun
    assert [p.mixture for p in again.proposals] == [p.mixture for p in first.proposals]
    longer = propose(table, "out_score", k=2, n_bootstrap=0, config=StudySettings(n_trials=25, storage=url))
    assert len(optuna.load_study(study_name=longer.study_name, storage=url).trials) == 33  # 15 added
    other = propose(
        table, "out_score", k=2, model="linear", n_bootstrap=0, config=StudySettings(n_trials=10, storage=url)
    )
    assert other.study_name != first.study_name


def test_a_study_name_cannot_be_reused_for_other_domains(tmp_path: Path) -> None:
    url = resolve_storage(tmp_path / "studies.db")
    config = StudySettings(n_trials=3, storage=url, study_name="shared")
    propose(records(6), "out_score", k=1, n_bootstrap=0, config=config)
    three = RunRecords.from_rows(
        [
            make_run_record(f"r{i}", Mixture.from_vector(("x", "y", "z"), w), {"out_score": float(i)})
            for i, w in enumerate(np.eye(3))
        ]
        + [make_run_record("r3", Mixture.uniform(("x", "y", "z")), {"out_score": 1.0})]
    )
    with pytest.raises(SearchError, match=r"created for domains \['a', 'b', 'c', 'd'\]"):
        propose(three, "out_score", k=1, model="linear", n_bootstrap=0, config=config)


def test_explore_prefers_uncertain_regions_away_from_the_runs() -> None:
    table = records(12, noise=0.02)
    surrogate = fitted(table, 16)
    config = StudySettings(n_trials=120, min_distance=0.1)
    pilots = next_pilots(surrogate, DOMAINS, table.weights(), k=4, kappa=3.0, config=config)
    assert len(pilots) == 4
    for pilot in pilots:
        assert min(pilot.mixture.distance(m) for m in table.mixtures()) >= 0.1
        assert pilot.acquisition == pytest.approx(pilot.mean + 3.0 * pilot.std)
    best = best_mixtures(surrogate, DOMAINS, table.weights(), k=1, config=config)[0]
    assert max(p.std for p in pilots) > best.std
    with pytest.raises(SearchError, match="n_bootstrap >= 2"):
        next_pilots(fitted(table, 0), DOMAINS, table.weights(), k=1, kappa=1.0, config=config)


def test_paper_candidates_sample_around_the_runs() -> None:
    table = records(20)
    candidates = paper_candidates(
        fitted(table), DOMAINS, table.weights(), k=3, config=StudySettings(paper_samples=2000)
    )
    assert len(candidates) == 3 and {c.source for c in candidates} == {"gaussian"}
    assert candidates[0].mean >= candidates[1].mean >= candidates[2].mean
    assert candidates[0].mixture.distance(Mixture.from_vector(DOMAINS, OPTIMUM)) < 0.15


def test_select_diverse_keeps_the_best_points_apart() -> None:
    points = np.array([[1.0, 0.0], [0.99, 0.01], [0.5, 0.5], [0.0, 1.0]])
    values = np.array([4.0, 3.0, 2.0, 1.0])
    assert select_diverse(points, values, 3, 0.1) == [0, 2, 3]
    assert select_diverse(points, values, 3, 0.1, avoid=np.array([[0.5, 0.5]])) == [0, 3]


def test_propose_rejects_bad_requests() -> None:
    with pytest.raises(SearchError, match="unknown mode"):
        propose(records(8), "out_score", mode="greedy")
    with pytest.raises(SearchError, match="k must be >= 1"):
        propose(records(8), "out_score", k=0)
    with pytest.raises(SearchError, match="n_trials"):
        StudySettings(n_trials=0)


def test_pilot_loop_asks_and_tells() -> None:
    loop = PilotLoop(
        records(8, noise=0.01),
        "out_score",
        n_bootstrap=8,
        kappa=1.0,
        search=StudySettings(n_trials=40, min_distance=0.1),
    )
    asked = loop.ask(2)
    assert len(loop.pending) == 2
    more = loop.ask(1)
    assert min(more[0].mixture.distance(p.mixture) for p in asked) >= 0.1  # keeps away from pending pilots
    for proposal in asked + more:
        loop.tell(proposal.mixture, {"out_score": float(score(proposal.mixture.vector(DOMAINS)[None, :])[0])})
    assert len(loop.records) == 11 and loop.pending == []
    assert loop.records.frame["kind"].iloc[-1] == "pilot"
    best = loop.recommend(1)[0]
    assert best.mixture.distance(Mixture.from_vector(DOMAINS, OPTIMUM)) < 0.1
    with pytest.raises(ValueError, match="needs the target score 'out_score'"):
        loop.tell(best.mixture, {"in_score": 0.5})
