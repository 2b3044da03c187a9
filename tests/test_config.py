"""Configs are validated before any work starts, and errors name the offending key."""

from __future__ import annotations

import pytest

from modomodo.config import ConfigError, ExperimentConfig, load_config, preset_names

NEEDS_PATHS = {"paper-real": "tests/test_paper_preset.py sets its paths"}
"""Presets that name real datasets whose locations the user sets; they refuse to load without."""


def test_every_preset_loads_and_validates():
    assert {"smoke", "paper"} <= set(preset_names())
    for name in preset_names():
        if name in NEEDS_PATHS:
            with pytest.raises(ConfigError, match="set the path of"):
                load_config(name)
            continue
        cfg = load_config(name)
        assert isinstance(cfg, ExperimentConfig)
        assert cfg.data.domains


def test_paper_preset_has_the_papers_settings():
    cfg = load_config("paper")
    t = cfg.train
    assert (t.num_generations, t.prompts_per_step, t.beta, t.lr, t.warmup_ratio, t.seed, t.steps) == (
        6,
        2,
        0.04,
        1e-6,
        0.1,
        42,
        2000,
    )
    assert cfg.policy.model == "Qwen/Qwen2-VL-2B-Instruct"
    assert cfg.policy.freeze_vision
    weights = {r.name: r.weight for r in cfg.data.domains["sci"].rewards}
    assert weights == {"format": 1.0, "accuracy": 2.0}


def test_overrides_are_parsed_as_yaml():
    cfg = load_config("smoke", ["train.steps=7", "train.mixture={det: 0.25, sci: 0.75}", "train.lr=1e-4"])
    assert cfg.train.steps == 7
    assert cfg.train.lr == 1e-4
    assert cfg.resolved_mixture() == {"det": 0.25, "ref": 0.0, "geo": 0.0, "spatial": 0.0, "sci": 0.75}


def test_empty_mixture_means_uniform():
    mix = load_config("smoke").resolved_mixture()
    assert set(mix) == {"det", "ref", "geo", "spatial", "sci"}
    assert all(w == pytest.approx(0.2) for w in mix.values())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.stepz=3", r"train: unknown key\(s\) \['stepz'\]"),
        ("train.steps=three", r"train.steps: expected int"),
        ("train.mixture={det: 0.5, nope: 0.5}", r"train.mixture: unknown domains \['nope'\]"),
        ("train.mixture={det: 0.5, sci: 0.4}", r"train.mixture: .*sum to 0.9"),
        ("train.mixture={det: -0.5, sci: 1.5}", r"train.mixture: .*finite and >= 0"),
        ("data.domains.sci.rewards=[]", r"data.domains.sci.rewards: a domain without a reward"),
        ("data.domains.sci.rewards=[{name: nope}]", r"unknown reward 'nope'"),
        ("data.domains.sci.rewards=[{name: accuracy, weight: 2}]", r"gating needs a 'format' reward"),
        ("train.num_generations=1", r"at least 2 completions"),
        ("train.sampling=random", r"train.sampling"),
        ("train.deepspeed=/no/such.json", r"train.deepspeed"),
        ("policy.dtype=fp16", r"policy.dtype"),
        ("train.lr=.nan", r"train.lr: must be a finite number in \(0, inf\), got nan"),
        ("train.beta=-0.1", r"train.beta: must be a finite number in \[0, inf\)"),
        ("train.temperature=0", r"train.temperature: must be a finite number in \(0, inf\)"),
        ("train.warmup_ratio=1", r"train.warmup_ratio: must be a finite number in \[0, 1\)"),
        ("train.max_completion_length=0", r"train.max_completion_length: must be >= 1"),
        ("sft.batch_size=0", r"sft.batch_size: must be >= 1"),
        ("sft.lr=.inf", r"sft.lr: must be a finite number"),
        ("search.surrogate=quadratc", r"search.surrogate: unknown 'quadratc'; known: \[.*'quadratic'"),
        (
            "search.target=out",
            r"search.target: 'out' is not a score column; choose from \['in_score', 'out_score', 'chart_score'",
        ),
        ("search.heuristics=[norm]", r"norm needs the exclude_one seed runs"),
        ("search.heuristics=[ain]\nsearch.seeds=[]", r"computed from seed runs; search.seeds is empty"),
        (
            "data.domains.geo.rewards=[{name: format}, {name: iou_continuous}]",
            r"data.domains.geo.rewards\[1\].name: 'iou_continuous' cannot score mc answers",
        ),
        ("nonsense", r"expected dotted.key=value"),
    ],
)
def test_bad_configs_are_rejected_with_the_key_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", override.split("\n"))


