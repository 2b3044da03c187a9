"""Curation throughput and peak memory: ``modomodo.data.curate`` against a plain ``datasets.map``.

    python benchmarks/curation.py [--examples 50000] [--small N] [--workers W] [--folder DIR] [--methods curate]

A source dataset of ``--examples`` rows is generated once (kept in ``--folder``, default a temp
dir): one Parquet file with ``id, image, problem, solution``, each image a distinct 800x600 JPEG
(a smooth random pattern, about 40 KiB). Both variants do the same work on every row: decode and
check the image (``normalise_image``: header bounds, ``verify``, ``load``), resize the long side to
640 px, re-encode (a baseline JPEG that is resized stays JPEG, quality 95), and write the rows to
Parquet.

- ``curate``: the curate stage (``modomodo.data.curate.curate`` with ``resize_long_side=640``):
  rows stream from the source, ``--workers`` threads decode, shards written a row group at a time.
- ``datasets.map``: ``Dataset.from_parquet`` (into an Arrow cache), ``.map`` of the same
  ``normalise_image`` one row at a time (its defaults: one process), ``.to_parquet``.

Each run is its own child process; its peak RSS is the child's ``VmHWM`` (``/proc/self/status``,
read by the child as it ends: ``ru_maxrss`` of a forked child would also count the parent's pages
before ``exec``), its time the work alone (imports excluded), its output the bytes of every
file it wrote (shards and report, or the one Parquet file; not the ``datasets`` cache). Every variant runs at ``--examples`` and at ``--small``
(default a quarter) rows, so the table shows whether peak RSS grows with the dataset's size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIDE = (800, 600)
LONG_SIDE = 640
METHODS = ("curate", "datasets.map")


def make_source(path: Path, examples: int, seed: int = 0) -> Path:
    """``examples`` rows of distinct 800x600 JPEGs into one Parquet file (written once, streamed)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    schema = pa.schema(
        [("id", pa.string()), ("image", pa.binary()), ("problem", pa.string()), ("solution", pa.string())]
    )
    partial = path.with_name(f".{path.name}.partial")
    with pq.ParquetWriter(partial, schema) as writer:
        for start in range(0, examples, 256):
            rows = {"id": [], "image": [], "problem": [], "solution": []}
            for i in range(start, min(start + 256, examples)):
                small = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
                out = io.BytesIO()
                small.resize(SIDE, Image.Resampling.BICUBIC).save(out, format="JPEG", quality=90)
                rows["id"].append(f"row{i:07d}")
                rows["image"].append(out.getvalue())
                rows["problem"].append(f"What colour is the top left corner of picture {i}?")
                rows["solution"].append("blue")
            writer.write_table(pa.table(rows, schema=schema))
    os.replace(partial, path)
    return path


def run_curate(source: Path, out: Path, workers: int) -> int:
    from modomodo.data.curate import curate
    from modomodo.data.record_checks import CurationLimits
    from modomodo.data.sources import SourceSpec

    report = curate(
        {"bench": SourceSpec("path", path=source, answer_kind="text")},
        out,
        seed=0,
        limits=CurationLimits(resize_long_side=LONG_SIDE),
        workers=workers,
    )
    return report.rows["bench"]["train"]


def run_datasets_map(source: Path, out: Path, workers: int) -> int:
    """The plain ``datasets`` way: load, ``map`` the same normalisation, write Parquet."""
    from datasets import Dataset, disable_progress_bars

    from modomodo.data.record_checks import CurationLimits, Rejected, normalise_image

    disable_progress_bars()
    limits = CurationLimits(resize_long_side=LONG_SIDE)

    def normalise(row):
        try:
            image, _, _ = normalise_image(row["image"], limits)
        except Rejected:
            image = None
        return {"image": image}

    cache = out.with_name(out.name + "-cache")
    dataset = Dataset.from_parquet(str(source), cache_dir=str(cache))
    mapped = dataset.map(normalise, cache_file_name=str(cache / "mapped.arrow"))
    out.mkdir(parents=True)
    mapped.to_parquet(str(out / "train.parquet"))
    return len(mapped)


def child(method: str, source: Path, out: Path, workers: int) -> None:
    """One measured run (in its own process): prints rows, seconds and peak RSS as JSON."""
    run = {"curate": run_curate, "datasets.map": run_datasets_map}[method]
    start = time.perf_counter()
    rows = run(source, out, workers)
    seconds = time.perf_counter() - start
    written = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(
        json.dumps(
            {"rows": rows, "seconds": seconds, "peak_rss_mib": peak_rss_mib(), "output_bytes": written}
        )
    )


def peak_rss_mib() -> float:
    """This process's peak RSS since it started its program (``VmHWM``), in MiB."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024  # kB


def run_child(command: list[str]) -> dict:
    """Run a benchmark's ``--child`` command; the JSON it prints last."""
    done = subprocess.run([sys.executable, *command], stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(method: str, source: Path, out: Path, workers: int) -> dict:
    """Run ``method`` in a child process; its rows, seconds, peak RSS (MiB) and output bytes."""
    return run_child(
        [__file__, "--child", method, "--source", str(source), "--out", str(out), "--workers", str(workers)]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument(
        "--small", type=int, default=None, help="the second, smaller size (default: a quarter)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="curate's threads (default: the CPUs, at most 8)"
    )
    parser.add_argument("--folder", type=Path, default=None, help="keeps the generated sources between runs")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        help="which variants to run (default both)",
    )
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from modomodo.data.streaming import default_workers

    workers = args.workers or default_workers()
    if args.child:
        child(args.child, args.source, args.out, workers)
        return 0
    folder = args.folder or Path(tempfile.mkdtemp(prefix="curation-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [args.small or max(1, args.examples // 4), args.examples]
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, curate workers {workers}")
    print("| method | examples | seconds | images/s | peak RSS (MiB) | output (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for size in sizes:
        source = make_source(folder / f"source-{size}.parquet", size)
        for method in args.methods:
            with tempfile.TemporaryDirectory(dir=folder) as work:
                result = measure(method, source, Path(work) / "out", workers)
            assert result["rows"] == size, result
            print(
                f"| {method} | {size:,} | {result['seconds']:.1f} | {size / result['seconds']:.1f} "
                f"| {result['peak_rss_mib']:.0f} | {result['output_bytes'] / 2**20:.1f} |",
                flush=True,
            )
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
