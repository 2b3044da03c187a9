"""Typed configs, one per stage, loaded from YAML presets and validated before any work starts.

A preset (``presets/<name>.yaml``) is one experiment. Overrides are dotted ``key=value`` pairs whose
value is parsed as YAML (``train.steps=20``, ``train.mixture={det: 0.5, sci: 0.5}``). Unknown keys,
wrong types and inconsistent values are rejected with an error that names the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from modomodo.config_io import (
    ConfigError,
    apply_override,
    from_dict,
    in_range,
    plain_name,
    positive,
)
from modomodo.config_search import SearchConfig
from modomodo.config_train import TrainConfig
from modomodo.data.schema import ANSWER_KINDS


@dataclass
class RewardConfig:
    """One weighted reward of a domain (the name is looked up in the reward registry)."""

    name: str
    """Registered reward name: ``format``, ``accuracy``, ``iou_continuous``, ``iou_visual_rft``, ..."""
    weight: float = 1.0
    """Weight in the domain's total reward (paper: accuracy and IoU 2, format 1)."""


@dataclass
class DomainConfig:
    """A training domain: where its data comes from and how its completions are rewarded."""

    source: str = "synthetic"
    """``synthetic`` (built-in generator of the same name) or a path to JSONL/Parquet/``save_to_disk`` records."""
    n_train: int = 256
    """Training examples to draw from a synthetic source."""
    rewards: list[RewardConfig] = field(default_factory=list)
    """The domain's verifiable rewards; a domain without rewards is a config error."""
    gate_on_format: bool = True
    """Format failure zeroes the domain's other rewards, as the paper states."""
    answer_kind: str = ""
    """Path sources: the answer kind (``box``, ``mc`` or ``text``) of rows that do not name one;
    empty infers it per row."""
    external_images: bool = False
    """Path sources: let a row's ``image_path`` (or a Parquet/dataset image's ``path``) point outside
    the source's folder, absolute paths included. Off, such a row is quarantined: a data file must
    not make curation read arbitrary files of the machine."""

    def validate(self, name: str) -> None:
        """Check the domain ``name`` (``data.domains.<name>``): its source and its rewards."""
        key = f"data.domains.{name}"
        if self.external_images and self.source == "synthetic":
            raise ConfigError(f"{key}.external_images: applies to path sources only")
        if self.answer_kind and (self.source == "synthetic" or self.answer_kind not in ANSWER_KINDS):
            raise ConfigError(
                f"{key}.answer_kind: {self.answer_kind!r} must be one of {list(ANSWER_KINDS)}, "
                "for path sources only"
            )
        if not self.source.strip():
            raise ConfigError(f"{key}.source: empty; give 'synthetic' or a path to the rows")
        if self.source == "synthetic" and name not in _synthetic_domains():
            raise ConfigError(
                f"{key}: no synthetic generator named {name!r}; synthetic domains: "
                f"{sorted(_synthetic_domains())} (or set {key}.source to a path)"
            )
        self._validate_rewards(key)
        positive(f"{key}.n_train", self.n_train)

    def _validate_rewards(self, key: str) -> None:
        from modomodo.rewards import REWARDS
        from modomodo.rewards.reward_set import gate_lacks_format

        if not self.rewards:
            raise ConfigError(f"{key}.rewards: a domain without a reward is a config error")
        names = [r.name for r in self.rewards]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"{key}.rewards: {repeated} listed more than once; give each reward once")
        for i, r in enumerate(self.rewards):
            if r.name not in REWARDS:
                raise ConfigError(
                    f"{key}.rewards[{i}].name: unknown reward {r.name!r}; known: {sorted(REWARDS)}"
                )
            if not (r.weight >= 0 and r.weight < float("inf")):
                raise ConfigError(f"{key}.rewards[{i}].weight: must be finite and >= 0, got {r.weight}")
        if gate_lacks_format(names, self.gate_on_format):
            raise ConfigError(f"{key}.gate_on_format: gating needs a 'format' reward in {key}.rewards")


