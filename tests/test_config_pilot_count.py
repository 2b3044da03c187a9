"""The pilot count against the surrogate: the mixture-search pipeline fits the configured surrogate
after every wave, the first time on the seed runs alone (and leave-one-out, on all but one), so a
search whose seed wave is too small for its surrogate is refused when the pipeline is built (by
``modomodo run``, ``compile`` or ``submit``), before any pilot trains. The config itself still
loads: a config that only trains never fits a surrogate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from modomodo import stages
from modomodo.cli.app import app
from modomodo.config import ConfigError, load_config
from modomodo.mixture import pilots as plans
from modomodo.pipelines import build_pipeline

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


def refusal(overrides: list[str]) -> str:
    """The message the mixture-search pipeline refuses the config with (it loads)."""
    cfg = load_config("smoke", overrides)
    with pytest.raises(ConfigError) as error:
        build_pipeline("mixture-search", cfg)
    return str(error.value)


def test_the_planned_waves_are_what_the_planners_plan():
    cfg = load_config("smoke", [*PAPER, HEURISTICS, "search.rounds=2", "search.pilots_per_round=3"])
    runs = cfg.search.wave_runs(list(cfg.data.domains))
    assert runs == [11, 16, 19, 22]
    seeds = plans.seed_pilots(cfg)
    heuristics = plans.heuristic_pilots(cfg, records_of(cfg, seeds))
    assert [len(seeds), len(seeds) + len(heuristics)] == runs[:2]


def test_quadratic_paper_with_too_few_seed_runs_is_refused_naming_both_numbers_and_the_fixes(tmp_path):
    # 22 pilots in all, more than the strict fit needs: the first fit still has only the 11 seed runs.
    overrides = [*PAPER, HEURISTICS, "search.rounds=3"]
    message = refusal(overrides)
    assert message.startswith(
        "search.surrogate: quadratic-paper needs at least 20 runs for 5 domains (a fit needs 19"
    )
    assert (
        "plans 11 runs for 5 domains (22 pilots in all, with 5 heuristic and 6 in active rounds)" in message
    )
    assert message.endswith(
        "; choose a surrogate that fits 11 runs (gp, linear, quadratic), or set search.paper_underdetermined: "
        "true (the paper's minimum-norm fit)"
    ), "no seed family adds runs: all three are in search.seeds already"
    message = refusal(["search.seeds=[uniform]", "search.min_pilots=1"])  # 1 run: nothing fits it
    assert message.endswith(
        "plans 1 runs for 5 domains (1 pilots in all, with 0 heuristic and 0 in active rounds), and the "
        "surrogate is fitted to the seed runs alone first, before later waves add theirs; add seed "
        "families to search.seeds (all of ['exclude_one', 'single', 'uniform'] plan 11 runs)"
    )
    # What the check prevents: the surrogate stage after the seed wave fails on those 11 runs.
    cfg = load_config("smoke", overrides)
    with pytest.raises(Exception, match="quadratic-paper needs at least 19 runs for 5 domains, got 10"):
        stages.fit_surrogate_stage(cfg, records_of(cfg, plans.seed_pilots(cfg)), tmp_path, run_id="t")


def test_a_surrogate_that_fits_the_seed_runs_is_accepted(tmp_path):
    cfg = load_config("smoke", [*PAPER, "search.paper_underdetermined=true"])
    build_pipeline("mixture-search", cfg)
    summary = stages.fit_surrogate_stage(
        cfg, records_of(cfg, plans.seed_pilots(cfg)), tmp_path / "p", run_id="t"
    )
    assert summary["model"] == "quadratic-paper" and summary["runs"] == 11
    for surrogate in ("gp", "quadratic"):
        build_pipeline("mixture-search", load_config("smoke", [*PAPER[:1], f"search.surrogate={surrogate}"]))


def test_the_boundary_is_where_the_surrogate_stage_starts_to_fit(tmp_path):
    # linear fits one run per domain, and leave-one-out needs one more: 6 seed runs, not 5.
    cfg = load_config("smoke", ["search.seeds=[single, uniform]", "search.surrogate=linear"])
    build_pipeline("mixture-search", cfg)
    summary = stages.fit_surrogate_stage(
        cfg, records_of(cfg, plans.seed_pilots(cfg)), tmp_path / "6", run_id="t"
    )
    assert summary["model"] == "linear" and summary["runs"] == 6
    message = refusal(["search.seeds=[single]", "search.surrogate=linear"])
    assert message.startswith("search.surrogate: linear needs at least 6 runs for 5 domains (a fit needs 5")
    assert "seed wave of search.seeds ['single'] plans 5 runs" in message
    assert "paper_underdetermined" not in message, "that fix applies to quadratic-paper only"
    cfg.search.seeds = ["single"]  # the stage fails where the check said
    with pytest.raises(Exception, match="linear needs at least 5 runs for 5 domains, got 4"):
        stages.fit_surrogate_stage(cfg, records_of(cfg, plans.seed_pilots(cfg)), tmp_path / "5", run_id="t")


def test_min_pilots_above_the_seed_wave_is_refused():
    build_pipeline("mixture-search", load_config("smoke", ["search.seeds=[single]", "search.min_pilots=5"]))
    message = refusal(["search.seeds=[single]", "search.min_pilots=6"])
    assert message.startswith(
        "search.min_pilots: 6, but the seed wave of search.seeds ['single'] plans 5 runs"
    )


def test_a_two_domain_config_trains_but_its_search_is_refused_by_the_cli(tmp_path):
    # Two domains give three seed runs (two single, uniform), one fewer than gp needs: training is
    # fine, the search would fail at its first fit.
    domains = {
        "geo": {"rewards": [{"name": "format"}, {"name": "accuracy"}]},
        "sci": {"rewards": [{"name": "format"}, {"name": "accuracy"}]},
    }
    sets = ["--set", f"data.domains={json.dumps(domains)}"]
    runner = CliRunner()
    trained = runner.invoke(app, ["compile", "--output", str(tmp_path / "t"), "--pipeline", "train", *sets])
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "t" / "train.yaml").is_file()
    search = ["--pipeline", "mixture-search", *sets]
    refused = runner.invoke(app, ["compile", "--output", str(tmp_path / "s"), *search])
    assert refused.exit_code == 2, refused.output
    text = " ".join(refused.output.split())
    assert "config error: search.surrogate: gp needs at least 4 runs for 2 domains" in text
    assert "plans 3 runs" in text and text.endswith("; choose a surrogate that fits 3 runs (linear)")
    assert not list((tmp_path / "s").glob("*.yaml"))
    ran = runner.invoke(app, ["run", "--output", str(tmp_path / "r"), *search])
    assert ran.exit_code == 2 and "gp needs at least 4 runs for 2 domains" in " ".join(ran.output.split())
    assert not list((tmp_path / "r").glob("pipeline-root/*")), "nothing ran"


def test_every_synthetic_preset_builds_its_pipeline():
    # A preset that loads but whose seed wave cannot fit its surrogate would fail only at `modomodo run`
    # (paper-real needs its dataset paths set first).
    for name in ("smoke", "science", "reading", "paper"):
        build_pipeline("mixture-search", load_config(name))
