"""Greedy evaluation on benchmarks: per-benchmark scores, In/Out-Score, per-sample records.

Scores follow the paper: mean IoU on box benchmarks, exact-match fraction on the others. In-Score and
Out-Score are sample-count-weighted means of their benchmarks (so bigger benchmarks weigh more,
exactly as the paper's Table 2 aggregates). Decoding is pinned (greedy, fixed ``max_new_tokens``)
and recorded with the results, because the paper leaves it unreported (digest 3.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from modomodo.config import EvalConfig
from modomodo.data.schema import Example
from modomodo.policy.inputs import generation_batch
from modomodo.rewards import RewardContext, RewardSet, RewardSpec, extract_answer

SPLITS = ("in", "out")


@dataclass(frozen=True)
class BenchmarkScore:
    benchmark: str
    split: str
    n: int
    score: float


@dataclass(frozen=True)
class EvalResult:
    """Per-benchmark scores and the two aggregates; saved as ``scores.json``."""

    scores: list[BenchmarkScore]
    in_score: float | None
    out_score: float | None
    max_new_tokens: int

    def by_benchmark(self) -> dict[str, float]:
        return {s.benchmark: s.score for s in self.scores}


def scoring_rewards(answer_kind: str) -> RewardSet:
    """The metric of a benchmark: mean IoU for boxes, exact match otherwise; not gated by format,
    which is recorded separately in the per-sample records."""
    task = "iou_continuous" if answer_kind == "box" else "accuracy"
    return RewardSet((RewardSpec(task, 1.0), RewardSpec("format", 0.0)), gate_on_format=False)


def aggregate(scores: Sequence[BenchmarkScore], split: str) -> float | None:
    chosen = [s for s in scores if s.split == split]
    total = sum(s.n for s in chosen)
    return sum(s.score * s.n for s in chosen) / total if total else None


@torch.no_grad()
def generate(
    model, processor, examples: Sequence[Example], max_new_tokens: int, batch_size: int
) -> list[str]:
    """Greedy completions, in the order of ``examples``."""
    model.eval()
    out: list[str] = []
    for i in range(0, len(examples), batch_size):
        batch = generation_batch(processor, examples[i : i + batch_size], model.device)
        ids = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
        out.extend(processor.batch_decode(ids[:, batch["input_ids"].shape[1] :], skip_special_tokens=True))
    return out


def evaluate_policy(
    model,
    processor,
    benchmarks: Mapping[str, Sequence[Example]],
    splits: Mapping[str, str],
    cfg: EvalConfig,
    out_dir: Path,
    on_benchmark: Callable[[str, float], None] | None = None,
) -> EvalResult:
    """Evaluate on every benchmark; writes ``scores.json`` and ``samples.jsonl`` into ``out_dir``."""
    unknown = sorted(set(benchmarks) - set(splits))
    if unknown:
        raise ValueError(f"benchmarks without an in/out split: {unknown}")
    out_dir.mkdir(parents=True, exist_ok=True)
    scores: list[BenchmarkScore] = []
    with (out_dir / "samples.jsonl").open("w") as samples:
        for name in sorted(benchmarks):
            examples = list(benchmarks[name])
            completions = generate(model, processor, examples, cfg.max_new_tokens, cfg.batch_size)
            values = []
            for ex, completion in zip(examples, completions, strict=True):
                result = scoring_rewards(ex.answer_kind).score(
                    completion,
                    RewardContext(solution=ex.solution, answer_kind=ex.answer_kind, options=ex.options),
                )
                value = result.total
                values.append(value)
                record = {
                    "id": ex.id,
                    "benchmark": name,
                    "completion": completion,
                    "answer": extract_answer(completion),
                    "solution": ex.solution,
                    "parts": result.parts,
                    "score": value,
                }
                samples.write(json.dumps(record, sort_keys=True) + "\n")
            score = sum(values) / len(values) if values else 0.0
            scores.append(BenchmarkScore(name, splits[name], len(values), score))
            if on_benchmark is not None:
                on_benchmark(name, score)
    result = EvalResult(scores, aggregate(scores, "in"), aggregate(scores, "out"), cfg.max_new_tokens)
    (out_dir / "scores.json").write_text(json.dumps(asdict(result), indent=2, sort_keys=True) + "\n")
    return result
