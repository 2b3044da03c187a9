"""Stage 2, base policy: the tiny model (or a pretrained one) with its SFT warm-start."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.data.curated import CuratedData, load_curated
from modomodo.data.schema import Example
from modomodo.progress import progress_bar


def tokenizer_corpus(data: CuratedData) -> list[str]:
    """Text the tiny model's BPE is trained on: training prompts and targets, benchmark prompts
    (never benchmark answers)."""
    from modomodo.data.prompts import decoy_completion, reference_completion, render_prompt

    corpus = []
    for examples in data.train.values():
        corpus += [
            render_prompt(e) + "\n" + reference_completion(e) + "\n" + decoy_completion(e) for e in examples
        ]
    for examples in data.benchmarks.values():
        corpus += [render_prompt(e) for e in examples]
    return corpus


def base_policy_stage(cfg: ExperimentConfig, data_dir: Path, out_dir: Path, console=None) -> Path:
    """Build the base policy in ``out_dir``: the tiny model + SFT warm-start, or the configured
    pretrained model saved as is (optionally warm-started too)."""
    from modomodo.policy.image_reliance import image_reliance
    from modomodo.policy.load import freeze_vision_tower, load_policy, policy_device, save_policy
    from modomodo.policy.tiny import TinyModelSpec, build_tiny_model
    from modomodo.policy.warmstart import warm_start

    data = load_curated(data_dir)
    out_dir = Path(out_dir)
    source: Path | str = cfg.policy.model
    if cfg.policy.model == "tiny":
        spec = TinyModelSpec(
            hidden_size=cfg.policy.hidden_size,
            num_layers=cfg.policy.num_layers,
            vision_depth=cfg.policy.vision_depth,
            seed=cfg.sft.seed,
        )
        source = build_tiny_model(out_dir / "init", tokenizer_corpus(data), spec)
    model, processor = load_policy(source, "fp32", policy_device())
    if cfg.policy.freeze_vision:
        freeze_vision_tower(model)
    if not cfg.sft.enabled:
        save_policy(model, processor, out_dir / "model", source=source)
        return out_dir / "model"
    bar = progress_bar(console, "SFT warm-start", cfg.sft.steps)
    result = warm_start(
        model,
        processor,
        data.train,
        cfg.sft,
        out_dir / "model",
        source=source,
        on_step=(lambda step, loss: bar.update(step, f"loss {loss:.3f}")) if bar else None,
    )
    if bar:
        bar.close()
    reliance = {
        domain: image_reliance(model, processor, examples)
        for domain, examples in reliance_examples(data).items()
    }
    summary = {
        **asdict(result),
        "image_reliance": {d: {**asdict(r), "gap": r.gap} for d, r in reliance.items()},
    }
    (out_dir / "model" / "warmstart.json").write_text(json.dumps(summary, indent=2) + "\n")
    if console is not None:
        gaps = ", ".join(f"{d} {r.gap:+.3f}" for d, r in reliance.items())
        console.print(f"image reliance (loss with rotated images - with the right ones; ~0: blind): {gaps}")
    return out_dir / "model"


RELIANCE_EXAMPLES = 32
"""Examples per domain for the base policy's image-reliance check."""


def reliance_examples(data: CuratedData) -> dict[str, list[Example]]:
    """Per training domain, the examples to check image reliance on: its held-out test split when
    it is also an in-domain benchmark (same name), else its first training examples; a domain with
    fewer than two examples has no images to swap and is left out."""
    chosen = {d: (data.benchmarks.get(d) or data.train[d])[:RELIANCE_EXAMPLES] for d in sorted(data.train)}
    return {d: examples for d, examples in chosen.items() if len(examples) >= 2}
