"""Peak memory of the RL update's prompt dataset against the number of steps: the dataset that
copies every scheduled example (the way before) against the one that reads the shards by index.

    python benchmarks/rl_dataset_memory.py [--examples 1000] [--steps 100,1000,10000]
        [--prompts 16] [--iterate 1600] [--copied-max-steps 1000] [--folder DIR]

A curated folder of ``--examples`` training examples with 640x480 RGB PNG images is written once
(64 distinct images, cycled: each row still holds its own copy of the bytes). For each number of
steps the mixture schedule of ``steps x prompts`` draws is made (``cycle`` sampling: the domain
is reshuffled at each epoch), then, each in its own child process:

- ``copied``: ``read_curated`` loads the split (as ``load_curated`` did for the RL stage) and the
  dataset is built as ``schedule_dataset`` built it before: one row per draw with the image bytes,
  ``Dataset.from_list``;
- ``by index``: ``open_training_splits`` and today's ``schedule_dataset``.

Each child then reads the first ``--iterate`` rows through the dataset (prompt rendered, image
decoded), as the trainer does. Peak RSS is the child's ``VmHWM`` (see ``curation.py``). ``copied``
is not run above ``--copied-max-steps`` (it needs the images' bytes times the draws in memory).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path

from curation import peak_rss_mib, run_child  # a sibling script

SIZE = (640, 480)
DISTINCT = 64


def make_curated(folder: Path, examples: int) -> Path:
    """A curated folder with one training domain ``bench`` of ``examples`` rows (written once)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from modomodo.data.curate import curate
    from modomodo.data.sources import SourceSpec

    out = folder / f"curated-{examples}"
    if out.exists():
        return out
    rng = np.random.default_rng(0)
    images = []
    for _ in range(DISTINCT):
        pattern = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).resize(SIZE)
        noisy = np.asarray(pattern, dtype=np.int16) + rng.integers(-6, 7, (*SIZE[::-1], 3))
        buffer = io.BytesIO()
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
        images.append(buffer.getvalue())
    source = folder / f"source-{examples}.parquet"
    pq.write_table(
        pa.table(
            {
                "id": [f"bench-{i:06d}" for i in range(examples)],
                "image": [images[i % DISTINCT] for i in range(examples)],
                "problem": [f"What is in picture {i}?" for i in range(examples)],
                "solution": ["a pattern"] * examples,
            }
        ),
        source,
        row_group_size=256,
    )
    curate({"bench": SourceSpec("path", path=source, answer_kind="text")}, out, seed=0)
    source.unlink()
    return out


def copied_dataset(train, draws):
    """``schedule_dataset`` as it was: every scheduled row copied into one in-memory dataset."""
    from datasets import Dataset, Features, Image, Value
    from datasets import Sequence as HFSequence

    from modomodo.data.prompts import render_prompt

    features = Features(
        {
            "prompt": [{"role": Value("string"), "content": Value("string")}],
            "image": Image(),
            "domain": Value("string"),
            "solution": Value("string"),
            "answer_kind": Value("string"),
            "options": HFSequence(Value("string")),
            "example_id": Value("string"),
        }
    )
    rows = []
    for draw in draws:
        ex = train[draw.domain][draw.index]
        rows.append(
            {
                "prompt": [{"role": "user", "content": render_prompt(ex)}],
                "image": {"bytes": ex.image, "path": None},
                "domain": ex.domain,
                "solution": ex.solution,
                "answer_kind": ex.answer_kind,
                "options": list(ex.options),
                "example_id": ex.id,
            }
        )
    return Dataset.from_list(rows, features=features)


def child(method: str, curated: Path, steps: int, prompts: int, iterate: int) -> None:
    """One measured run: build the dataset, read ``iterate`` rows; prints seconds as JSON."""
    from modomodo.data.curate import read_curated
    from modomodo.data.curated import open_training_splits
    from modomodo.rl.grpo import schedule_dataset
    from modomodo.rl.sampler import mixture_schedule

    start = time.perf_counter()
    if method == "copied":
        train = {"bench": read_curated(curated, "bench", "train")}
    else:
        train = open_training_splits(curated)
    draws = mixture_schedule({"bench": len(train["bench"])}, {"bench": 1.0}, steps * prompts, seed=0)
    dataset = copied_dataset(train, draws) if method == "copied" else schedule_dataset(train, draws)
    built = time.perf_counter()
    pixels = 0
    for index in range(min(iterate, len(dataset))):
        row = dataset[index]
        pixels += row["image"].size[0] * row["image"].size[1] * bool(row["prompt"])
    read = time.perf_counter() - built
    print(
        json.dumps(
            {"rows": len(dataset), "build_s": built - start, "read_s": read, "peak_rss_mib": peak_rss_mib()}
        )
    )


def measure(method: str, curated: Path, steps: int, prompts: int, iterate: int) -> dict:
    command = [__file__, "--child", method, "--curated", str(curated), "--steps", str(steps)]
    return run_child([*command, "--prompts", str(prompts), "--iterate", str(iterate)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--steps", default="100,1000,10000")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--iterate", type=int, default=1600, help="rows read through the dataset")
    parser.add_argument("--copied-max-steps", type=int, default=1000)
    parser.add_argument("--folder", type=Path, default=None, help="keeps the curated folder between runs")
    parser.add_argument("--child", choices=("copied", "by index"), help=argparse.SUPPRESS)
    parser.add_argument("--curated", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.curated, int(args.steps), args.prompts, args.iterate)
        return 0
    folder = args.folder or Path(tempfile.mkdtemp(prefix="rl-dataset-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    curated = make_curated(folder, args.examples)
    image_kib = sum(p.stat().st_size for p in curated.rglob("*.parquet")) / args.examples / 1024
    print(
        f"# {args.examples} curated examples, {image_kib:.0f} KiB per row on disk; load {os.getloadavg()[0]:.2f}"
    )
    print("| dataset | steps | rows | build (s) | read rows (s) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for steps in (int(s) for s in args.steps.split(",")):
        for method in ("copied", "by index"):
            if method == "copied" and steps > args.copied_max_steps:
                print(
                    f"| {method} | {steps:,} | {steps * args.prompts:,} | not run (above --copied-max-steps) | | |"
                )
                continue
            r = measure(method, curated, steps, args.prompts, args.iterate)
            print(
                f"| {method} | {steps:,} | {r['rows']:,} | {r['build_s']:.1f} | {r['read_s']:.1f} "
                f"| {r['peak_rss_mib']:.0f} |",
                flush=True,
            )
    print(f"# rows read through each dataset: {args.iterate}; load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
