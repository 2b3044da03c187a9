"""The DeepSpeed configs bundled with modomodo (``rl/deepspeed/<name>.json``) and how
``train.deepspeed`` names one: a preset name, or the path of a config of one's own."""

from __future__ import annotations

from pathlib import Path

PRESETS_DIR = Path(__file__).parent / "deepspeed"
DEEPSPEED_PRESETS: tuple[str, ...] = tuple(sorted(p.stem for p in PRESETS_DIR.glob("*.json")))
"""The bundled presets: ``zero2`` and ``zero3``."""


def deepspeed_config(value: str) -> str | None:
    """The DeepSpeed config file of ``train.deepspeed``: a preset's, the given path, or None (off)."""
    if not value:
        return None
    if value in DEEPSPEED_PRESETS:
        return str(PRESETS_DIR / f"{value}.json")
    return value
