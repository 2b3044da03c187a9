"""The pilot count against the surrogate, checked at config load: the mixture-search pipeline fits
the configured surrogate after every wave, the first time on the seed runs alone, so a surrogate
that needs more runs than the seed wave plans is refused before any pilot trains."""

from __future__ import annotations

import numpy as np
import pytest

from modomodo import stages
from modomodo.config import ConfigError, load_config
from modomodo.mixture import pilots as plans

PAPER = ["search.seeds=[single, exclude_one, uniform]", "search.surrogate=quadratic-paper"]
HEURISTICS = "search.heuristics=[ain, aout, abal, coli, norm]"


def records_of(cfg, pilots: list[dict]):
    rng = np.random.default_rng(0)
    rows = [
        plans.run_record(
            {"run_id": p["run"], "mixture": p["mixture"], "kind": p["kind"], "seed": 42, "steps": 1},
            {"out_score": float(rng.uniform(0.3, 0.5)), "in_score": float(rng.uniform(0.3, 0.5))},
        )
        for p in pilots
    ]
    return plans.load_records(cfg, rows)


def test_the_planned_waves_are_what_the_planners_plan():
    cfg = load_config("smoke", [*PAPER, HEURISTICS, "search.rounds=2", "search.pilots_per_round=3",
                                "search.paper_underdetermined=true"])  # fmt: skip
    runs = cfg.search.wave_runs(list(cfg.data.domains))
    assert runs == [11, 16, 19, 22]
    seeds = plans.seed_pilots(cfg)
    heuristics = plans.heuristic_pilots(cfg, records_of(cfg, seeds))
    assert [len(seeds), len(seeds) + len(heuristics)] == runs[:2]


def test_quadratic_paper_with_too_few_seed_runs_is_refused_at_load_naming_both_numbers_and_the_fixes(
    tmp_path,
):
    # 22 pilots in all, more than the strict fit needs: the first fit still has only the 11 seed runs.
    overrides = [*PAPER, HEURISTICS, "search.rounds=3"]
    with pytest.raises(ConfigError) as error:
        load_config("smoke", overrides)
    message = str(error.value)
    assert message.startswith(
        "search.surrogate: quadratic-paper needs at least 20 runs for 5 domains (a fit needs 19"
    )
    assert (
        "plans 11 runs for 5 domains (22 pilots in all, with 5 heuristic and 6 in active rounds)" in message
    )
    for fix in (
        "add seed families to search.seeds",
        "gp or quadratic: 4 runs",
        "search.paper_underdetermined: true",
    ):
        assert fix in message
    # What the load check prevents: the surrogate stage after the seed wave fails on those 11 runs.
    cfg = load_config("smoke", [*PAPER, HEURISTICS, "search.rounds=3", "search.surrogate=gp"])
    cfg.search.surrogate = "quadratic-paper"
    with pytest.raises(Exception, match="quadratic-paper needs at least 19 runs for 5 domains, got 10"):
        stages.fit_surrogate_stage(cfg, records_of(cfg, plans.seed_pilots(cfg)), tmp_path, run_id="t")


def test_a_surrogate_that_fits_the_seed_runs_is_accepted(tmp_path):
    cfg = load_config("smoke", [*PAPER, "search.paper_underdetermined=true"])
    summary = stages.fit_surrogate_stage(
        cfg, records_of(cfg, plans.seed_pilots(cfg)), tmp_path / "p", run_id="t"
    )
    assert summary["model"] == "quadratic-paper" and summary["runs"] == 11
    for surrogate in ("gp", "quadratic"):
        assert (
            load_config("smoke", [*PAPER[:1], f"search.surrogate={surrogate}"]).search.surrogate == surrogate
        )


def test_the_boundary_is_where_the_surrogate_stage_starts_to_fit(tmp_path):
    # linear fits one run per domain, and leave-one-out needs one more: 6 seed runs, not 5.
    cfg = load_config("smoke", ["search.seeds=[single, uniform]", "search.surrogate=linear"])
    summary = stages.fit_surrogate_stage(
        cfg, records_of(cfg, plans.seed_pilots(cfg)), tmp_path / "6", run_id="t"
    )
    assert summary["model"] == "linear" and summary["runs"] == 6
    with pytest.raises(ConfigError, match=r"search.surrogate: linear needs at least 6 runs for 5 domains \(a fit "
                                          r"needs 5.*seed wave of search.seeds \['single'\] plans 5 runs"):  # fmt: skip
        load_config("smoke", ["search.seeds=[single]", "search.surrogate=linear"])
    cfg.search.seeds = ["single"]  # past the load check: the stage fails where the check said
    with pytest.raises(Exception, match="linear needs at least 5 runs for 5 domains, got 4"):
        stages.fit_surrogate_stage(cfg, records_of(cfg, plans.seed_pilots(cfg)), tmp_path / "5", run_id="t")
    message = str(
        pytest.raises(
            ConfigError, load_config, "smoke", ["search.seeds=[single]", "search.surrogate=linear"]
        ).value
    )
    assert "paper_underdetermined" not in message, "that fix applies to quadratic-paper only"


def test_min_pilots_above_the_seed_wave_is_refused():
    assert load_config("smoke", ["search.seeds=[single]", "search.min_pilots=5"]).search.min_pilots == 5
    with pytest.raises(ConfigError, match=r"search.min_pilots: 6, but the seed wave of search.seeds \['single'\] "
                                          "plans 5 runs"):  # fmt: skip
        load_config("smoke", ["search.seeds=[single]", "search.min_pilots=6"])
