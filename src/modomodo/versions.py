"""Versions of the packages that decide a run's numbers; recorded with every run artifact."""

from __future__ import annotations

import platform
from importlib import metadata

TRACKED = ("modomodo", "torch", "transformers", "trl", "accelerate", "deepspeed", "datasets", "optuna", "kfp")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in TRACKED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
