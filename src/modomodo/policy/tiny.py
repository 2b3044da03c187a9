"""A tiny, randomly initialised Qwen2-VL built entirely offline.

It has the real architecture (vision tower, patch merger, M-RoPE language model), so every code path
that a ``Qwen/Qwen2-VL-2B-Instruct`` run takes on a cluster is exercised here on CPU. The tokenizer is
a byte-level BPE trained in under a second on the synthetic suite's own text plus the prompt templates,
with Qwen's special tokens, so completions can be decoded and rewarded like a real model's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import (
    PreTrainedTokenizerFast,
    ProcessorMixin,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

TINY_MARKER = "modomodo_tiny.json"
"""File that marks a folder as a tiny model built here; the loader then uses :class:`TinyQwen2VLProcessor`."""

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2-VL's chat template, reduced to text + image parts (no video, no tools). The default system
# prompt is kept because the paper's lineage runs without a custom one (digest 2.2).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class TinyQwen2VLProcessor(ProcessorMixin):
    """Qwen2-VL processor without the video slot.

    The stock ``Qwen2VLProcessor`` requires a video processor, which needs torchvision; the CPU
    stack here cannot import torchvision beside torch 2.13. Images are all this project feeds.
    """

    attributes = ["image_processor", "tokenizer"]
    image_processor_class = "AutoImageProcessor"
    tokenizer_class = "AutoTokenizer"

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = "<|image_pad|>"
        self.video_token = "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        super().__init__(image_processor, tokenizer, chat_template=chat_template)

    def __call__(self, images=None, text=None, **kwargs):
        if isinstance(text, str):
            text = [text]
        text = list(text) if text is not None else []
        image_inputs = {}
        if images is not None:
            image_inputs = self.image_processor(images=images, return_tensors="pt")
            merge = self.image_processor.merge_size**2
            counts = iter(int(t.prod()) // merge for t in image_inputs["image_grid_thw"])
            expanded = []
            for sample in text:
                while self.image_token in sample:
                    sample = sample.replace(self.image_token, "<|placeholder|>" * next(counts), 1)
                expanded.append(sample.replace("<|placeholder|>", self.image_token))
            text = expanded
        kwargs.pop("images_kwargs", None)
        # Without return_tensors, text stays as unpadded lists (TRL tokenises prompts that way).
        return_tensors = kwargs.pop("return_tensors", None)
        text_inputs = dict(self.tokenizer(text, return_tensors=return_tensors, **_tokenizer_kwargs(kwargs)))
        # Qwen2-VL's M-RoPE needs to know which positions are image tokens (1) or video tokens (2).
        ids = text_inputs["input_ids"]
        if return_tensors == "pt":
            text_inputs["mm_token_type_ids"] = (ids == self.image_token_id).long() + 2 * (
                ids == self.video_token_id
            ).long()
        else:
            text_inputs["mm_token_type_ids"] = [
                [1 if t == self.image_token_id else 2 if t == self.video_token_id else 0 for t in row]
                for row in ids
            ]
        return {**text_inputs, **image_inputs}

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw"]


def _tokenizer_kwargs(kwargs: dict) -> dict:
    allowed = {
        "padding",
        "padding_side",
        "truncation",
        "max_length",
        "add_special_tokens",
        "return_attention_mask",
    }
    return {k: v for k, v in kwargs.items() if k in allowed}


@dataclass(frozen=True)
class TinyModelSpec:
    """Size of the tiny model; the defaults learn the synthetic suite on CPU in minutes."""

    hidden_size: int = 128
    """Width of the language model."""
    num_layers: int = 2
    """Transformer layers of the language model."""
    num_heads: int = 4
    """Attention heads of the language model (2 key/value heads)."""
    vision_embed_dim: int = 64
    """Width of the vision tower."""
    vision_depth: int = 2
    """Transformer layers of the vision tower."""
    vocab_size: int = 1024
    """Target size of the trained BPE vocabulary (special tokens included)."""
    image_size: int = 112
    """Images are resized to this square side: 112 px -> 8x8 patches of 14 -> 16 tokens after 2x2 merge."""
    seed: int = 0
    """Seed of the random weights."""


def train_tokenizer(corpus: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE over ``corpus``; deterministic for the same corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
    )
    fast.padding_side = "left"  # generation pads on the left
    return fast


def build_tiny_model(out_dir: Path, corpus: list[str], spec: TinyModelSpec = TinyModelSpec()) -> Path:
    """Build the tokenizer, processor and random model, and save them to ``out_dir``.

    The model is saved (not only kept in memory) because TRL reloads the KL reference model from
    the policy's path when ``beta > 0``.
    """
    import torch

    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(corpus, spec.vocab_size)
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=spec.image_size**2,
        max_pixels=spec.image_size**2,
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    )
    processor = TinyQwen2VLProcessor(image_processor, tokenizer, chat_template=CHAT_TEMPLATE)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = _model_config(spec, len(tokenizer), ids)
    torch.manual_seed(spec.seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    (out_dir / TINY_MARKER).write_text(json.dumps(asdict(spec), indent=2, sort_keys=True) + "\n")
    return out_dir


def _model_config(spec: TinyModelSpec, vocab_size: int, ids: dict[str, int]) -> Qwen2VLConfig:
    """Qwen2-VL's architecture at ``spec``'s size, with the tokenizer's special-token ids."""
    return Qwen2VLConfig(
        text_config=dict(
            vocab_size=vocab_size,
            hidden_size=spec.hidden_size,
            intermediate_size=spec.hidden_size * 4,
            num_hidden_layers=spec.num_layers,
            num_attention_heads=spec.num_heads,
            num_key_value_heads=max(1, spec.num_heads // 2),
            max_position_embeddings=4096,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": _mrope_section(spec),
            },
            tie_word_embeddings=True,
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=spec.vision_depth,
            embed_dim=spec.vision_embed_dim,
            hidden_size=spec.hidden_size,
            num_heads=4,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            in_channels=3,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def _mrope_section(spec: TinyModelSpec) -> list[int]:
    # M-RoPE splits each head's rotary half-dimension into (temporal, height, width) sections.
    half = spec.hidden_size // spec.num_heads // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def load_tiny_processor(path: Path) -> TinyQwen2VLProcessor:
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    tokenizer.padding_side = "left"
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(path)
    return TinyQwen2VLProcessor(
        image_processor, tokenizer, chat_template=tokenizer.chat_template or CHAT_TEMPLATE
    )
