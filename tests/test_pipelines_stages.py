"""The stage functions behind the mixture-search components that need no training: pilot plans,
run records, the surrogate fit and the search (on run records with a known score surface)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modomodo import stages
from modomodo.components.runtime import (
    experiment_config,
    fingerprint,
    integral_floats_to_int,
    metrics_port,
    with_mixture,
    with_replicate_seed,
)
from modomodo.config import ConfigError, load_config
from modomodo.data.curated import load_curated
from modomodo.mixture import pilots as plans
from modomodo.mixture.heuristics import HeuristicError
from modomodo.mixture.records import RunRecordsError
from modomodo.mixture.seeds import random_pilots
from modomodo.mixture.simplex import Mixture

THREE = load_config(
    "smoke",
    [
        "data.domains={det: {rewards: [{name: format}, {name: iou_visual_rft, weight: 2}]},"
        " geo: {rewards: [{name: format}, {name: accuracy, weight: 2}]},"
        " sci: {rewards: [{name: format}, {name: accuracy, weight: 2}]}}",
        "search.trials=60",
        "search.surrogate=quadratic",  # the surface below is quadratic: these tests check that model
    ],
)
DOMAINS = list(THREE.data.domains)


def true_score(w: np.ndarray) -> float:
    """A quadratic surface whose maximum lies inside the edge of the first two domains, away from
    every seed mixture (for three domains at ``TRUE_BEST``)."""
    return float(np.array([0.2, 0.3, 0.1, 0.15, 0.25])[: len(w)] @ w + 1.2 * w[0] * w[1])


TRUE_BEST = np.array([1.1 / 2.4, 1 - 1.1 / 2.4, 0.0])


def records_for(pilots: list[dict]) -> list[dict]:
    rows = []
    for i, pilot in enumerate(pilots):
        w = np.array(list(pilot["mixture"].values()))
        score = true_score(w)
        run = {
            "run_id": f"{pilot['run']}-{i}",
            "mixture": pilot["mixture"],
            "kind": pilot["kind"],
            "seed": 42,
            "steps": 60,
        }
        rows.append(
            plans.run_record(run, {"in_score": score + 0.05, "out_score": score, "chart_score": score})
        )
    return rows


def test_seed_pilots_follow_the_configured_families():
    def plan(seeds: str) -> list[dict]:
        return plans.seed_pilots(load_config("smoke", [f"search.seeds={seeds}"]))

    every = plan("[single, exclude_one, uniform]")
    assert len(every) == 5 + 5 + 1
    assert {p["kind"] for p in every} == {"seed"}
    assert len({p["run"] for p in every}) == len(every)
    singles = plan("[single]")
    assert sorted(p["run"] for p in singles) == sorted(
        f"single-{d}" for d in load_config("smoke").data.domains
    )
    assert all(max(p["mixture"].values()) == 1.0 for p in singles)
    (uniform,) = plan("[uniform]")
    assert uniform["mixture"] == pytest.approx({d: 0.2 for d in uniform["mixture"]})
    # ParallelFor items never use the key "name" (kfp resolves it wrongly).
    assert all(set(p) == {"run", "mixture", "kind", "replicate"} and p["replicate"] == 0 for p in every)


def test_run_record_is_a_row_of_the_records_table():
    (pilot,) = plans.seed_pilots(load_config("smoke", ["search.seeds=[uniform]"]))
    run = {
        "run_id": "smoke-uniform-abc",
        "mixture": pilot["mixture"],
        "kind": "seed",
        "seed": 42,
        "steps": 60,
    }
    row = plans.run_record(run, {"in_score": 0.5, "out_score": 0.25})
    assert row["run_id"] == "smoke-uniform-abc"
    assert row["w_det"] == pytest.approx(0.2)
    assert (row["in_score"], row["out_score"], row["kind"], row["steps"]) == (0.5, 0.25, "seed", 60)
    with pytest.raises(RunRecordsError, match="score names end in"):
        plans.run_record(run, {"in": 0.5})


def test_heuristic_pilots_from_seed_runs_and_a_clear_error_when_seeds_lack():
    cfg = load_config(
        "smoke", ["search.seeds=[single, exclude_one, uniform]", "search.heuristics=[ain, coli, norm]"]
    )
    records = plans.load_records(cfg, records_for(plans.seed_pilots(cfg)))
    pilots = plans.heuristic_pilots(cfg, records)
    assert [p["run"] for p in pilots] == ["heuristic-ain", "heuristic-coli", "heuristic-norm"]
    assert all(p["kind"] == "heuristic" and sum(p["mixture"].values()) == pytest.approx(1) for p in pilots)
    with pytest.raises(ConfigError, match="norm needs the exclude_one seed runs"):  # before any pilot
        load_config("smoke", ["search.heuristics=[norm]", "search.seeds=[single, uniform]"])
    # Records without the runs a heuristic needs (their pilots failed, or an old records table).
    singles = load_config("smoke", ["search.seeds=[single, uniform]"])
    records = plans.load_records(cfg, records_for(plans.seed_pilots(singles)))
    with pytest.raises(HeuristicError, match="norm.*exclude-one"):
        plans.heuristic_pilots(cfg, records)


def test_a_heuristic_equal_to_a_trained_mixture_is_a_replicate_with_the_next_seed(monkeypatch):
    from modomodo.mixture import heuristics

    cfg = load_config("smoke", ["search.heuristics=[ain, coli]"])
    records = plans.load_records(cfg, records_for(plans.seed_pilots(cfg)))  # single + uniform
    domains = list(cfg.data.domains)
    uniform = Mixture.uniform(domains)
    other = Mixture.from_vector(domains, [0.4, 0.3, 0.1, 0.1, 0.1])
    found = [
        heuristics.HeuristicMixture(n, m, ())
        for n, m in (("Ain", uniform), ("Norm", uniform), ("Coli", other))
    ]
    monkeypatch.setattr(heuristics, "compute_heuristics", lambda records, names: (found, {}))
    pilots = plans.heuristic_pilots(cfg, records)
    assert [(p["run"], p["replicate"]) for p in pilots] == [
        ("heuristic-ain", 1),  # the uniform seed run is replicate 0
        ("heuristic-norm", 2),
        ("heuristic-coli", 0),
    ]


def test_records_append_to_the_previous_wave(tmp_path):
    first = plans.load_records(THREE, records_for(plans.seed_pilots(THREE)))
    first.write(tmp_path / "records.csv")
    extra = records_for([{"run": "pilot", "mixture": {"det": 0.5, "geo": 0.5, "sci": 0.0}, "kind": "pilot"}])
    both = plans.load_records(THREE, extra, tmp_path / "records.csv")
    assert len(both) == len(first) + 1
    assert both.run_ids[:-1] == first.run_ids
    assert plans.load_records(THREE, [], tmp_path / "records.csv").fingerprint() == first.fingerprint()


def test_surrogate_fit_reports_cross_validated_quality_and_plots(tmp_path):
    pilots = plans.seed_pilots(THREE) + [
        plans.pilot_item(p.name, p.mixture, p.kind) for p in random_pilots(DOMAINS, 8, seed=1)
    ]
    records = plans.load_records(THREE, records_for(pilots))
    summary = stages.fit_surrogate_stage(THREE, records, tmp_path, run_id="t-surrogate")
    assert summary["model"] == "quadratic" and summary["runs"] == len(pilots)
    assert set(summary["cv"]) == {"quadratic", "linear", "gp"}
    # The surface is quadratic: the quadratic predicts held-out runs far better than the linear model.
    assert summary["cv"]["quadratic"]["r2"] > 0.95
    assert summary["cv"]["quadratic"]["rmse"] < summary["cv"]["linear"]["rmse"] / 3
    assert summary["cv"]["quadratic"]["scheme"] == "leave-one-out"
    assert (tmp_path / "cv.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "surrogate.json").read_text())["fit"]["model"] == "quadratic"


def test_a_baseline_with_too_few_runs_is_skipped_not_fatal(tmp_path):
    cfg = load_config("smoke", ["search.seeds=[single]", "search.surrogate=gp"])
    records = plans.load_records(cfg, records_for(plans.seed_pilots(cfg))[:4])
    summary = stages.fit_surrogate_stage(cfg, records, tmp_path, run_id="t")
    assert "linear" in summary["skipped"] and "needs at least 5 runs" in summary["skipped"]["linear"]
    assert "gp" in summary["cv"]


def test_search_finds_the_best_mixture_and_explores_away_from_runs(tmp_path):
    pilots = plans.seed_pilots(THREE) + [
        plans.pilot_item(p.name, p.mixture, p.kind) for p in random_pilots(DOMAINS, 8, seed=1)
    ]
    records = plans.load_records(THREE, records_for(pilots))
    best = stages.search_stage(THREE, records, tmp_path / "best", mode="best", k=3, storage=None, run_id="t")
    assert len(best.proposals) == 3
    assert best.proposals[0].mixture.distance(Mixture.from_vector(DOMAINS, TRUE_BEST)) < 0.1
    saved = json.loads((tmp_path / "best" / "proposals.json").read_text())
    assert saved["mode"] == "best" and saved["proposals"][0]["mixture"] == pytest.approx(
        best.proposals[0].mixture.to_dict()
    )
    assert (tmp_path / "best" / "simplex.png").is_file() and (tmp_path / "best" / "study.db").is_file()
    explore = stages.search_stage(
        THREE, records, tmp_path / "explore", mode="explore", k=2, storage=None, run_id="t"
    )
    assert len(explore.proposals) == 2
    for proposal in explore.proposals:
        assert min(proposal.mixture.distance(m) for m in records.mixtures()) >= 0.05


def test_component_config_survives_the_protobuf_round_trip():
    # A pipeline's dict parameter turns every number into a float; components restore the ints.
    as_sent = json.loads(json.dumps(THREE.to_dict()), parse_int=float)
    assert as_sent["train"]["steps"] == float(THREE.train.steps)
    with pytest.raises(ConfigError, match="train.steps"):
        load_config("smoke", ["train.steps=60.0"])
    assert experiment_config(as_sent) == THREE
    assert integral_floats_to_int({"a": [1.0, 0.5], "b": {"c": 2.0}}) == {"a": [1, 0.5], "b": {"c": 2}}
    assert fingerprint(as_sent, {"det": 1.0}) == fingerprint(THREE.to_dict(), {"det": 1})
    assert fingerprint(THREE.to_dict(), {"det": 1}) != fingerprint(THREE.to_dict(), {"geo": 1})


def test_pipeline_side_config_changes_make_a_new_config():
    # A validated config is shared (components rebuild it once): a pilot's mixture or replicate
    # seed must not leak into it.
    before = THREE.to_dict()
    pilot = with_replicate_seed(with_mixture(THREE, {"det": 1.0}), 2)
    assert THREE.to_dict() == before
    assert pilot.train.mixture == {"det": 1} and pilot.train.seed == THREE.train.seed + 2
    assert pilot.resolved_mixture() == {"det": 1.0, "geo": 0.0, "sci": 0.0}
    assert with_mixture(THREE, {}) is THREE and with_replicate_seed(THREE, 0) is THREE
    with pytest.raises(ConfigError, match="train.mixture"):
        with_mixture(THREE, {"chart": 1.0})
    assert THREE.to_dict() == before


def test_metrics_port_comes_from_the_pod_environment(monkeypatch):
    monkeypatch.delenv("MODOMODO_METRICS_PORT", raising=False)
    assert metrics_port() == 0
    monkeypatch.setenv("MODOMODO_METRICS_PORT", "9400")
    assert metrics_port() == 9400
    for bad in ("http", "-1", "70000"):
        monkeypatch.setenv("MODOMODO_METRICS_PORT", bad)
        with pytest.raises(ValueError, match="MODOMODO_METRICS_PORT"):
            metrics_port()


def test_a_benchmark_counts_as_in_domain_only_when_the_data_trains_on_it(tmp_path):
    # THREE trains on det, geo and sci: ref and spatial are tests of what those teach.
    cfg = load_config(
        "smoke",
        [f"data.domains={THREE.to_dict()['data']['domains']}", "data.benchmark_scale=0.02"],
    )
    for dom in cfg.data.domains.values():
        dom.n_train = 2
    stages.curate_stage(cfg, tmp_path / "data")
    data = load_curated(tmp_path / "data")
    assert sorted(data.train) == ["det", "geo", "sci"]
    assert data.splits["sci"] == "in"
    assert data.splits["ref"] == data.splits["spatial"] == data.splits["chart"] == "out"
