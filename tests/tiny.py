"""The smallest tiny Qwen2-VL the unit tests build: its tokenizer is trained on the examples' prompts
and reference completions, so it knows every word they use."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from modomodo.data.prompts import reference_completion, render_prompt
from modomodo.data.schema import Example
from modomodo.policy.tiny import TinyModelSpec, build_tiny_model

SPEC = TinyModelSpec(hidden_size=64, num_layers=1, vision_depth=1, vocab_size=400)


def build_test_model(directory: Path, examples: Sequence[Example]) -> Path:
    corpus = [render_prompt(e) + "\n" + reference_completion(e) for e in examples]
    return build_tiny_model(directory, corpus, SPEC)
