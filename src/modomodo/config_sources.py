"""Data sources in the config: ``data.benchmarks`` entries, and what a path source may add
(a store key, a published layout and its box frame, preprocessing steps), checked at load.

A benchmark is a configured source like a training domain: the synthetic suite's benchmarks
(an entry without ``path`` or ``store``), a local file or folder or an ``s3://bucket/key`` object
or prefix (``path``) or a dataset stored as an artifact of the project's store (``store``), in a
published ``layout``. Its role (In- or
Out-Score) defaults to whether the training data has its ``domain``, as before benchmarks were
configurable; its metric defaults to the paper's (mean IoU for boxes, exact match otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from modomodo.config_io import ConfigError, plain_name, positive

StepList = list[dict[str, dict[str, int]]]
"""Preprocessing steps as the config holds them: ``[{sample: {size: 15000}}, {keep_with_image: {}}]``
(a bare step name in YAML, ``- keep_with_image``, is read as ``{keep_with_image: {}}``)."""
CUSTOMARY = "customary"
"""``metric: customary``: the layout's customary metric (ChartQA relaxed accuracy, ...)."""


@dataclass
class BenchmarkConfig:
    """One evaluation benchmark: where its test rows come from, how it counts and is scored."""

    path: str = ""
    """A local JSONL/Parquet file or ``save_to_disk`` folder with the test rows, or the same on S3
    (``s3://bucket/test.parquet``, ``s3://bucket/prefix`` of a folder; ``modomodo.data.s3_source``);
    empty with an empty ``store``: the synthetic suite's benchmark of the same name."""
    store: str = ""
    """Key of a dataset artifact in the experiment's store (``datasets/chartqa``), fetched with
    its checksums verified into a local cache before curation reads it; excludes ``path``."""
    layout: str = ""
    """The published layout of the rows (``chartqa``, ``mmmu``, ...; ``modomodo.data.layouts``);
    empty: Example columns or the paper's ``image, problem, solution``."""
    frame: str = ""
    """With a box layout: the frame its boxes are written in (``pixel``, ``unit``, ``qwen1000``);
    empty keeps the layout's."""
    domain: str = ""
    """The training domain it tests; empty: the benchmark's own name."""
    role: Literal["", "in", "out"] = ""
    """``in`` (In-Score) or ``out`` (Out-Score); empty: ``in`` exactly when ``data.domains`` has
    its domain."""
    metric: str = ""
    """A metric of ``modomodo.evaluation.metrics`` or ``customary`` (the layout's); empty: the
    paper's (mean IoU for boxes, exact match otherwise). ``eval.metrics`` may name it instead."""
    size: int = 0
    """Synthetic: examples to generate (0: the suite's suggested size times ``benchmark_scale``).
    Path or store: the most test rows kept (a seeded sample when the source has more; its weight in
    the sample-count-weighted In/Out-Score); 0 keeps every row."""
    steps: StepList = field(default_factory=list)
    """Preprocessing steps run on the rows before they are adapted or kept (see ``data.domains``)."""
    answer_kind: str = ""
    """Path or store without a layout: the answer kind of rows that do not name one."""
    external_images: bool = False
    """Path or store: rows may name image files outside the source's folder."""

    @property
    def synthetic(self) -> bool:
        return not self.path and not self.store

    def validate(self, name: str, domains: Mapping[str, Any], synthetic_kinds: Mapping[str, str]) -> None:
        """Check ``data.benchmarks.<name>`` against the training ``domains`` (name -> its
        ``DomainConfig``) and the suite's benchmarks (``synthetic_kinds``: name -> answer kind)."""
        key = f"data.benchmarks.{name}"
        plain_name("data.benchmarks", name)
        if self.domain:
            plain_name(f"{key}.domain", self.domain)
        if self.synthetic and name in domains and not domains[name].synthetic:
            raise ConfigError(
                f"{key}: the synthetic benchmark {name!r} is the test split of the synthetic domain, "
                f"but data.domains.{name} reads real data; give the benchmark a path or store key, or "
                "leave it out"
            )
        if self.synthetic:  # a layout without a location is refused before (unset_paths)
            if self.steps or self.frame or self.answer_kind or self.external_images:
                raise ConfigError(
                    f"{key}: steps, frame, answer_kind and external_images apply to path or store benchmarks only"
                )
        else:
            check_source(key, self.path, self.store, self.layout, self.frame, self.steps, self.answer_kind)
            if name in domains:
                raise ConfigError(
                    f"{key}: {name!r} is a training domain's name; name the benchmark otherwise and set "
                    f"{key}.domain: {name} to make it that domain's test"
                )
        if self.size:
            positive(f"{key}.size", self.size)
        if self.metric == CUSTOMARY and not self.layout:
            raise ConfigError(f"{key}.metric: 'customary' is the layout's metric, and {key} names no layout")

    def role_in(self, name: str, domains: Iterable[str]) -> str:
        """``in`` or ``out``: as configured, else whether the training data has its domain."""
        return self.role or ("in" if (self.domain or name) in set(domains) else "out")

    def metric_name(self) -> str:
        """The metric configured here (``customary`` resolved), or empty for the paper's."""
        if self.metric == CUSTOMARY:
            from modomodo.data.layouts import get_layout

            return get_layout(self.layout).metric
        return self.metric

    def answer_kinds(self, name: str, synthetic_kinds: Mapping[str, str]) -> list[str] | None:
        """The answer kinds its rows have, where the config tells (None: only the data will)."""
        if self.synthetic:
            return [synthetic_kinds[name]]
        if self.layout:
            from modomodo.data.layouts import get_layout

            return sorted(get_layout(self.layout).answer_kinds)
        return [self.answer_kind] if self.answer_kind else None


