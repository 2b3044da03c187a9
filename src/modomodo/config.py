"""Typed configs, one per stage, loaded from YAML presets and validated before any work starts.

A preset (``presets/<name>.yaml``) is one experiment. Overrides are dotted ``key=value`` pairs whose
value is parsed as YAML (``train.steps=20``, ``train.mixture={det: 0.5, sci: 0.5}``). Unknown keys,
wrong types and inconsistent values are rejected with an error that names the key.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from modomodo.data.schema import ANSWER_KINDS


class ConfigError(ValueError):
    """A config value is unknown, mistyped or inconsistent; the message names the key."""


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


@dataclass
class TrainConfig:
    """The RL update: GRPO on a mixture of the training domains."""

    mixture: dict[str, float] = field(default_factory=dict)
    """Domain -> weight on the simplex; empty means uniform over the training domains."""
    steps: int = 2000
    """Optimizer steps; every mixture gets the same budget (paper: 2000)."""
    prompts_per_step: int = 2
    """Distinct prompts per optimizer step (paper: 2)."""
    num_generations: int = 6
    """Completions per prompt, G (paper: 6)."""
    sampling: str = "cycle"
    """``cycle``: per-domain epoch cycling for a fixed budget; ``exhaust``: the paper's stop when a domain runs out."""
    beta: float = 0.04
    """KL coefficient against the reference policy (paper: 0.04)."""
    lr: float = 1e-6
    """Peak AdamW learning rate (paper: 1e-6)."""
    warmup_ratio: float = 0.1
    """Linear warm-up fraction, then linear decay to zero (paper: 10%)."""
    max_completion_length: int = 64
    """Maximum generated tokens per completion."""
    temperature: float = 1.0
    """Sampling temperature of rollouts."""
    seed: int = 42
    """Seed of the mixture sampler and of training (paper: 42)."""
    checkpoint_every: int = 500
    """Save a resumable checkpoint every N steps (also to the artifact store)."""
    deepspeed: str = ""
    """Path to a DeepSpeed JSON config, or ``zero2``/``zero3`` for the bundled ones; empty disables it."""
    logging_steps: int = 1
    """Log (and export metrics) every N steps."""


@dataclass
class EvalConfig:
    """Greedy evaluation on the benchmarks."""

    max_new_tokens: int = 64
    """Generation budget per answer."""
    batch_size: int = 32
    """Prompts decoded together."""


