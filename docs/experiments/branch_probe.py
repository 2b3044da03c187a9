"""Which reading does a policy choose? P(reference) / (P(reference) + P(decoy)) of the first
rationale words ("asked colour:" against "other colours:"), per benchmark and question type.

Suite v6 only (docs/experiments/suite-v6.patch: the examples carry ``meta["decoy_rationale"]``):

    python docs/experiments/branch_probe.py WORKDIR MODEL_DIR [MODEL_DIR ...]

WORKDIR is a ``benchmarks/mixture_sensitivity.py`` workdir (its curated ``data``). Teacher-forced,
no sampling: about 10 s for four models on the 2 cores.
"""

import collections
import sys
from pathlib import Path

import torch

from modomodo.data.curated import load_curated
from modomodo.policy.inputs import sft_batch
from modomodo.policy.load import load_policy


def prefix(rationale: str) -> str:
    return "<think> " + rationale.split(":")[0] + ":"


@torch.no_grad()
def log_prob(model, processor, examples, completions) -> torch.Tensor:
    """Sum of the completions' token log-probabilities, without the end-of-turn token sft_batch adds."""
    batch = sft_batch(processor, examples, completions, model.device)
    labels = batch.pop("labels")[:, 1:]
    logits = model(**batch).logits[:, :-1].float().log_softmax(-1)
    mask = labels != -100
    last = mask.long().cumsum(1) == mask.long().sum(1, keepdim=True)
    tokens = logits.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (tokens * (mask & ~last)).sum(1)


def main() -> None:
    work, models = Path(sys.argv[1]), sys.argv[2:]
    benchmarks = load_curated(work / "data").benchmarks
    for path in models:
        model, processor = load_policy(Path(path))
        model.eval()
        print(path)
        for name, examples in sorted(benchmarks.items()):
            examples = [e for e in examples if "decoy_solution" in e.meta]
            by_type = collections.defaultdict(list)
            for i in range(0, len(examples), 32):
                chunk = examples[i : i + 32]
                right = log_prob(model, processor, chunk, [prefix(e.meta["rationale"]) for e in chunk])
                decoy = log_prob(model, processor, chunk, [prefix(e.meta["decoy_rationale"]) for e in chunk])
                for e, share, mass in zip(
                    chunk, torch.sigmoid(right - decoy), right.exp() + decoy.exp(), strict=True
                ):
                    by_type[e.meta["qtype"]].append((float(share), float(mass)))
            for qtype, values in sorted(by_type.items()):
                share = sum(v for v, _ in values) / len(values)
                mass = sum(m for _, m in values) / len(values)
                print(
                    f"  {name:10s} {qtype:13s} right reading {share:.2f} (mass of both {mass:.2f}, n={len(values)})"
                )


if __name__ == "__main__":
    main()