def check_source(
    key: str, path: str, store: str, layout: str, frame: str, steps: StepList, answer_kind: str
) -> None:
    """What a path or store source adds (``key`` is its config key): one location, a known layout
    and frame, a step list that can run."""
    from modomodo.data.layouts import FRAMES, LAYOUTS
    from modomodo.data.s3_source import is_s3_uri, parse_s3_uri
    from modomodo.data.source_steps import step_problem
    from modomodo.data.sources import SourceError
    from modomodo.store import InvalidKeyError, validate_key

    if path and store:
        raise ConfigError(f"{key}: give the path or the store key of the data, not both")
    if is_s3_uri(path):
        try:
            parse_s3_uri(path)
        except SourceError as e:
            raise ConfigError(f"{key}: {e}") from None
    if store:
        try:
            validate_key(store)
        except InvalidKeyError as e:
            raise ConfigError(f"{key}.store: {e}") from None
    if layout and layout not in LAYOUTS:
        raise ConfigError(f"{key}.layout: unknown layout {layout!r}; known: {sorted(LAYOUTS)}")
    if frame and (not layout or frame not in FRAMES):
        raise ConfigError(f"{key}.frame: {frame!r} needs a layout and must be one of {sorted(FRAMES)}")
    if layout and answer_kind:
        raise ConfigError(f"{key}.answer_kind: the layout {layout!r} decides the answer kind; leave it empty")
    for index, step in enumerate(steps):
        if len(step) != 1:
            raise ConfigError(
                f"{key}.steps[{index}]: one step per entry ({{name: {{params}}}}), got {sorted(step)}"
            )
    problem = step_problem([next(iter(step.items())) for step in steps])
    if problem is not None:
        raise ConfigError(f"{key}.steps[{problem[0]}]: {problem[1]}")


def refuse_multi_image_layout(key: str, layout: str) -> None:
    """A training domain (``key``) cannot read a layout whose examples have several images: the
    GRPO prompt holds one image, and the paper trains on single-image sets only."""
    from modomodo.data.layouts import LAYOUTS

    if layout in LAYOUTS and LAYOUTS[layout].multi_image:
        raise ConfigError(
            f"{key}.layout: {layout!r} gives examples with several images, and training domains take "
            "single-image examples only (as the paper's training sets); evaluate it as a benchmark "
            "(data.benchmarks) instead"
        )


def unset_paths(domains: Mapping[str, Any], benchmarks: Mapping[str, BenchmarkConfig]) -> str | None:
    """What a preset with placeholders still needs: every source that names a layout but no path
    or store key (the ``paper-real`` preset leaves them to the user), in one message."""
    unset = [
        f"data.domains.{name}: set the path of domain {name!r} (--set data.domains.{name}.source=PATH or S3 URI, "
        f"or data.domains.{name}.store=KEY for a dataset in the artifact store)"
        for name, d in domains.items()
        if d.synthetic and d.layout
    ] + [
        f"data.benchmarks.{name}: set the path of benchmark {name!r} (--set data.benchmarks.{name}.path=PATH or S3 URI, "
        f"or data.benchmarks.{name}.store=KEY)"
        for name, b in benchmarks.items()
        if b.synthetic and b.layout
    ]
    return "; ".join(unset) or None


def step_tuples(steps: StepList) -> tuple[tuple[str, dict[str, int]], ...]:
    """The config's step list as ``SourceSpec.steps`` holds it."""
    return tuple((name, dict(params)) for step in steps for name, params in step.items())


def normalise_raw(raw: dict[str, Any]) -> None:
    """Rewrite the short forms of a raw config in place, before it is typed: a list of benchmark
    names (the form before benchmarks were configurable) becomes a mapping, a bare step name a
    step without parameters."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    benchmarks = data.get("benchmarks")
    if isinstance(benchmarks, list):
        for index, item in enumerate(benchmarks):
            if not isinstance(item, str):
                raise ConfigError(f"data.benchmarks[{index}]: expected a benchmark name, got {item!r}")
        repeated = sorted({b for b in benchmarks if benchmarks.count(b) > 1})
        if repeated:
            raise ConfigError(f"data.benchmarks: {repeated} listed more than once")
        data["benchmarks"] = benchmarks = {name: {} for name in benchmarks}
    if isinstance(benchmarks, dict):  # ``chartqa:`` with nothing under it: a synthetic entry
        data["benchmarks"] = {name: {} if entry is None else entry for name, entry in benchmarks.items()}
    for section in ("domains", "benchmarks"):
        entries = data.get(section)
        for entry in entries.values() if isinstance(entries, dict) else ():
            steps = entry.get("steps") if isinstance(entry, dict) else None
            if isinstance(steps, list):
                entry["steps"] = [{step: {}} if isinstance(step, str) else step for step in steps]


def known_answer_kinds(domains: Mapping[str, Any]) -> dict[str, list[str]]:
    """The answer kinds of each configured domain that the config tells: the suite's generator,
    or a source's layout (other path sources: only their curated rows tell)."""
    from modomodo.data.layouts import get_layout
    from modomodo.data.synthetic import DOMAINS

    kinds = {
        name: [DOMAINS[name].answer_kind] for name, d in domains.items() if d.synthetic and name in DOMAINS
    }
    kinds.update({name: sorted(get_layout(d.layout).answer_kinds) for name, d in domains.items() if d.layout})
    return kinds


def synthetic_benchmark_kinds() -> dict[str, str]:
    """The synthetic suite's benchmarks, registered as sources by name, with their answer kind."""
    from modomodo.data.synthetic import BENCHMARKS

    return {name: info.answer_kind for name, info in BENCHMARKS.items()}


def synthetic_domains() -> list[str]:
    from modomodo.data.synthetic import DOMAINS

    return list(DOMAINS)
