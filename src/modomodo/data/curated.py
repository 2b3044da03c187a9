"""A curated dataset read back from its folder: training splits and benchmark test splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modomodo.data.schema import Example
from modomodo.data.shards import ShardRows


def load_curated(data_dir: Path, benchmarks: list[str] | None = None) -> CuratedData:
    """Training splits of the training domains and test splits of the benchmarks, checksums verified.

    Each benchmark counts towards the In- or Out-Score as ``curation.json`` records its role (by
    default: in when the data trains on its domain; ``ref`` left out of ``data.domains`` is an
    out-of-domain test of the rest).
    """
    from modomodo.data.curate import CurationReport, read_curated
    from modomodo.data.synthetic import BENCHMARKS

    report = CurationReport.load(data_dir)
    train = {
        d: read_curated(data_dir, d, "train") for d in sorted(report.rows) if report.rows[d].get("train")
    }
    if report.benchmarks is not None:  # the roles the config gave
        roles = {b: r for b, r in report.benchmarks.items() if not benchmarks or b in benchmarks}
    else:  # a /1 report: the suite's benchmarks, in when trained on
        names = benchmarks or [
            b for b in sorted(report.rows) if b in BENCHMARKS and report.rows[b].get("test")
        ]
        roles = {b: "in" if b in train else "out" for b in names}
    return CuratedData(
        train=train,
        benchmarks={b: read_curated(data_dir, b, "test") for b in sorted(roles)},
        splits=dict(sorted(roles.items())),
    )


def open_training_splits(data_dir: Path) -> dict[str, ShardRows]:
    """The training splits of :func:`load_curated`, read by index from the shards instead of loaded
    (checksums verified): the RL update draws from them without holding every image in memory."""
    from modomodo.data.curate import CurationReport, open_curated

    report = CurationReport.load(data_dir)
    return {d: open_curated(data_dir, d, "train") for d in sorted(report.rows) if report.rows[d].get("train")}


@dataclass(frozen=True)
class CuratedData:
    """A curated dataset read back from its folder."""

    train: dict[str, list[Example]]
    benchmarks: dict[str, list[Example]]
    splits: dict[str, str]
    """Benchmark -> ``in`` or ``out``."""
