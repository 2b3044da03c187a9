"""Supervised warm-start: teach a random tiny model the answer format and part of each skill.

The paper starts RL from an instruct model that already follows the ``<think>/<answer>`` format.
The tiny offline model starts random, so a short SFT on reference completions plays that role.
Stopping early on purpose leaves skills half-learned, which is what gives GRPO a signal.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from modomodo.config import SFTConfig
from modomodo.data.prompts import decoy_completion, reference_completion
from modomodo.data.schema import Example
from modomodo.policy.inputs import sft_batch
from modomodo.policy.load import save_policy


@dataclass(frozen=True)
class WarmStartResult:
    """What the warm-start did; saved next to the model as ``warmstart.json``."""

    steps: int
    first_loss: float
    last_loss: float
    seconds: float


def draw_targets(examples: Sequence[Example], rng: np.random.Generator, decoy_rate: float) -> list[str]:
    """The warm-start targets of one batch: each example's reference completion, or its decoy with
    probability ``decoy_rate`` (examples without a decoy always get the reference).

    The decoy is drawn afresh at every draw of an example: fixed per example, it would be memorised
    over the epochs, and the base would be sure (and wrong) instead of unsure.
    """
    decoyed = rng.random(len(examples)) < decoy_rate
    return [
        decoy_completion(e) if d else reference_completion(e) for e, d in zip(examples, decoyed, strict=True)
    ]


def warm_start(
    model,
    processor,
    train: Mapping[str, Sequence[Example]],
    cfg: SFTConfig,
    out_dir: Path,
    source: str | Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> WarmStartResult:
    """Train ``model`` on reference completions (or, at ``cfg.decoy_rate``, decoys) drawn uniformly
    over domains, then save it to ``out_dir``
    (``source`` is the folder the model was loaded from, so a tiny model keeps its marker)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    pool = [e for d in sorted(train) for e in train[d]]
    if not pool:
        raise ValueError("warm_start: no training examples")
    decoy_rng = np.random.default_rng([cfg.seed, 1])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    # Cosine decay to 10% so that the last steps consolidate instead of jumping around.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps))
    )
    model.train()
    start, losses = time.perf_counter(), []
    for step in range(cfg.steps):
        idx = rng.choice(len(pool), size=min(cfg.batch_size, len(pool)), replace=False)
        batch_examples = [pool[i] for i in idx]
        targets = draw_targets(batch_examples, decoy_rng, cfg.decoy_rate)
        batch = sft_batch(processor, batch_examples, targets, model.device)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1, losses[-1])
    model.eval()
    save_policy(model, processor, out_dir, source=source)
    return WarmStartResult(cfg.steps, losses[0], float(np.mean(losses[-10:])), time.perf_counter() - start)
