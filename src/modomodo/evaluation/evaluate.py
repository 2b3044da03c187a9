"""Greedy evaluation on benchmarks: per-benchmark scores, In/Out-Score, per-sample records.

Scores follow the paper by default: mean IoU on box benchmarks, exact-match fraction on the others;
``eval.metrics`` picks another metric of :mod:`.metrics` per benchmark (ChartQA's relaxed accuracy,
ANLS, ...), and ``scores.json`` names the metric of each benchmark. In-Score and
Out-Score are sample-count-weighted means of their benchmarks (so bigger benchmarks weigh more,
exactly as the paper's Table 2 aggregates). Decoding is pinned (greedy, fixed ``max_new_tokens``)
and recorded with the results, because the paper leaves it unreported (digest 3.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from modomodo.config import EvalConfig
from modomodo.data.schema import Example
from modomodo.evaluation.metrics import MetricError, check_metric, default_metric, get_metric, references
from modomodo.rewards import RewardContext, RewardSet, RewardSpec, extract_answer, format_reward

SPLITS = ("in", "out")


@dataclass(frozen=True)
class BenchmarkScore:
    benchmark: str
    split: str
    n: int
    score: float
    metric: str | None = None
    """The metric that scored it; None for a benchmark without samples and no configured metric."""


@dataclass(frozen=True)
class EvalResult:
    """Per-benchmark scores and the two aggregates; saved as ``scores.json``."""

    scores: list[BenchmarkScore]
    in_score: float | None
    out_score: float | None
    max_new_tokens: int

    def by_benchmark(self) -> dict[str, float]:
        return {s.benchmark: s.score for s in self.scores}

    @classmethod
    def read(cls, out_dir: Path) -> EvalResult:
        """The result :func:`evaluate_policy` saved in ``out_dir`` (read without torch: a
        pipeline step whose training process evaluated its model only reads the scores)."""
        saved = json.loads((Path(out_dir) / "scores.json").read_text())
        return cls(**{**saved, "scores": [BenchmarkScore(**s) for s in saved["scores"]]})


def scoring_rewards(answer_kind: str) -> RewardSet:
    """The metric of a benchmark: mean IoU for boxes, exact match otherwise; not gated by format,
    which is recorded separately in the per-sample records."""
    task = "iou_continuous" if answer_kind == "box" else "accuracy"
    return RewardSet((RewardSpec(task, 1.0), RewardSpec("format", 0.0)), gate_on_format=False)


def benchmark_metric(examples: Sequence[Example], configured: str | None) -> str | None:
    """The metric's name: the configured one, else the paper's for the benchmark's answer kinds."""
    if configured:
        return configured
    names = sorted({default_metric(ex.answer_kind) for ex in examples})
    return "+".join(names) or None


def score_sample(completion: str, ex: Example, metric: str | None) -> tuple[float, dict[str, float]]:
    """One completion's score and its parts (the metric's, and format with weight 0). Without a
    configured ``metric`` it is :func:`scoring_rewards` against the best of the example's references
    (the solution and any other accepted answer in ``meta["answers"]``, InfoVQA's answer lists), so
    that the score is the one the metric named in ``scores.json`` (:func:`benchmark_metric`) gives."""
    ctx = RewardContext(solution=ex.solution, answer_kind=ex.answer_kind, options=ex.options)
    if metric is None:
        results = [
            scoring_rewards(ex.answer_kind).score(completion, replace(ctx, solution=reference))
            for reference in references(ex)
        ]
        best = max(results, key=lambda result: result.total)
        return best.total, best.parts
    value = float(get_metric(metric)(completion, ex))
    return value, {metric: value, "format": format_reward(completion, ctx)}


def score_benchmark(
    name: str, split: str, examples: Sequence[Example], completions: Sequence[str], metric: str | None
) -> tuple[BenchmarkScore, list[dict]]:
    """Score a benchmark's completions with ``metric`` (None: the paper's); returns the score and
    one record per sample, as ``samples.jsonl`` holds them."""
    records = []
    for ex, completion in zip(examples, completions, strict=True):
        value, parts = score_sample(completion, ex, metric)
        records.append(
            {
                "id": ex.id,
                "benchmark": name,
                "completion": completion,
                "answer": extract_answer(completion),
                "solution": ex.solution,
                "parts": parts,
                "score": value,
            }
        )
    score = sum(r["score"] for r in records) / len(records) if records else 0.0
    return BenchmarkScore(name, split, len(records), score, benchmark_metric(examples, metric)), records


def aggregate(scores: Sequence[BenchmarkScore], split: str) -> float | None:
    chosen = [s for s in scores if s.split == split]
    total = sum(s.n for s in chosen)
    return sum(s.score * s.n for s in chosen) / total if total else None


def generate(
    model, processor, examples: Sequence[Example], max_new_tokens: int, batch_size: int
) -> list[str]:
    """Greedy completions, in the order of ``examples``."""
    # imported here: reading saved scores (EvalResult.read) needs no torch
    import torch

    from modomodo.policy.inputs import generation_batch

    model.eval()
    out: list[str] = []
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            batch = generation_batch(processor, examples[i : i + batch_size], model.device)
            ids = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
            out.extend(
                processor.batch_decode(ids[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
            )
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
    for name, metric in cfg.metrics.items():  # the config checked its benchmarks; the data may differ
        if name in benchmarks:
            try:
                check_metric(metric, {ex.answer_kind for ex in benchmarks[name]})
            except MetricError as e:
                raise MetricError(f"eval.metrics.{name}: {e} (in the curated benchmark)") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    scores: list[BenchmarkScore] = []
    with (out_dir / "samples.jsonl").open("w") as samples:
        for name in sorted(benchmarks):
            examples = list(benchmarks[name])
            completions = generate(model, processor, examples, cfg.max_new_tokens, cfg.batch_size)
            score, records = score_benchmark(name, splits[name], examples, completions, cfg.metrics.get(name))
            samples.writelines(json.dumps(r, sort_keys=True) + "\n" for r in records)
            scores.append(score)
            if on_benchmark is not None:
                on_benchmark(name, score.score)
    result = EvalResult(scores, aggregate(scores, "in"), aggregate(scores, "out"), cfg.max_new_tokens)
    (out_dir / "scores.json").write_text(json.dumps(asdict(result), indent=2, sort_keys=True) + "\n")
    return result
