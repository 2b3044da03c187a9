"""Can the synthetic suite tell mixtures apart? GRPO from one base on each single-domain mixture and
on uniform, several seeds each, then the out-of-domain benchmarks.

    python benchmarks/mixture_sensitivity.py [--preset smoke] [--seeds 3] [--set key=value ...] [--workdir DIR] [--jobs N]

Prints each mixture's Out-Score (mean and standard deviation over seeds) next to the base policy's,
then the verdict: the spread across mixtures (max - min of the means) against the seed noise (mean of
the per-mixture standard deviations), and a one-way ANOVA of the Out-Scores over the seeds. The suite
tells mixtures apart when p < 0.01; otherwise the surrogate search has nothing to learn from.

Each policy is also scored on the out-of-domain benchmarks with every image swapped for the next
example's ("Out blind"): what a policy scores there it owes to the question and answer priors, not to
the picture. "Out seen" = Out - Out blind is the part that needs the image; mixtures that differ
there differ in a visual skill, not only in answer form. "Out form" is the share of out-of-domain
answers written in the solution's form (letter, number, word, box), right or wrong.

Every result is kept in ``--workdir`` and reused by a rerun, so an interrupted run resumes; a
workdir holds one setup (preset, overrides, suite version) and refuses another; more --seeds
add runs to it.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import os
import re
import statistics
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import scipy.stats
import torch

from modomodo import stages
from modomodo.config import ExperimentConfig, load_config
from modomodo.data.curated import load_curated
from modomodo.data.synthetic import GENERATOR_VERSION
from modomodo.evaluation.evaluate import evaluate_policy
from modomodo.policy.image_reliance import rotate_images
from modomodo.policy.load import load_policy, policy_device


def blind_out_score(cfg: ExperimentConfig, data_dir: Path, model_dir: Path, out_dir: Path) -> float:
    """Out-Score of ``model_dir`` with each out-of-domain example shown the next example's image."""
    data = load_curated(data_dir)
    ood = {b: rotate_images(exs) for b, exs in data.benchmarks.items() if data.splits[b] == "out"}
    model, processor = load_policy(model_dir, cfg.policy.dtype, policy_device())
    return evaluate_policy(model, processor, ood, data.splits, cfg.eval, out_dir).out_score


def verdict(out_scores: dict[str, list[float]], alpha: float = 0.01) -> str:
    """Do the mixtures' Out-Scores differ beyond seed noise? The spread of the means against the mean
    seed standard deviation, and a one-way ANOVA over the seeds: with three seeds a spread of two or
    three seed stds is still often chance, so the F-test's p-value is what decides."""
    means = {name: statistics.mean(outs) for name, outs in out_scores.items()}
    spread = max(means.values()) - min(means.values())
    noise = statistics.mean(statistics.stdev(outs) if len(outs) > 1 else 0.0 for outs in out_scores.values())
    ratio = f"{spread / noise:.1f}" if noise else "undefined"
    line = (
        f"spread of Out-Score means across mixtures: {spread:.3f}; mean seed std: {noise:.3f}; ratio {ratio}"
    )
    if min(len(outs) for outs in out_scores.values()) < 2:
        return line + "\none seed per mixture: no seed noise measured, no verdict"
    test = scipy.stats.f_oneway(*out_scores.values())
    if not math.isfinite(test.pvalue):  # every seed of every mixture scored the same
        return line + "\nno variance within or between mixtures: no verdict"
    told_apart = test.pvalue < alpha
    return (
        line
        + f"\none-way ANOVA over seeds: F = {test.statistic:.2f}, p = {test.pvalue:.3g}: "
        + ("the mixtures differ beyond seed noise" if told_apart else f"NOT told apart (needs p < {alpha})")
    )


_FORMS = (("letter", r"[A-H]"), ("number", r"-?\d+"), ("box", r"\[\{.*|No Objects"), ("word", r"[A-Za-z]+"))


def answer_form(text: str | None) -> str:
    """How an extracted answer is written: letter, number, box, word, or other (no answer is other)."""
    answer = (text or "").strip()
    return next((form for form, pattern in _FORMS if re.fullmatch(pattern, answer, re.DOTALL)), "other")


def form_rate(samples: Path, benchmarks: set[str]) -> float:
    """Share of the evaluation records of ``benchmarks`` whose answer has the solution's form: a policy
    that answers a number question with an option letter fails on form before it fails on content."""
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    rows = [r for r in rows if r["benchmark"] in benchmarks]
    return sum(answer_form(r["answer"]) == answer_form(r["solution"]) for r in rows) / len(rows)


def claim_workdir(work: Path, setup: dict) -> None:
    """Results are cached in ``work`` and reused, so a workdir belongs to one setup (preset, overrides,
    suite version): rerunning with another one would mix old results into the new table. More seeds
    are the same setup (run ``name-sK`` is the same run for any ``--seeds`` above K). A workdir
    without a claim is taken over, so a base trained elsewhere can be put in ``work/base``."""
    claim = work / "setup.json"
    if claim.exists():
        held = json.loads(claim.read_text())
        if held != setup:
            raise SystemExit(
                f"{work} holds results of another setup ({held}, not {setup}): use a fresh --workdir"
            )
        return
    work.mkdir(parents=True, exist_ok=True)
    claim.write_text(json.dumps(setup, indent=1, sort_keys=True))