@dataclass
class SearchConfig:
    """The mixture search: pilots, surrogate, Optuna."""

    seeds: list[str] = field(default_factory=lambda: ["single", "exclude_one", "uniform"])
    """Seed mixture families run as pilots: ``single``, ``exclude_one``, ``uniform``."""
    heuristics: list[str] = field(default_factory=list)
    """Paper heuristics run as a second pilot wave: ``ain``, ``aout``, ``abal``, ``coli``, ``norm``."""
    target: str = "out_score"
    """Run-record column the search maximises."""
    surrogate: str = "gp"
    """Surrogate model name from the registry (``gp``, ``quadratic``, ``quadratic-paper``, ``linear``,
    ...). The Gaussian process is the default because ``benchmarks/mixture_search.py`` finds it (and
    the active loop on it) best at 16-24 pilots, also on held-out surface families
    (docs/mixture.md); the paper's model is ``quadratic-paper``."""
    top_k: int = 3
    """Mixtures proposed by the final search (the best is trained)."""
    rounds: int = 0
    """Extra active rounds (propose -> pilots) before the final search."""
    pilots_per_round: int = 2
    """Pilot mixtures proposed per active round."""
    parallelism: int = 2
    """Pilot runs at once (``dsl.ParallelFor`` parallelism)."""
    min_pilots: int = 2
    """Fewest successful pilot runs the surrogate is fitted to; failed pilots (crash, NaN) are
    recorded and skipped, and the search stops with a clear error below this count."""
    trials: int = 400
    """Optuna trials per search."""
    seed: int = 0
    """Seed of the search (Optuna sampler, bootstrap)."""
    trust_alpha: float = 0.1
    """The final search trusts the surrogate only when its leave-one-out ranking of the pilots is
    better than chance at this level (one-sided permutation test of the held-out Spearman);
    otherwise the best pilot is trained instead. 1.0 always trusts it."""
    seed_noise: float | None = None
    """Standard deviation of one run's target score across training seeds, where the pilots have
    no replicates to measure it (``benchmarks/mixture_sensitivity.py`` measures it); the report
    judges the chosen mixture's lead against it. None: unknown unless replicates exist."""


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
        """Check cross-field consistency; raises :class:`ConfigError` naming the key."""
        from modomodo.mixture.simplex import Mixture
        from modomodo.rewards import REWARDS

        if not self.data.domains:
            raise ConfigError("data.domains: at least one training domain is required")
        for name in self.data.domains:
            _plain_name("data.domains", name)
        for name in self.data.benchmarks:
            _plain_name("data.benchmarks", name)
        unknown_benchmarks = sorted(set(self.data.benchmarks) - set(_synthetic_benchmarks()))
        if unknown_benchmarks:
            raise ConfigError(
                f"data.benchmarks: unknown benchmarks {unknown_benchmarks}; known: {sorted(_synthetic_benchmarks())}"
            )
        for name, dom in self.data.domains.items():
            key = f"data.domains.{name}"
            if dom.external_images and dom.source == "synthetic":
                raise ConfigError(f"{key}.external_images: applies to path sources only")
            if dom.answer_kind and (dom.source == "synthetic" or dom.answer_kind not in ANSWER_KINDS):
                raise ConfigError(
                    f"{key}.answer_kind: {dom.answer_kind!r} must be one of {list(ANSWER_KINDS)}, "
                    "for path sources only"
                )
            if not dom.source.strip():
                raise ConfigError(f"{key}.source: empty; give 'synthetic' or a path to the rows")
            if dom.source == "synthetic" and name not in _synthetic_domains():
                raise ConfigError(
                    f"{key}: no synthetic generator named {name!r}; synthetic domains: "
                    f"{sorted(_synthetic_domains())} (or set {key}.source to a path)"
                )
            if not dom.rewards:
                raise ConfigError(f"{key}.rewards: a domain without a reward is a config error")
            names = [r.name for r in dom.rewards]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ConfigError(f"{key}.rewards: {repeated} listed more than once; give each reward once")
            for i, r in enumerate(dom.rewards):
                if r.name not in REWARDS:
                    raise ConfigError(
                        f"{key}.rewards[{i}].name: unknown reward {r.name!r}; known: {sorted(REWARDS)}"
                    )
                if not (r.weight >= 0 and r.weight < float("inf")):
                    raise ConfigError(f"{key}.rewards[{i}].weight: must be finite and >= 0, got {r.weight}")
            if dom.gate_on_format and not any(r.name == "format" for r in dom.rewards):
                raise ConfigError(f"{key}.gate_on_format: gating needs a 'format' reward in {key}.rewards")
            _positive(f"{key}.n_train", dom.n_train)
        if not 0 < self.data.benchmark_scale <= 100:
            raise ConfigError(f"data.benchmark_scale: must be in (0, 100], got {self.data.benchmark_scale}")
        if self.train.mixture:
            unknown = sorted(set(self.train.mixture) - set(self.data.domains))
            if unknown:
                raise ConfigError(
                    f"train.mixture: unknown domains {unknown}; training domains: {sorted(self.data.domains)}"
                )
            try:
                Mixture(self.train.mixture)
            except ValueError as e:
                raise ConfigError(f"train.mixture: {e}") from e
        for key in ("steps", "prompts_per_step", "checkpoint_every", "logging_steps"):
            _positive(f"train.{key}", getattr(self.train, key))
        if self.train.steps * self.train.prompts_per_step > MAX_SCHEDULED_PROMPTS:
            raise ConfigError(
                f"train.steps x train.prompts_per_step = {self.train.steps * self.train.prompts_per_step:,} "
                f"prompts, more than {MAX_SCHEDULED_PROMPTS:,} (the schedule is built in memory)"
            )
        if self.store:
            from modomodo.store import InvalidStoreUriError, parse_store_uri

            try:
                parse_store_uri(self.store)
            except InvalidStoreUriError as e:
                raise ConfigError(f"store: {e}") from None
        if self.train.num_generations < 2:
            raise ConfigError("train.num_generations: GRPO needs at least 2 completions per prompt")
        if self.train.sampling not in ("cycle", "exhaust"):
            raise ConfigError(f"train.sampling: must be 'cycle' or 'exhaust', got {self.train.sampling!r}")
        _positive("train.max_completion_length", self.train.max_completion_length)
        _in_range("train.lr", self.train.lr, low=0.0, low_open=True)
        _in_range("train.beta", self.train.beta, low=0.0)
        _in_range("train.temperature", self.train.temperature, low=0.0, low_open=True)
        _in_range("train.warmup_ratio", self.train.warmup_ratio, low=0.0, high=1.0)
        if self.train.deepspeed and self.train.deepspeed not in ("zero2", "zero3"):
            if not Path(self.train.deepspeed).is_file():
                raise ConfigError(
                    f"train.deepspeed: {self.train.deepspeed!r} is neither zero2/zero3 nor a file"
                )
        if self.policy.dtype not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"policy.dtype: must be auto, bf16 or fp32, got {self.policy.dtype!r}")
        _positive("sft.steps", self.sft.steps)
        _positive("sft.batch_size", self.sft.batch_size)
        _in_range("sft.lr", self.sft.lr, low=0.0, low_open=True)
        bad_seeds = sorted(set(self.search.seeds) - {"single", "exclude_one", "uniform"})
        if bad_seeds:
            raise ConfigError(
                f"search.seeds: unknown families {bad_seeds}; known: single, exclude_one, uniform"
            )
        bad_heuristics = sorted(set(self.search.heuristics) - {"ain", "aout", "abal", "coli", "norm"})
        if bad_heuristics:
            raise ConfigError(
                f"search.heuristics: unknown {bad_heuristics}; known: ain, aout, abal, coli, norm"
            )
        self._check_search()
        self.check_reward_kinds(_synthetic_answer_kinds(self.data.domains))
        _positive("eval.max_new_tokens", self.eval.max_new_tokens)
        _positive("eval.batch_size", self.eval.batch_size)
        return self

    def _check_search(self) -> None:
        """What the search stages would otherwise reject only after every pilot has trained."""
        from modomodo.mixture.surrogates import SURROGATES

        search = self.search
        for key in ("top_k", "pilots_per_round", "parallelism", "min_pilots", "trials"):
            _positive(f"search.{key}", getattr(search, key))
        if search.surrogate not in SURROGATES:
            raise ConfigError(f"search.surrogate: unknown {search.surrogate!r}; known: {sorted(SURROGATES)}")
        if not 0 < search.trust_alpha <= 1:
            raise ConfigError(f"search.trust_alpha: must be in (0, 1], got {search.trust_alpha}")
        if search.seed_noise is not None:
            _in_range("search.seed_noise", search.seed_noise, low=0.0)
        benchmarks = set(self.data.benchmarks or _synthetic_benchmarks()) | set(self.data.domains)
        targets = ["in_score", "out_score", *sorted(f"{b}_score" for b in benchmarks)]
        if search.target not in targets:
            raise ConfigError(
                f"search.target: {search.target!r} is not a score column; choose from {targets}"
            )
        # Which seed runs each heuristic needs (mixture.heuristics): every heuristic reads seed runs,
        # Coli needs domain sets that separate the domains, Norm an exclude-one run per domain.
        seeds, heuristics = set(search.seeds), set(search.heuristics)
        if heuristics and not seeds:
            raise ConfigError(
                "search.heuristics: the heuristics are computed from seed runs; search.seeds is empty"
            )
        if "norm" in heuristics and "exclude_one" not in seeds:
            raise ConfigError("search.heuristics: norm needs the exclude_one seed runs in search.seeds")
        if "coli" in heuristics and len(self.data.domains) > 1 and not seeds & {"single", "exclude_one"}:
            raise ConfigError("search.heuristics: coli needs single or exclude_one seed runs in search.seeds")

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


