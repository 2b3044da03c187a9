"""Stage 1, curate: every configured source into validated, split, checksummed shards."""

from __future__ import annotations

import logging
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.progress import progress_bar
from modomodo.stages.common import stage_metrics

logger = logging.getLogger(__name__)


def benchmark_names(cfg: ExperimentConfig) -> list[str]:
    from modomodo.data.synthetic import BENCHMARKS

    names = cfg.data.benchmarks or sorted(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"data.benchmarks: unknown benchmarks {unknown}; known: {sorted(BENCHMARKS)}")
    return names


def source_specs(cfg: ExperimentConfig) -> dict:
    """The curate stage's inputs: every training domain (with its test split when it is also an
    in-domain benchmark), and every out-of-domain benchmark as a test-only source."""
    from modomodo.data.sources import SourceSpec
    from modomodo.data.synthetic import BENCHMARKS

    n_test = {b: max(1, round(BENCHMARKS[b].size * cfg.data.benchmark_scale)) for b in benchmark_names(cfg)}
    specs = {}
    for name, dom in cfg.data.domains.items():
        if dom.source == "synthetic":
            specs[name] = SourceSpec("synthetic", n_train=dom.n_train, n_test=n_test.get(name, 0))
        else:
            specs[name] = SourceSpec(
                "path",
                path=dom.source,
                answer_kind=dom.answer_kind or None,
                external_images=dom.external_images,
            )
            if name in n_test:  # the synthetic test split of another dataset would be meaningless
                logger.warning(
                    "data.domains.%s reads %s: the built-in benchmark %r is not curated (a path domain "
                    "has no test split here)",
                    name,
                    dom.source,
                    name,
                )
    for name, n in n_test.items():
        if name not in specs:
            specs[name] = SourceSpec("synthetic", n_test=n)
    return specs


def curate_stage(cfg: ExperimentConfig, out_dir: Path, *, run_id: str = "data"):
    """Curate every source into ``out_dir`` (shards, quarantine, ``curation.json``)."""
    from modomodo.data.curate import curate

    metrics = stage_metrics(cfg, run_id, "curate")
    with metrics.stage_timer():
        report = curate(source_specs(cfg), out_dir, seed=cfg.data.seed)
        metrics.record_data(report.rows, {d: sum(r.values()) for d, r in report.quarantined.items()})
    return report


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