def _blind(cfg: ExperimentConfig, data_dir: Path, model_dir: Path, run_dir: Path) -> float:
    """:func:`blind_out_score`, cached in ``run_dir/eval-blind`` like the other results."""
    cached = run_dir / "eval-blind" / "scores.json"
    if cached.exists():
        return json.loads(cached.read_text())["out_score"]
    return blind_out_score(cfg, data_dir, model_dir, run_dir / "eval-blind")


def _run(
    preset: str, overrides: list[str], work: Path, run: tuple[str, dict[str, float], int]
) -> tuple[dict, float]:
    """Train one (mixture, seed) from the base and score it; each result is kept and reused."""
    name, mixture, seed = run
    tag = f"{name}-s{seed}"
    cfg = load_config(preset, [*overrides, f"train.mixture={json.dumps(mixture)}", f"train.seed={42 + seed}"])
    summary = work / tag / "eval" / "scores.json"
    if not summary.exists():
        trained = stages.rl_stage(cfg, work / "data", work / "base" / "model", work / tag / "rl", run_id=tag)
        stages.evaluate_stage(cfg, work / "data", Path(trained.model_dir), work / tag / "eval", run_id=tag)
    scores = json.loads(summary.read_text())
    blind_out = _blind(cfg, work / "data", work / tag / "rl" / "model", work / tag)
    print(
        f"  {tag}: out {scores['out_score']:.3f} (blind {blind_out:.3f}) in {scores['in_score']:.3f}",
        flush=True,
    )
    return scores, blind_out


def question_type_scores(samples: Path, qtypes: dict[str, str]) -> dict[str, tuple[int, float, float]]:
    """Per ``benchmark/question type`` of one evaluation (``qtypes`` maps example ids to their type):
    the number of examples, the score, and the share of answers equal to the most common one. A
    share near 1 means one answer for every picture: that question type is answered from the prior,
    and no mixture can move it by what the policy sees."""
    groups: dict[str, list[dict]] = {}
    for line in samples.read_text().splitlines():
        row = json.loads(line)
        if row["id"] in qtypes:
            groups.setdefault(f"{row['benchmark']}/{qtypes[row['id']]}", []).append(row)
    table = {}
    for key, rows in sorted(groups.items()):
        top = max(Counter(str(r["answer"]) for r in rows).values())
        table[key] = (len(rows), statistics.mean(r["score"] for r in rows), top / len(rows))
    return table


def print_question_types(work: Path, runs: list[tuple[str, dict, int]], qtypes: dict[str, str]) -> None:
    """Each benchmark's question types: the base's score and answer agreement, then each mixture's
    mean score over seeds. An Out-Score that does not move can hide large moves that cancel (one
    question type up, another down), which this table shows."""
    if not qtypes:
        return
    base = question_type_scores(work / "eval-base" / "samples.jsonl", qtypes)
    per_run: dict[str, list[dict]] = {}
    for name, _, seed in runs:
        samples = work / f"{name}-s{seed}" / "eval" / "samples.jsonl"
        per_run.setdefault(name, []).append(question_type_scores(samples, qtypes))
    print(f"\n{'question type':<26}{'n':>5}{'base':>7}{'alike':>7}" + "".join(f"{n:>14}" for n in per_run))
    for key, (n, score, alike) in base.items():
        means = [statistics.mean(t[key][1] for t in tables) for tables in per_run.values()]
        print(f"{key:<26}{n:>5}{score:>7.3f}{alike:>7.2f}" + "".join(f"{m:>14.3f}" for m in means))
    print("(alike: the base's share of answers equal to its most common answer; 1.00 = one answer for all)")


def benchmark_pvalues(results: dict[str, list[dict]], benchmarks: list[str]) -> dict[str, float]:
    """One-way ANOVA over seeds of each benchmark's score: where the mixtures differ, if anywhere."""
    pvalues = {}
    for b in benchmarks:
        groups = [
            [s["score"] for r in scored for s in r["scores"] if s["benchmark"] == b]
            for scored in results.values()
        ]
        test = scipy.stats.f_oneway(*groups) if min(map(len, groups)) > 1 else None
        pvalues[b] = float(test.pvalue) if test is not None and math.isfinite(test.pvalue) else float("nan")
    return pvalues


def print_where_they_differ(work: Path, base_eval, results: dict, runs: list[tuple[str, dict, int]]) -> None:
    """Each benchmark's ANOVA p, then the question-type table (when the examples have types)."""
    every = [s.benchmark for s in base_eval.scores]
    print(
        "ANOVA p by benchmark: "
        + ", ".join(f"{b} {p:.3g}" for b, p in benchmark_pvalues(results, every).items())
    )
    data = load_curated(work / "data")
    qtypes = {e.id: e.meta["qtype"] for exs in data.benchmarks.values() for e in exs if "qtype" in e.meta}
    print_question_types(work, runs, qtypes)


