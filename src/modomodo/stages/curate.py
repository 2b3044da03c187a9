"""Stage 1, curate: every configured source into validated, split, checksummed shards."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.progress import progress_bar
from modomodo.stages.common import stage_metrics

logger = logging.getLogger(__name__)

DATASET_CACHE_ENV = "MODOMODO_DATASET_CACHE"
"""Folder where datasets named by a store key are fetched (default ``~/.cache/modomodo/datasets``)."""


def benchmark_names(cfg: ExperimentConfig) -> list[str]:
    """Every benchmark evaluated on (``data.benchmarks``, or the synthetic suite's)."""
    return sorted(cfg.data.resolved_benchmarks())


def source_specs(cfg: ExperimentConfig, fetch: Callable[[str], Path] | None = None) -> dict:
    """The curate stage's inputs: every training domain (a synthetic one with its test split when
    it is also an in-domain benchmark), and every other benchmark as a test-only source.

    ``fetch`` turns a store key into a local folder (:func:`store_fetcher`); without it a source
    that names one is an error.
    """
    from modomodo.data.sources import SourceSpec

    benchmarks = cfg.data.resolved_benchmarks()
    specs = {}
    for name, dom in cfg.data.domains.items():
        if dom.synthetic:
            bench = benchmarks.get(name)
            n_test = _synthetic_size(cfg, name, bench.size) if bench is not None else 0
            specs[name] = SourceSpec("synthetic", n_train=dom.n_train, n_test=n_test)
        else:
            path = _located(dom.source if not dom.store else "", dom.store, fetch, f"data.domains.{name}")
            specs[name] = _path_spec(dom, path=path)
    for name, bench in benchmarks.items():
        if name in specs:
            continue
        if bench.synthetic:
            specs[name] = SourceSpec("synthetic", n_test=_synthetic_size(cfg, name, bench.size))
            continue
        test_path = _located(bench.path, bench.store, fetch, f"data.benchmarks.{name}")
        steps = [*bench.steps, *([{"at_most": {"size": bench.size}}] if bench.size else [])]
        specs[name] = _path_spec(bench, test_path=test_path, steps=steps)
    return specs


def _synthetic_size(cfg: ExperimentConfig, name: str, size: int) -> int:
    from modomodo.data.synthetic import BENCHMARKS

    return size or max(1, round(BENCHMARKS[name].size * cfg.data.benchmark_scale))


def _path_spec(source, *, steps=None, **where):
    from modomodo.config_sources import step_tuples
    from modomodo.data.sources import SourceSpec

    return SourceSpec(
        "path",
        answer_kind=source.answer_kind or None,
        external_images=source.external_images,
        layout=source.layout or None,
        frame=source.frame or None,
        steps=step_tuples(source.steps if steps is None else steps),
        **where,
    )


def _located(path: str, store: str, fetch: Callable[[str], Path] | None, key: str) -> str:
    """A source's local path: its own, or its store artifact or ``s3://`` URI fetched (a folder
    holding one Parquet or JSONL file, and no saved dataset, reads as that file)."""
    from modomodo.data.s3_source import is_s3_uri

    remote = store or (path if is_s3_uri(path) else "")
    if not remote:
        return path
    if fetch is None:
        what = f"{key}.store: {store!r} names a store artifact" if store else f"{key}: {path!r} is on S3"
        raise ValueError(f"{what}, but no store was given to fetch it")
    local = Path(fetch(remote))
    if local.is_file():
        return str(local)
    files = [p for p in local.iterdir() if p.suffix in (".parquet", ".jsonl")]
    if len(files) == 1 and not (local / "state.json").is_file():
        return str(files[0])
    return str(local)


def store_fetcher(
    store, cache_dir: str | Path | None = None, s3: dict | None = None
) -> Callable[[str], Path]:
    """Fetch store keys with :func:`~modomodo.data.layouts.fetch_dataset` into ``cache_dir``
    (default: env ``MODOMODO_DATASET_CACHE``, else ``~/.cache/modomodo/datasets``), and the
    ``s3://`` URIs of ``s3`` (URI -> :class:`~modomodo.data.s3_source.S3Source`, located) there too."""
    from modomodo.data.layouts import fetch_dataset

    cache = Path(cache_dir or os.environ.get(DATASET_CACHE_ENV) or Path.home() / ".cache/modomodo/datasets")
    located = s3 or {}
    return lambda name: located[name].fetch(cache) if name in located else fetch_dataset(store, name, cache)


def curate_stage(cfg: ExperimentConfig, out_dir: Path, *, run_id: str = "data", store=None, cache_dir=None):
    """Curate every source into ``out_dir`` (shards, quarantine, ``curation.json``). Sources that
    name a store key are fetched from ``store`` (default: the configured ``store``) first, and
    ``s3://`` sources with the S3 settings of the environment, every URI checked before any is."""
    from modomodo.data.curate import curate

    metrics = stage_metrics(cfg, run_id, "curate")
    with metrics.stage_timer():
        s3 = _located_s3(cfg)  # every URI listed before anything is fetched or written
        store = (store or _configured_store(cfg)) if _needs_store(cfg) else None
        fetch = store_fetcher(store, cache_dir, s3) if store or s3 else None
        specs = source_specs(cfg, fetch)
        report = curate(specs, out_dir, seed=cfg.data.seed, benchmarks=cfg.data.benchmark_roles())
        metrics.record_data(report.rows, {d: sum(r.values()) for d, r in report.quarantined.items()})
    return report


def _needs_store(cfg: ExperimentConfig) -> bool:
    sources = [*cfg.data.domains.values(), *cfg.data.resolved_benchmarks().values()]
    return any(s.store for s in sources)


def _located_s3(cfg: ExperimentConfig) -> dict:
    """Every ``s3://`` source of ``cfg`` listed and checked (nothing written): URI -> S3Source."""
    from modomodo.data.s3_source import is_s3_uri, locate_s3
    from modomodo.data.sources import SourceError

    uris = {dom.source: f"data.domains.{name}.source" for name, dom in cfg.data.domains.items()}
    uris |= {
        bench.path: f"data.benchmarks.{name}.path" for name, bench in cfg.data.resolved_benchmarks().items()
    }
    located = {}
    for uri, key in uris.items():
        if is_s3_uri(uri):
            try:
                located[uri] = locate_s3(uri)
            except SourceError as exc:
                raise SourceError(f"{key}: {exc}") from exc
    return located


def _configured_store(cfg: ExperimentConfig):
    from modomodo.store import ArtifactStore

    if not cfg.store:
        raise ValueError("a source names a store key, but the config sets no store (set store=URI)")
    return ArtifactStore.from_uri(cfg.store)


def generate_synthetic(cfg: ExperimentConfig, out_dir: Path, console=None) -> list[Path]:
    """Raw synthetic shards (``<out>/<name>/<split>.parquet``), uncurated: what a data source looks like."""
    from modomodo.data.shards import write_shard
    from modomodo.data.synthetic import generate

    shards = [
        (name, split, n)
        for name, spec in source_specs(cfg).items()
        if spec.kind == "synthetic"
        for split, n in (("train", spec.n_train), ("test", spec.n_test))
        if n
    ]
    bar = progress_bar(console, "generate", len(shards))
    written = []
    for name, split, n in shards:
        path = Path(out_dir) / name / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_shard(generate(name, split, n, cfg.data.seed), path)
        written.append(path)
        if bar:
            bar.update(len(written), f"{name}/{split}")
    if bar:
        bar.close()
    return written