@dataclass
class DataConfig:
    """The curate stage: training domains and evaluation benchmarks."""

    domains: dict[str, DomainConfig] = field(default_factory=dict)
    """Training domains by name."""
    benchmarks: list[str] = field(default_factory=list)
    """Benchmarks to evaluate on (names from the synthetic suite); each is in- or out-of-domain."""
    benchmark_scale: float = 1.0
    """Multiplier of each benchmark's suggested size (a tenth of its paper counterpart, so that
    sample-count-weighted In/Out-Scores weigh benchmarks as the paper does)."""
    seed: int = 0
    """Seed of the synthetic generators; the same seed gives byte-identical shards."""

    def validate(self) -> None:
        if not self.domains:
            raise ConfigError("data.domains: at least one training domain is required")
        for name in self.domains:
            plain_name("data.domains", name)
        for name in self.benchmarks:
            plain_name("data.benchmarks", name)
        unknown_benchmarks = sorted(set(self.benchmarks) - set(_synthetic_benchmarks()))
        if unknown_benchmarks:
            raise ConfigError(
                f"data.benchmarks: unknown benchmarks {unknown_benchmarks}; known: {sorted(_synthetic_benchmarks())}"
            )
        for name, domain in self.domains.items():
            domain.validate(name)
        if not 0 < self.benchmark_scale <= 100:
            raise ConfigError(f"data.benchmark_scale: must be in (0, 100], got {self.benchmark_scale}")


@dataclass
class PolicyConfig:
    """The model being trained."""

    model: str = "tiny"
    """``tiny`` (build the offline tiny Qwen2-VL), a hub id such as ``Qwen/Qwen2-VL-2B-Instruct``, or a local path."""
    hidden_size: int = 128
    """Tiny model only: language model width."""
    num_layers: int = 2
    """Tiny model only: language model layers."""
    vision_depth: int = 2
    """Tiny model only: vision tower layers."""
    freeze_vision: bool = True
    """Freeze the vision tower during the SFT warm-start and RL (the paper updates only the LLM). A
    random tiny vision tower trained jointly collapses to an image-independent constant (measured,
    docs/synthetic-suite.md); frozen, its random features keep the picture."""
    dtype: str = "auto"
    """``auto`` (bf16 on a GPU that supports it, else fp32), ``bf16`` or ``fp32``."""

    def validate(self) -> None:
        if self.dtype not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"policy.dtype: must be auto, bf16 or fp32, got {self.dtype!r}")


@dataclass
class SFTConfig:
    """Supervised warm-start that turns a random tiny model into a format-following base policy."""

    enabled: bool = True
    """Run the warm-start (off for a pretrained instruct model)."""
    steps: int = 400
    """Optimizer steps; stopping early leaves partial skill for RL to improve."""
    batch_size: int = 32
    """Examples per step, drawn uniformly over the training domains."""
    lr: float = 3e-4
    """AdamW learning rate. With the tiny model's vision tower trainable, 1e-3 collapsed it to a
    constant; with it frozen (``policy.freeze_vision``), a hidden-256 tiny model learned to read
    the image at 1e-3 (docs/synthetic-suite.md)."""
    seed: int = 0
    """Seed of data order and dropout."""

    def validate(self) -> None:
        positive("sft.steps", self.steps)
        positive("sft.batch_size", self.batch_size)
        in_range("sft.lr", self.lr, low=0.0, low_open=True)


@dataclass
class EvalConfig:
    """Greedy evaluation on the benchmarks."""

    max_new_tokens: int = 64
    """Generation budget per answer."""
    batch_size: int = 32
    """Prompts decoded together."""
    metrics: dict[str, str] = field(default_factory=dict)
    """Metric per benchmark (a name from ``evaluation.metrics.METRICS``, e.g. ``{chart:
    relaxed_accuracy}``); a benchmark not listed gets the paper's: mean IoU for boxes, exact match
    otherwise."""

    def validate(self, benchmark_kinds: Mapping[str, Iterable[str]]) -> None:
        """``benchmark_kinds``: the answer kinds of each configured benchmark."""
        from modomodo.evaluation.metrics import MetricError, check_metric

        positive("eval.max_new_tokens", self.max_new_tokens)
        positive("eval.batch_size", self.batch_size)
        for name, metric in self.metrics.items():
            if name not in benchmark_kinds:
                raise ConfigError(
                    f"eval.metrics.{name}: benchmark {name!r} is not configured; "
                    f"configured: {sorted(benchmark_kinds)}"
                )
            try:
                check_metric(metric, benchmark_kinds[name])
            except MetricError as e:
                raise ConfigError(f"eval.metrics.{name}: {e}") from None


