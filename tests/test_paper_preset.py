"""The ``paper-real`` preset: the paper's five training sets and seven benchmarks as configured
sources whose locations the user sets, and the paper's search. Without the locations it refuses to
load, listing every one; with them it resolves to the curate stage's sources."""

from __future__ import annotations

import pytest

from modomodo.config import ConfigError, config_from_dict, load_config
from modomodo.stages.curate import source_specs

DOMAINS = {"det": "visual_rft_coco", "ref": "lisa", "geo": "geoqav", "spatial": "sat", "sci": "scienceqa"}
PAPER_SIZES = {"lisa": 3397, "sat": 1928, "scienceqa": 2017, "chartqa": 2500, "infovqa": 2801,
               "mathvista": 1000, "mmmu": 900}  # fmt: skip


def located(**extra: str) -> list[str]:
    sets = [f"data.domains.{d}.source=/data/{d}" for d in DOMAINS]
    sets += [f"data.benchmarks.{b}.store=datasets/{b}" for b in PAPER_SIZES]
    return sets + [f"{k}={v}" for k, v in extra.items()]


def test_without_paths_the_preset_lists_every_source_to_set():
    with pytest.raises(ConfigError) as error:
        load_config("paper-real")
    message = str(error.value)
    for name in DOMAINS:
        assert (
            f"data.domains.{name}: set the path of domain {name!r} (--set data.domains.{name}.source="
            in message
        )
    for name in PAPER_SIZES:
        assert (
            f"data.benchmarks.{name}: set the path of benchmark {name!r} (--set data.benchmarks.{name}.path="
            in message
        )
    partly = located()[:-1]  # mmmu still unset
    with pytest.raises(ConfigError, match=r"^data.benchmarks.mmmu: set the path of benchmark 'mmmu'[^;]*$"):
        load_config("paper-real", partly)


def test_with_paths_the_preset_is_the_papers_sources_sizes_and_search(tmp_path):
    cfg = load_config("paper-real", located())
    assert {name: d.layout for name, d in cfg.data.domains.items()} == DOMAINS
    assert {name: b.size for name, b in cfg.data.benchmarks.items()} == PAPER_SIZES
    roles = cfg.data.benchmark_roles()
    assert {n for n, r in roles.items() if r == "in"} == {"lisa", "sat", "scienceqa"}
    assert cfg.benchmark_metrics() == {}, "the paper's exact match / mean IoU by default"
    assert cfg.data.domains["ref"].steps == [
        {"one_sample_per_question": {}},
        {"resize_long_side": {"max_side": 640}},
    ]
    assert cfg.data.domains["spatial"].steps == [{"sample": {"size": 15000}}]
    s = cfg.search
    assert (s.seeds, s.heuristics) == (
        ["single", "exclude_one", "uniform"],
        ["ain", "aout", "abal", "coli", "norm"],
    )
    assert (s.surrogate, s.candidates, s.top_k) == ("quadratic-paper", "paper", 10)
    t = cfg.train
    assert (t.num_generations, t.prompts_per_step, t.beta, t.lr, t.seed, t.steps) == (
        6,
        2,
        0.04,
        1e-6,
        42,
        2000,
    )
    assert config_from_dict(cfg.to_dict()) == cfg

    specs = source_specs(cfg, lambda key: tmp_path)
    assert specs["ref"].path == "/data/ref" and specs["ref"].steps[1] == (
        "resize_long_side",
        {"max_side": 640},
    )
    assert specs["chartqa"].test_path == str(tmp_path)
    assert specs["scienceqa"].steps == (("keep_with_image", {}), ("at_most", {"size": 2017}))
    assert [name for name, _ in specs["lisa"].steps] == [
        "one_sample_per_question",
        "resize_long_side",
        "at_most",
    ]
    customary = load_config("paper-real", located(**{"data.benchmarks.chartqa.metric": "customary"}))
    assert customary.benchmark_metrics() == {"chartqa": "relaxed_accuracy"}


