"""Does a policy read the image? Its loss on reference completions with each example's own image
against the same examples with the images rotated by one (example i gets image i+1).

A policy that answers from the text alone (the question, answer priors) scores the same on both;
one that reads the picture does worse on the wrong pictures. A tiny model can learn the format and
the answer forms of every domain without ever looking (measured, docs/synthetic-suite.md), and
then GRPO has nothing visual to improve: this is the check that catches it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from modomodo.data.prompts import reference_completion
from modomodo.data.schema import Example
from modomodo.policy.inputs import sft_batch


@dataclass(frozen=True)
class ImageReliance:
    """Mean token loss on reference completions, with the right and with the wrong images."""

    own_image_loss: float
    rotated_image_loss: float
    examples: int

    @property
    def gap(self) -> float:
        """How much the wrong image hurts; about 0 for a policy that ignores the image."""
        return self.rotated_image_loss - self.own_image_loss


def rotate_images(examples: Sequence[Example]) -> list[Example]:
    """Each example with the next one's image (the last gets the first's)."""
    images = [e.image for e in examples]
    return [dataclasses.replace(e, image=images[(i + 1) % len(images)]) for i, e in enumerate(examples)]


@torch.no_grad()
def image_reliance(model, processor, examples: Sequence[Example], batch_size: int = 32) -> ImageReliance:
    """Measure :class:`ImageReliance` on ``examples`` (at least two, with distinct images)."""
    if len(examples) < 2:
        raise ValueError("image_reliance: needs at least two examples to swap their images")
    completions = [reference_completion(e) for e in examples]
    was_training = model.training
    model.eval()
    totals = {"own": 0.0, "rotated": 0.0}
    tokens = 0
    rotated = rotate_images(examples)
    for start in range(0, len(examples), batch_size):
        stop = start + batch_size
        for name, chunk in (("own", examples[start:stop]), ("rotated", rotated[start:stop])):
            batch = sft_batch(processor, chunk, completions[start:stop], model.device)
            count = int((batch["labels"][:, 1:] != -100).sum())
            totals[name] += model(**batch).loss.item() * count
        tokens += count
    model.train(was_training)
    return ImageReliance(totals["own"] / tokens, totals["rotated"] / tokens, len(examples))
