"""What the pilots can say: the surrogate's ranking against chance, the seed noise a lead must
beat, and the search falling back to the best pilot when the surrogate cannot rank."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from modomodo import stages
from modomodo.config import ConfigError, load_config
from modomodo.mixture import pilots as plans
from modomodo.mixture.evidence import lead_verdict, observed_mixtures, ranking_trust, seed_noise
from modomodo.mixture.records import RunRecords
from modomodo.stages.surrogate import loo_validation

CFG = load_config("smoke", ["search.trials=20"])
DOMAINS = list(CFG.data.domains)


def exact_p(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Share of all pairings of the predictions with a Spearman at least the observed one: the
    exact one-sided p-value, by brute force."""

    def rho(p):
        return np.corrcoef(np.argsort(np.argsort(actual)), np.argsort(np.argsort(p)))[0, 1]

    observed = rho(predicted)
    perms = list(itertools.permutations(predicted))
    return sum(rho(np.array(p)) >= observed - 1e-12 for p in perms) / len(perms)


@pytest.mark.parametrize(
    ("order", "trusted"),
    [
        ([0, 1, 2, 3, 4, 5], True),  # perfect ranking: p = 1/720
        ([1, 0, 2, 3, 5, 4], True),  # rho 0.886
        ([2, 0, 1, 4, 3, 5], True),  # rho 0.771, p about 0.05
        ([3, 0, 1, 2, 5, 4], False),  # rho 0.6: p about 0.12, what six noisy pilots often give
        ([5, 4, 3, 2, 1, 0], False),  # reversed, like the -0.94 seen on the smoke pilots
    ],
)
def test_ranking_trust_is_an_exact_one_sided_permutation_test(order, trusted):
    actual = np.array([0.10, 0.12, 0.15, 0.16, 0.20, 0.24])
    predicted = np.array(order, dtype=float)
    trust = ranking_trust(actual, predicted, alpha=0.1)
    assert trust.p_value == pytest.approx(exact_p(actual, predicted), abs=1e-9)
    assert trust.trusted is trusted
    assert trust.runs == 6
    assert ("no better than chance" in trust.reason) is not trusted


def test_ranking_trust_refuses_what_cannot_be_ranked():
    constant = ranking_trust(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.5, 0.5]), alpha=0.1)
    assert not constant.trusted and "all equal" in constant.reason and math.isnan(constant.spearman)
    two = ranking_trust(np.array([0.1, 0.2]), np.array([0.1, 0.2]), alpha=0.1)
    assert not two.trusted and "fewer than 3 runs" in two.reason
    # alpha 1 trusts any ranking, even a reversed one
    assert ranking_trust(np.array([0.1, 0.2, 0.3]), np.array([3.0, 2.0, 1.0]), alpha=1.0).trusted


def records_of(rows: list[tuple[dict[str, float], float, int]]) -> RunRecords:
    return RunRecords.from_rows(
        [
            plans.run_record(
                {"run_id": f"r{i}", "mixture": m, "kind": "seed", "seed": seed, "steps": 1},
                {"out_score": score, "in_score": score},
            )
            for i, (m, score, seed) in enumerate(rows)
        ],
        DOMAINS,
    )


def single(domain: str) -> dict[str, float]:
    return {d: float(d == domain) for d in DOMAINS}


def test_seed_noise_pools_the_replicates_and_falls_back_to_the_stated_estimate():
    uniform = {d: 1 / len(DOMAINS) for d in DOMAINS}
    rows = [(single("det"), 0.10, 42), (single("det"), 0.14, 43), (uniform, 0.20, 42)]
    rows += [(uniform, 0.21, 43), (uniform, 0.25, 44), (single("geo"), 0.3, 42)]
    noise = seed_noise(records_of(rows), "out_score", stated=0.5)
    # det: deviations +-0.02 (1 dof); uniform: mean 0.22, deviations -0.02, -0.01, +0.03 (2 dof)
    expected = math.sqrt((0.02**2 * 2 + 0.02**2 + 0.01**2 + 0.03**2) / 3)
    assert noise.std == pytest.approx(expected)
    assert "2 replicated pilot mixtures (3 dof)" in noise.source
    no_replicates = records_of([(single("det"), 0.1, 42), (uniform, 0.2, 42)])
    assert seed_noise(no_replicates, "out_score", stated=0.025).std == 0.025
    assert seed_noise(no_replicates, "out_score", stated=None).std is None
    assert seed_noise(None, "out_score", stated=None).source.startswith("unknown")
    best = observed_mixtures(records_of(rows), "out_score")
    assert [(round(o.mean, 6), o.runs) for o in best] == [(0.3, 1), (0.22, 3), (0.12, 2)]


def test_lead_verdict_needs_twice_the_std_of_a_two_run_difference():
    from modomodo.mixture.evidence import SeedNoise

    noise = SeedNoise(0.025, "stated")
    # a two-run difference has std 0.025 * sqrt(2) = 0.0354: beyond needs more than 0.0707
    assert lead_verdict(0.011, noise).endswith("within the noise")
    assert lead_verdict(0.070, noise).endswith("within the noise")
    assert lead_verdict(0.072, noise).endswith("beyond the noise")
    assert "+2.0 standard deviations" in lead_verdict(0.0708, noise)
    assert "cannot be judged" in lead_verdict(0.5, SeedNoise(None, "unknown"))