def test_the_paper_preset_with_the_paper_search_compiles_into_the_pipeline(tmp_path):
    from modomodo.pipelines import compile_pipeline

    cfg = load_config("paper-real", located())
    assert compile_pipeline("mixture-search", cfg, tmp_path / "search.yaml").is_file()


PAPER_SEARCH = {"seeds": "[single, exclude_one, uniform]", "surrogate": "quadratic-paper",
                "paper_underdetermined": "true", "candidates": "paper", "trust_alpha": 1.0}  # fmt: skip


def test_search_candidates_paper_makes_the_final_search_sample_as_the_paper_does(tmp_path):
    import numpy as np

    from modomodo import stages
    from modomodo.mixture import pilots as plans

    # the paper-real search on the smoke domains: 11 seed runs, no heuristic pilots here
    cfg = load_config("smoke", [f"search.{k}={v}" for k, v in PAPER_SEARCH.items()] + ["search.trials=20"])
    slope = dict(zip(cfg.data.domains, np.linspace(0.1, 0.5, len(cfg.data.domains)), strict=True))
    rows = [
        plans.run_record(
            {"run_id": p["run"], "mixture": p["mixture"], "kind": "seed", "seed": 42, "steps": 1},
            {"out_score": sum(slope[d] * w for d, w in p["mixture"].items()), "in_score": 0.0},
        )
        for p in plans.seed_pilots(cfg)
    ]
    records = plans.load_records(cfg, rows)
    found = stages.search_stage(cfg, records, tmp_path / "s", mode="best", k=3, storage=None, run_id="t")
    assert found.mode == "paper" and {p.source for p in found.proposals} == {"gaussian"}
    ours = load_config(
        "smoke",
        [f"search.{k}={v}" for k, v in PAPER_SEARCH.items() if k != "candidates"] + ["search.trials=20"],
    )
    found = stages.search_stage(ours, records, tmp_path / "o", mode="best", k=3, storage=None, run_id="t")
    assert found.mode == "best" and "gaussian" not in {p.source for p in found.proposals}
    with pytest.raises(ConfigError, match=r"search.candidates: must be one of \['optuna', 'paper'\]"):
        load_config("smoke", ["search.candidates=cmaes"])
    with pytest.raises(
        ConfigError, match="search.paper_underdetermined: applies to surrogate quadratic-paper only"
    ):
        load_config("smoke", ["search.paper_underdetermined=true"])


def test_the_paper_presets_surrogate_fits_its_sixteen_pilots(tmp_path):
    import numpy as np

    from modomodo import stages
    from modomodo.mixture import pilots as plans

    cfg = load_config("paper-real", located())
    pilots = plans.seed_pilots(cfg)
    assert len(pilots) == 11
    rng = np.random.default_rng(0)
    rows = [
        plans.run_record(
            {"run_id": f"r{i}", "mixture": m, "kind": "seed", "seed": 42, "steps": 1},
            {"out_score": float(rng.uniform(0.3, 0.5)), "in_score": 0.0},
        )
        for i, m in enumerate([p["mixture"] for p in pilots] + [dict(zip(DOMAINS, w, strict=True))
                                                                for w in rng.dirichlet(np.ones(5), 5)])
    ]  # fmt: skip
    records = plans.load_records(cfg, rows)
    summary = stages.fit_surrogate_stage(cfg, records, tmp_path / "fit", run_id="t")
    assert summary["model"] == "quadratic-paper" and summary["runs"] == 16
    # Without paper_underdetermined the preset loads, but its mixture search is refused when built,
    # before any pilot trains, with the count its first fit (the 11 seed runs) would fail on.
    from modomodo.pipelines import build_pipeline

    strict = load_config("paper-real", located(**{"search.paper_underdetermined": "false"}))
    with pytest.raises(
        ConfigError,
        match=r"quadratic-paper needs at least 20 runs for 5 domains \(a fit needs 19.*plans 11 runs",
    ):
        build_pipeline("mixture-search", strict)
    with pytest.raises(Exception, match="quadratic-paper needs at least 19 runs for 5 domains"):
        stages.fit_surrogate_stage(strict, records, tmp_path / "strict", run_id="t")