def print_table(
    work: Path, base_eval, base_blind: float, results: dict, blind: dict, forms: dict, benchmarks: list[str]
) -> None:
    """One row per mixture (mean over seeds) under the base policy's: Out-Score mean and std, with
    blind images, seen minus blind, answer form rate, In-Score, and each out-of-domain benchmark."""
    ood = set(benchmarks)
    header = (
        f"{'mixture':<14}{'Out mean':>10}{'Out std':>9}{'Out blind':>10}{'Out seen':>9}{'Out form':>9}{'In mean':>9}"
        + "".join(f"{b:>11}" for b in benchmarks)
    )
    print(header)
    print(f"{'base (SFT)':<14}{base_eval.out_score:>10.3f}{'':>9}{base_blind:>10.3f}"
          f"{base_eval.out_score - base_blind:>9.3f}{form_rate(work / 'eval-base' / 'samples.jsonl', ood):>9.3f}"
          f"{base_eval.in_score:>9.3f}"
          + "".join(f"{base_eval.by_benchmark()[b]:>11.3f}" for b in benchmarks))  # fmt: skip
    for name, scored in results.items():
        outs = [r["out_score"] for r in scored]
        mean, std = statistics.mean(outs), statistics.stdev(outs) if len(outs) > 1 else 0.0
        per = {
            b: statistics.mean(s["score"] for r in scored for s in r["scores"] if s["benchmark"] == b)
            for b in benchmarks
        }
        ins = statistics.mean(r["in_score"] for r in scored)
        blind_mean = statistics.mean(blind[name])
        print(
            f"{name:<14}{mean:>10.3f}{std:>9.3f}{blind_mean:>10.3f}"
            f"{mean - blind_mean:>9.3f}{statistics.mean(forms[name]):>9.3f}{ins:>9.3f}"
            + "".join(f"{per[b]:>11.3f}" for b in benchmarks)
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (for a GPU; on CPU cores keep 1)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mixture-sensitivity-"))
    cfg = load_config(args.preset, args.overrides)
    setup = {
        "preset": args.preset,
        "overrides": args.overrides,
        "suite": GENERATOR_VERSION,
    }
    claim_workdir(work, setup)
    start = time.perf_counter()
    if not (work / "data" / "curation.json").exists():
        stages.curate_stage(cfg, work / "data")
    base = work / "base" / "model"
    if not base.exists():
        base = stages.base_policy_stage(cfg, work / "data", work / "base")
    domains = list(cfg.data.domains)
    mixtures = {f"only-{d}": {x: float(x == d) for x in domains} for d in domains}
    mixtures["uniform"] = {d: 1.0 / len(domains) for d in domains}

    base_eval = stages.evaluate_stage(cfg, work / "data", base, work / "eval-base", run_id="base")
    base_blind = _blind(cfg, work / "data", base, work / "base")
    runs = [(name, mixture, seed) for name, mixture in mixtures.items() for seed in range(args.seeds)]
    job = functools.partial(_run, args.preset, args.overrides, work)
    if args.jobs > 1:  # several runs share one GPU: tiny-model steps leave it mostly idle
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            args.jobs, context, initializer=torch.set_num_threads, initargs=(threads,)
        ) as pool:
            outcomes = list(pool.map(job, runs))
    else:
        outcomes = [job(run) for run in runs]
    benchmarks = [s.benchmark for s in base_eval.scores if s.split == "out"]
    ood = set(benchmarks)
    results: dict[str, list[dict]] = {}
    blind: dict[str, list[float]] = {}
    forms: dict[str, list[float]] = {}
    for (name, _, seed), (scores, blind_out) in zip(runs, outcomes, strict=True):
        results.setdefault(name, []).append(scores)
        blind.setdefault(name, []).append(blind_out)
        forms.setdefault(name, []).append(form_rate(work / f"{name}-s{seed}" / "eval" / "samples.jsonl", ood))

    print(f"\nMixture sensitivity: preset {args.preset}, {cfg.train.steps} GRPO steps, {args.seeds} seeds, "
          f"{time.perf_counter() - start:.0f} s in all")  # fmt: skip
    print_table(work, base_eval, base_blind, results, blind, forms, benchmarks)
    reliance = json.loads((Path(base) / "warmstart.json").read_text()).get("image_reliance", {})
    if reliance:  # a base that ignores the picture cannot learn visual skills differently per mixture
        gaps = ", ".join(f"{d} {r['gap']:+.4f}" for d, r in reliance.items())
        print(f"base image reliance (rotated - own image loss; ~0: blind): {gaps}")
    print_where_they_differ(work, base_eval, results, runs)
    print("\n" + verdict({name: [r["out_score"] for r in scored] for name, scored in results.items()}))


if __name__ == "__main__":
    main()