MAX_SCHEDULED_PROMPTS = 50_000_000
"""Most prompts one RL update may schedule (the paper preset schedules thousands)."""

PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
"""Domain and benchmark names: they become folder names, metric labels and store key segments."""


def _plain_name(key: str, name: object) -> None:
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name):
        raise ConfigError(
            f"{key}: name {name!r} is not a plain identifier (a letter, then up to 63 letters, digits, "
            "'_' or '-'): it names folders and metric labels"
        )


def _positive(key: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{key}: must be >= 1, got {value}")


def _in_range(key: str, value: float, *, low: float, high: float = math.inf, low_open: bool = False) -> None:
    """``low <= value < high`` (``low < value`` with ``low_open``), and never NaN or infinite."""
    if not math.isfinite(value) or value < low or (low_open and value == low) or value >= high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g})"
        raise ConfigError(f"{key}: must be a finite number in {interval}, got {value}")


def _synthetic_answer_kinds(domains: Mapping[str, DomainConfig]) -> dict[str, list[str]]:
    """The answer kind of each configured domain that the built-in suite generates."""
    from modomodo.data.synthetic import DOMAINS

    return {
        name: [DOMAINS[name].answer_kind]
        for name, dom in domains.items()
        if dom.source == "synthetic" and name in DOMAINS
    }


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


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override to a raw config mapping."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected dotted.key=value")
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
    try:
        node[parts[-1]] = yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(f"override {item!r}: the value is not valid YAML: {e}") from None


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {unknown}; allowed: {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        kt, vt = typing.get_args(tp)
        return {_coerce(kt, k, where): _coerce(vt, v, f"{where}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        # Only ``X | None`` (an optional value); other unions would make a value's meaning ambiguous.
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) != 1 or len(typing.get_args(tp)) != 2:
            raise ConfigError(f"{where}: union types other than 'X | None' are not supported in configs")
        return None if value is None else _coerce(members[0], value, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        # YAML 1.1 reads "1e-4" (no dot) as a string; accept numeric strings, reject anything else.
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected float, got str {value!r}") from None
    if tp is str and value is None:
        return ""
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value