def test_heuristics_get_the_seed_runs_they_need():
    cfg = load_config("smoke", ["search.heuristics=[ain, coli]"])  # the smoke seeds: single + uniform
    assert (cfg.search.heuristics, cfg.search.seeds) == (["ain", "coli"], ["single", "uniform"])
    with pytest.raises(ConfigError, match="coli needs single or exclude_one"):
        load_config("smoke", ["search.heuristics=[coli]", "search.seeds=[uniform]"])
    cfg = load_config("smoke", ["search.heuristics=[norm, coli]", "search.seeds=[exclude_one]"])
    assert (cfg.search.heuristics, cfg.search.seeds) == (["norm", "coli"], ["exclude_one"])


def test_reward_kinds_are_checked_on_curated_data():
    # A domain read from a path has the answer kinds of its rows, known only once curated.
    cfg = load_config("smoke")
    # Box answers for the IoU domain and mc/text for an accuracy domain are accepted (no error) ...
    assert cfg.check_reward_kinds({"ref": ["box"], "geo": ["mc", "text"]}) is None
    # ... and accuracy scores boxes too (as exact text), so only the IoU reward refuses a kind.
    assert cfg.check_reward_kinds({"geo": ["box"]}) is None
    with pytest.raises(
        ConfigError, match=r"ref.rewards\[1\].name: 'iou_continuous' cannot score mc, text answers"
    ):
        cfg.check_reward_kinds({"ref": ["text", "box", "mc"]})


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match="smoke"):
        load_config("no-such-preset")


def test_a_yaml_file_works_as_a_preset(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ndata:\n  domains:\n    sci: {rewards: [{name: format}, {name: accuracy, weight: 2}]}\n"
    )
    cfg = load_config(str(path))
    assert cfg.name == "mine"
    assert list(cfg.data.domains) == ["sci"]


def test_allowed_values_are_the_owners():
    # Seed families, heuristics, sampling modes and DeepSpeed presets are named once, by the module
    # that implements them; the config accepts exactly those and names the key otherwise.
    from modomodo.mixture.heuristics import HEURISTICS
    from modomodo.mixture.seeds import SEED_FAMILIES
    from modomodo.rl.deepspeed_presets import DEEPSPEED_PRESETS
    from modomodo.rl.sampler import SAMPLING_MODES

    every = "search.seeds=[" + ", ".join(SEED_FAMILIES) + "]"
    cfg = load_config("smoke", [every, "search.heuristics=[" + ", ".join(HEURISTICS) + "]"])
    assert (cfg.search.seeds, cfg.search.heuristics) == (list(SEED_FAMILIES), list(HEURISTICS))
    for mode in SAMPLING_MODES:
        assert load_config("smoke", [f"train.sampling={mode}"]).train.sampling == mode
    for preset in DEEPSPEED_PRESETS:
        assert load_config("smoke", [f"train.deepspeed={preset}"]).train.deepspeed == preset
    assert set(DEEPSPEED_PRESETS) == {"zero2", "zero3"}
    with pytest.raises(ConfigError, match=r"search.seeds: unknown families \['pairs'\]"):
        load_config("smoke", ["search.seeds=[single, pairs]"])
    with pytest.raises(ConfigError, match=r"search.heuristics: unknown \['best'\]"):
        load_config("smoke", ["search.heuristics=[best]"])
    with pytest.raises(
        ConfigError, match=r"train.sampling: must be one of \['cycle', 'exhaust'\], got 'shuffle'"
    ):
        load_config("smoke", ["train.sampling=shuffle"])


def test_the_gate_rule_is_the_reward_sets():
    from modomodo.rewards import RewardConfigError, RewardSet, RewardSpec

    # The same set of rewards is refused by the reward set and by a domain's config.
    with pytest.raises(RewardConfigError):
        RewardSet((RewardSpec("accuracy", 2.0),), gate_on_format=True)
    with pytest.raises(ConfigError, match=r"data.domains.sci.gate_on_format"):
        load_config("smoke", ["data.domains.sci.rewards=[{name: accuracy, weight: 2}]"])
    cfg = load_config(
        "smoke", ["data.domains.sci.rewards=[{name: accuracy}]", "data.domains.sci.gate_on_format=false"]
    )
    assert not cfg.data.domains["sci"].gate_on_format
