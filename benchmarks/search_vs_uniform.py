"""Does the searched mixture beat uniform? The whole main job on several training seeds.

    python benchmarks/search_vs_uniform.py [--preset smoke] [--seeds 42 43 44] [--set key=value ...] [--workdir DIR]

For each seed the main job (``modomodo run``, the mixture-search pipeline on kfp's local runner)
runs with ``train.seed`` and ``search.seed`` set to it; its report compares the chosen mixture's
final run with the uniform pilot, which trains with the same settings and the same seed. The
curated data and the base policy do not depend on the seed: the runs share one pipeline root with
kfp's cache on, so they are built once.

Prints one row per seed (the chosen mixture, the path the search took, the chosen and the uniform
Out-Score, their difference, the surrogate's leave-one-out R²) and the verdict of issue 17: the
chosen mixture beats uniform on every seed, and on average by more than twice the seed standard
deviation of the uniform Out-Score. Each seed's report is kept in ``--workdir`` (``seed-<n>.json``)
and reused by a rerun, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_seed(preset: str, seed: int, overrides: list[str], workdir: Path) -> dict:
    """The report of the main job on ``seed`` (run now, or the one kept from an earlier run)."""
    kept = workdir / f"seed-{seed}.json"
    if kept.is_file():
        return json.loads(kept.read_text())
    sets = [*overrides, f"train.seed={seed}", f"search.seed={seed}"]
    # the console script's entry point, so that this does not depend on where the CLI module lives
    main = "import sys; from modomodo.cli import main; sys.argv[0] = 'modomodo'; main()"
    command = [sys.executable, "-c", main, "run", "--preset", preset, "--output", str(workdir / "run")]
    command += ["--cache", *(arg for item in sets for arg in ("--set", item))]
    log = workdir / f"seed-{seed}.log"
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"seed {seed}: the main job failed (exit {done.returncode}); see {log}")
    report = json.loads((workdir / "run" / "report.json").read_text())
    report["wall_s"] = round(time.monotonic() - started, 1)
    kept.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def row(seed: int, report: dict) -> dict:
    summary, surrogate = report["summary"], report.get("surrogate") or {}
    target = summary["target"]
    if "uniform" not in summary:
        raise SystemExit(f"seed {seed}: the search ran no uniform pilot (search.seeds needs 'uniform')")
    chosen, uniform = summary["chosen"]["scores"][target], summary["uniform"]["scores"][target]
    model = surrogate.get("model")
    return {
        "seed": seed,
        "mixture": summary["chosen"]["mixture"],
        "path": (summary.get("decision") or {}).get("path", "surrogate"),
        "chosen": chosen,
        "uniform": uniform,
        "delta": chosen - uniform,
        "cv_r2": (surrogate.get("cv") or {}).get(model, {}).get("r2"),
        "wall_s": report.get("wall_s"),
    }


def verdict(rows: list[dict]) -> tuple[bool, str]:
    """Issue 17's claim: a win on every seed, and a mean lead above twice the seed std of uniform."""
    deltas = [r["delta"] for r in rows]
    noise = statistics.stdev(r["uniform"] for r in rows) if len(rows) > 1 else float("nan")
    mean = statistics.mean(deltas)
    holds = all(d > 0 for d in deltas) and len(rows) >= 3 and mean > 2 * noise
    text = (
        f"chosen - uniform: mean {mean:+.4f} over {len(rows)} seeds ({sum(d > 0 for d in deltas)} wins); "
        f"seed std of uniform {noise:.4f} (2x = {2 * noise:.4f}): "
        + ("the chosen mixture beats uniform beyond seed noise" if holds else "NOT shown")
    )
    return holds, text


def table(rows: list[dict]) -> str:
    lines = [
        "| seed | chosen mixture | path | chosen Out | uniform Out | chosen - uniform | surrogate CV R² | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mixture = ", ".join(f"{d} {w:.2f}" for d, w in sorted(r["mixture"].items()) if w >= 0.005)
        r2 = "" if r["cv_r2"] is None else f"{r['cv_r2']:.2f}"
        lines.append(
            f"| {r['seed']} | {mixture} | {r['path']} | {r['chosen']:.3f} | {r['uniform']:.3f} | "
            f"{r['delta']:+.3f} | {r2} | {r['wall_s']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="search-vs-uniform-"))
    workdir.mkdir(parents=True, exist_ok=True)
    setup = {"preset": args.preset, "overrides": args.overrides}
    kept = workdir / "setup.json"
    if kept.is_file() and json.loads(kept.read_text()) != setup:
        raise SystemExit(
            f"{workdir} holds runs of another setup ({kept.read_text().strip()}); use a new --workdir"
        )
    kept.write_text(json.dumps(setup) + "\n")
    rows = [row(seed, run_seed(args.preset, seed, args.overrides, workdir)) for seed in args.seeds]
    print(f"preset {args.preset}, overrides {args.overrides or 'none'}, workdir {workdir}\n")
    print(table(rows))
    holds, text = verdict(rows)
    print(f"\n{text}")
    return 0 if holds else 1


if __name__ == "__main__":
    raise SystemExit(main())