def seed_rows(cfg, score_of) -> list[dict]:
    return [
        plans.run_record(
            {"run_id": p["run"], "mixture": p["mixture"], "kind": "seed", "seed": 42, "steps": 1},
            {"out_score": score_of(p["mixture"]), "in_score": 0.0},
        )
        for p in plans.seed_pilots(cfg)
    ]


def test_search_trains_the_surrogates_optimum_only_when_it_ranks_held_out_pilots(tmp_path):
    # a smooth surface over the 11 seed pilots: the default surrogate (gp) ranks held-out pilots,
    # so its optimum is trained
    cfg = load_config("smoke", ["search.trials=20", "search.seeds=[single, exclude_one, uniform]"])
    assert cfg.search.surrogate == "gp"
    slope = dict(zip(DOMAINS, np.linspace(0.1, 0.5, len(DOMAINS)), strict=True))
    smooth = plans.load_records(cfg, seed_rows(cfg, lambda m: sum(slope[d] * w for d, w in m.items())))
    found = stages.search_stage(cfg, smooth, tmp_path / "a", mode="best", k=2, storage=None, run_id="t")
    assert found.decision["path"] == "surrogate" and found.decision["trust"]["trusted"]
    assert found.proposals[0].source != "best pilot"
    # the smoke preset's six pilots with scores unrelated to the mixture (a fixed pseudo-random
    # draw): the held-out ranking is chance, so the best pilot is trained and proposals.json says why
    draw = iter(np.random.default_rng(3).uniform(0.1, 0.3, 6))
    noise = plans.load_records(CFG, seed_rows(CFG, lambda m: float(next(draw))))
    validation = loo_validation(CFG, noise, CFG.search.surrogate)
    assert not ranking_trust(validation.actual, validation.predicted, CFG.search.trust_alpha).trusted
    found = stages.search_stage(CFG, noise, tmp_path / "b", mode="best", k=2, storage=None, run_id="t")
    assert found.decision["path"] == "best-pilot"
    best = int(noise.scores("out_score").argmax())
    assert found.proposals[0].mixture.distance(noise.mixtures()[best]) < 1e-9
    assert found.proposals[0].mean == pytest.approx(noise.scores("out_score").max())
    written = json.loads((tmp_path / "b" / "proposals.json").read_text())
    assert (
        written["decision"]["path"] == "best-pilot"
        and "no better than chance" in written["decision"]["reason"]
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.trust_alpha=0", "search.trust_alpha: must be in"),
        ("search.trust_alpha=1.5", "search.trust_alpha: must be in"),
        ("search.seed_noise=-0.1", "search.seed_noise: must be a finite number"),
        ("search.seed_noise=.inf", "search.seed_noise: must be a finite number"),
    ],
)
def test_bad_evidence_settings_are_rejected_when_the_config_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", [override])


def test_the_terminal_summary_shows_the_seed_noise_and_the_verdict_in_words():
    from rich.console import Console

    from modomodo.cli.pipelines import summary_table, verdict_lines

    mixture = {"det": 0.5, "geo": 0.5}
    summary = {
        "target": "out_score",
        "chosen": {"label": "chosen", "mixture": mixture, "scores": {"in_score": 0.3, "out_score": 0.2}},
        "uniform": {
            "mixture": {"det": 0.5, "geo": 0.5},
            "scores": {"in_score": 0.3, "out_score": 0.19},
            "delta": 0.01,
            "verdict": "the lead over uniform is +0.010, ...: within the noise",
        },
        "base": {"mixture": None, "scores": {"in_score": 0.1, "out_score": 0.1}, "delta": 0.1},
        "seed_noise": {"std": 0.025, "source": "stated"},
        "decision": {"path": "best-pilot", "reason": "held-out Spearman -0.94 ...: no better than chance"},
    }
    console = Console(width=200, record=True)
    console.print(summary_table(summary, "out_score"))
    rows = {line.split("│")[1].strip(): line for line in console.export_text().splitlines() if "│" in line}
    assert "±0.025" in rows["chosen"] and "±0.025" in rows["uniform"] and "±" not in rows["base"]
    assert verdict_lines(summary) == [
        "picked by: best-pilot (held-out Spearman -0.94 ...: no better than chance)",
        "verdict: the lead over uniform is +0.010, ...: within the noise",
    ]


def test_an_unset_optional_value_round_trips_through_a_pipeline_parameter(tmp_path):
    from modomodo.config import config_from_dict
    from modomodo.pipelines import compile_pipeline

    paper = load_config("paper")
    assert paper.search.seed_noise is None and "seed_noise" not in paper.to_dict()["search"]
    assert config_from_dict(paper.to_dict()) == paper
    assert config_from_dict(CFG.to_dict()).search.seed_noise == 0.025
    # KFP refuses a null inside a parameter's default: the paper config compiles
    assert compile_pipeline("train", paper, tmp_path / "train.yaml").is_file()
