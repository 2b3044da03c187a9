"""Turn examples into model inputs: chat-formatted prompts with their images, for generation and SFT.

The processor takes one flat list of images for the whole batch and gives them to the image
placeholders of the texts in order, so each example contributes its images in its own order.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import torch
from PIL import Image

from modomodo.data.prompts import to_conversation
from modomodo.data.schema import Example


def decode_images(examples: Sequence[Example]) -> list[Image.Image]:
    """Every image of ``examples``, example by example and in each example's order, as RGB."""
    return [Image.open(io.BytesIO(data)).convert("RGB") for e in examples for data in e.images]


def prompt_text(processor, example: Example) -> str:
    """The chat-templated prompt, ending with the assistant turn's opening."""
    return processor.apply_chat_template(to_conversation(example), add_generation_prompt=True, tokenize=False)


def _on(device: torch.device | str | None, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch if device is None else {k: v.to(device) for k, v in batch.items()}


def generation_batch(
    processor, examples: Sequence[Example], device: torch.device | str | None = None
) -> dict[str, torch.Tensor]:
    """Left-padded prompts + pixel values for batched ``generate``, on ``device`` (the model's)."""
    encoded = processor(
        images=decode_images(examples),
        text=[prompt_text(processor, e) for e in examples],
        return_tensors="pt",
        padding=True,
    )
    return _on(device, dict(encoded))


def sft_batch(
    processor,
    examples: Sequence[Example],
    completions: Sequence[str],
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Prompt + target completion, with labels only on the completion (and its end-of-turn token),
    on ``device`` (the model's).

    The completion is tokenised on its own and appended to the prompt's ids, so the label mask is
    exact (tokenising the joined text could merge tokens across the boundary).
    """
    tokenizer = processor.tokenizer
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.pad_token_id
    encoded = processor(
        images=decode_images(examples),
        text=[prompt_text(processor, e) for e in examples],
        return_tensors="pt",
        padding=True,
    )
    rows, labels = [], []
    for i, completion in enumerate(completions):
        prompt_ids = encoded["input_ids"][i][encoded["attention_mask"][i].bool()].tolist()
        target = tokenizer(completion, add_special_tokens=False)["input_ids"] + [eos]
        rows.append(prompt_ids + target)
        labels.append([-100] * len(prompt_ids) + target)
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    label_ids = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (row, lab) in enumerate(zip(rows, labels, strict=True)):
        input_ids[i, width - len(row) :] = torch.tensor(row)  # left padding, as in generation
        attention[i, width - len(row) :] = 1
        label_ids[i, width - len(lab) :] = torch.tensor(lab)
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention,
        "labels": label_ids,
        # M-RoPE needs the image positions; the ids were assembled here, so mark them here too.
        "mm_token_type_ids": (input_ids == processor.image_token_id).long(),
        "pixel_values": encoded["pixel_values"],
        "image_grid_thw": encoded["image_grid_thw"],
    }
    return _on(device, batch)
