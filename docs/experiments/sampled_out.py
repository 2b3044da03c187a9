"""Out-Score as pass@1 averaged over k samples at temperature T, instead of one greedy answer.

Greedy decoding turns a small change of a near 50/50 choice into a whole answer flipped; the mean
over k samples follows the probabilities. Used on suite v6 (docs/synthetic-suite.md):

    python docs/experiments/sampled_out.py WORKDIR K TEMPERATURE MODEL_DIR [MODEL_DIR ...]

WORKDIR is a ``benchmarks/mixture_sensitivity.py`` workdir; one JSON line per model. About 45 s a
model for k = 8 on the 2 cores.
"""

import json
import statistics
import sys
from pathlib import Path

import torch

from modomodo.data.curated import load_curated
from modomodo.evaluation.evaluate import scoring_rewards
from modomodo.policy.inputs import generation_batch
from modomodo.policy.load import load_policy
from modomodo.rewards import RewardContext

OUT = ("chart", "gridqa", "mathcount", "mixmc")


@torch.no_grad()
def mean_scores(model, processor, examples, k: int, temperature: float) -> list[float]:
    values = []
    for i in range(0, len(examples), 24):
        chunk = examples[i : i + 24]
        batch = generation_batch(processor, chunk, model.device)
        ids = model.generate(
            **batch, max_new_tokens=64, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
            num_return_sequences=k,
        )  # fmt: skip
        texts = processor.batch_decode(ids[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
        for j, ex in enumerate(chunk):
            ctx = RewardContext(solution=ex.solution, answer_kind=ex.answer_kind, options=ex.options)
            rewards = scoring_rewards(ex.answer_kind)
            values.append(statistics.mean(rewards.score(t, ctx).total for t in texts[j * k : (j + 1) * k]))
    return values


def main() -> None:
    work, k, temperature, models = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    benchmarks = {b: list(e) for b, e in load_curated(work / "data").benchmarks.items() if b in OUT}
    sizes = {b: len(e) for b, e in benchmarks.items()}
    for path in models:
        model, processor = load_policy(Path(path))
        model.eval()
        torch.manual_seed(0)
        scores = {
            b: statistics.mean(mean_scores(model, processor, e, k, temperature))
            for b, e in benchmarks.items()
        }
        out = sum(scores[b] * sizes[b] for b in scores) / sum(sizes.values())
        print(
            json.dumps(
                {"model": path, "out": round(out, 4), "by": {b: round(v, 3) for b, v in scores.items()}}
            )
        )


if __name__ == "__main__":
    main()
