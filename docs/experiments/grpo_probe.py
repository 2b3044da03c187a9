"""Does GRPO raise its own training reward? One run from a mixture_sensitivity base (issue 17 probe,
docs/synthetic-suite.md): the mean training reward and entropy per quarter of the run, then the
In/Out scores of the trained policy.

    python docs/experiments/grpo_probe.py WORKDIR NAME MIXTURE_JSON [key=value ...]

WORKDIR is a ``benchmarks/mixture_sensitivity.py`` workdir (its ``data/`` and ``base/model``); the
overrides apply to the smoke preset (give the base's own, e.g. ``sft.steps=600``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from modomodo import stages
from modomodo.config import load_config


def quarters(history: list[dict], key: str) -> list[float]:
    """Mean of ``key`` over each quarter of the logged steps."""
    values = [float(row[key]) for row in history if key in row]
    size = max(1, len(values) // 4)
    return [
        round(sum(part) / len(part), 3)
        for part in (values[i : i + size] for i in range(0, len(values), size))
    ]


def main() -> None:
    work, name, mixture, *overrides = sys.argv[1:]
    work_dir = Path(work)
    out = work_dir / "probe" / name
    cfg = load_config("smoke", [f"train.mixture={mixture}", *overrides])
    trained = stages.rl_stage(cfg, work_dir / "data", work_dir / "base" / "model", out / "rl", run_id=name)
    scores = stages.evaluate_stage(cfg, work_dir / "data", Path(trained.model_dir), out / "eval", run_id=name)
    last = max((out / "rl" / "trainer").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    history = json.loads((last / "trainer_state.json").read_text())["log_history"]
    print(
        json.dumps(
            {
                "name": name,
                "overrides": overrides,
                "reward_quarters": quarters(history, "reward"),
                "entropy_quarters": quarters(history, "entropy"),
                "out": round(scores.out_score, 3),
                "in": round(scores.in_score, 3),
                "by_benchmark": {b: round(s, 3) for b, s in scores.by_benchmark().items()},
            }
        )
    )


if __name__ == "__main__":
    main()