@dataclass
class ExperimentConfig:
    """One experiment: every stage's settings, the store and the metrics sink."""

    name: str = "experiment"
    """Preset name; also the default run name prefix."""
    data: DataConfig = field(default_factory=DataConfig)
    """Curate stage."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Model to train."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    """Warm-start stage."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """RL update stage."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation stage."""
    search: SearchConfig = field(default_factory=SearchConfig)
    """Mixture search (pipeline ``mixture-search``)."""
    store: str = ""
    """Artifact store URI (``file://...`` or ``s3://bucket/prefix``); empty means ``<workdir>/artifacts``."""
    pushgateway: str = ""
    """Prometheus Pushgateway URL; empty means env ``MODOMODO_PUSHGATEWAY`` or no push."""

    def validate(self) -> ExperimentConfig:
        """Check every section next to its fields, then what spans sections; raises
        :class:`ConfigError` naming the key."""
        self.data.validate()
        self.train.validate(self.data.domains)
        if self.store:
            from modomodo.store import InvalidStoreUriError, parse_store_uri

            try:
                parse_store_uri(self.store)
            except InvalidStoreUriError as e:
                raise ConfigError(f"store: {e}") from None
        self.policy.validate()
        self.sft.validate()
        self.search.validate(self.data.domains, self.data.benchmarks or _synthetic_benchmarks())
        self.check_reward_kinds(_synthetic_answer_kinds(self.data.domains))
        self.eval.validate(_synthetic_benchmark_kinds(self.data.benchmarks or _synthetic_benchmarks()))
        return self

    def check_reward_kinds(self, kinds: Mapping[str, Iterable[str]]) -> None:
        """Every reward of a domain can score the answer kinds ``kinds[domain]`` that domain has."""
        from modomodo.rewards import unscorable_kinds

        for name, domain_kinds in kinds.items():
            for i, reward in enumerate(self.data.domains[name].rewards):
                bad = unscorable_kinds(reward.name, domain_kinds)
                if bad:
                    raise ConfigError(
                        f"data.domains.{name}.rewards[{i}].name: {reward.name!r} cannot score "
                        f"{', '.join(bad)} answers, which domain {name!r} has"
                    )

    def resolved_mixture(self) -> dict[str, float]:
        """The training mixture, uniform over the domains when none is given."""
        if self.train.mixture:
            return {d: float(self.train.mixture.get(d, 0.0)) for d in self.data.domains}
        return {d: 1.0 / len(self.data.domains) for d in self.data.domains}

    def to_dict(self) -> dict[str, Any]:
        """Plain data; unset optional values (None) are left out, since a KFP parameter cannot
        hold a null and a missing key reads back as the same default."""
        return dataclasses.asdict(self, dict_factory=lambda items: {k: v for k, v in items if v is not None})


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Rebuild and validate a config serialised with :meth:`ExperimentConfig.to_dict` (components do this)."""
    return from_dict(ExperimentConfig, data).validate()


def _synthetic_answer_kinds(domains: Mapping[str, DomainConfig]) -> dict[str, list[str]]:
    """The answer kind of each configured domain that the built-in suite generates."""
    from modomodo.data.synthetic import DOMAINS

    return {
        name: [DOMAINS[name].answer_kind]
        for name, dom in domains.items()
        if dom.source == "synthetic" and name in DOMAINS
    }


def _synthetic_benchmark_kinds(names: Iterable[str]) -> dict[str, list[str]]:
    """The answer kind of each named benchmark of the built-in suite (the only benchmarks today)."""
    from modomodo.data.synthetic import BENCHMARKS

    return {name: [BENCHMARKS[name].answer_kind] for name in names}


def _synthetic_domains() -> list[str]:
    from modomodo.data.synthetic import DOMAINS

    return list(DOMAINS)


def _synthetic_benchmarks() -> list[str]:
    from modomodo.data.synthetic import BENCHMARKS

    return list(BENCHMARKS)


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files("modomodo.presets").iterdir()
        if p.name.endswith(".yaml")
    )


def load_config(preset: str = "smoke", overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a preset (a name from ``presets/`` or a YAML path), apply overrides and validate."""
    path = Path(preset)
    try:
        if path.suffix in (".yaml", ".yml") and path.is_file():
            text = path.read_text(encoding="utf-8")
        else:
            candidate = resources.files("modomodo.presets").joinpath(f"{preset}.yaml")
            if not candidate.is_file():
                raise ConfigError(
                    f"preset {preset!r}: no such preset or YAML file; presets: {preset_names()}"
                )
            text = candidate.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"preset {preset!r}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:  # syntax errors, and tags such as !!python/object that safe_load refuses
        raise ConfigError(f"preset {preset!r}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"preset {preset!r}: the top level must be a mapping")
    for item in overrides or []:
        apply_override(raw, item)
    return from_dict(ExperimentConfig, raw).validate()
