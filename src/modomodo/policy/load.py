"""Load a policy (model + processor) from a hub id, a local path, or a tiny model built here."""

from __future__ import annotations

from pathlib import Path

import torch

from modomodo.policy.tiny import TINY_MARKER, load_tiny_processor


def resolve_dtype(dtype: str) -> torch.dtype:
    """``auto`` picks bf16 on a CUDA device that supports it, else fp32 (CPU training stays fp32)."""
    if dtype == "bf16":
        return torch.bfloat16
    if dtype == "fp32":
        return torch.float32
    if dtype == "auto":
        return (
            torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
        )
    raise ValueError(f"dtype must be auto, bf16 or fp32, got {dtype!r}")


def is_tiny(model: str | Path) -> bool:
    return (Path(model) / TINY_MARKER).is_file()


def load_processor(model: str | Path):
    """The processor for ``model``; tiny models use the torchvision-free processor."""
    if is_tiny(model):
        return load_tiny_processor(Path(model))
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(model))
    processor.tokenizer.padding_side = "left"  # batched generation pads on the left
    return processor


def policy_device() -> torch.device:
    """Where a single-process stage (warm-start, evaluation, rollout profile) runs its model: the
    current CUDA device where there is one, else the CPU. The RL update leaves placement to TRL."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_policy(model: str | Path, dtype: str = "auto", device: torch.device | str | None = None):
    """Return ``(model, processor)``. ``model`` is a hub id (resolved from the local HF cache when
    offline) or a local folder saved by ``save_pretrained``; ``device`` moves the model there."""
    from transformers import AutoModelForImageTextToText

    policy = AutoModelForImageTextToText.from_pretrained(str(model), dtype=resolve_dtype(dtype))
    return (policy if device is None else policy.to(device)), load_processor(model)


def load_weights(model, folder: str | Path) -> None:
    """Copy the weights saved in ``folder`` into ``model`` through ``from_pretrained``, so that the
    checkpoint key mapping applies.

    HF's Trainer reloads a checkpoint's weights as a raw state dict, whose keys miss a model that
    ``save_pretrained`` wrote in its original layout (Qwen2-VL: ``visual.*``, ``model.layers.*``
    against ``model.visual.*``, ``model.language_model.*``): it only warns and keeps the weights
    it had, so a resumed run would go on from the base policy with the checkpoint's optimizer.
    """
    from transformers import AutoModelForImageTextToText

    saved = AutoModelForImageTextToText.from_pretrained(str(folder), dtype=model.dtype)
    model.load_state_dict(saved.state_dict())


def freeze_vision_tower(model) -> int:
    """Freeze the vision encoder (parameters under ``visual``), as the paper trains only the LLM.

    Returns the number of frozen parameters, so callers can log and tests can assert it.
    """
    frozen = 0
    for name, param in model.named_parameters():
        if ".visual." in f".{name}" or name.startswith("visual."):
            param.requires_grad_(False)
            frozen += param.numel()
    if frozen == 0:
        raise ValueError("freeze_vision_tower: the model has no parameters under 'visual'")
    return frozen


def save_policy(model, processor, out_dir: Path, source: str | Path | None = None, state_dict=None) -> Path:
    """Save model + processor; a tiny model keeps its marker so it reloads with the right processor.
    ``state_dict`` replaces the model's own weights (gathered from DeepSpeed ZeRO-3 partitions)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, state_dict=state_dict)
    processor.save_pretrained(out_dir)
    if source is not None and is_tiny(source):
        (out_dir / TINY_MARKER).write_bytes((Path(source) / TINY_MARKER).read_bytes())
    return out_dir
