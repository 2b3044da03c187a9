"""What every ``modomodo`` command shares: the stderr console, the preset/override options, and
config resolution that exits with code 2 on a bad config before any work starts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)

Preset = Annotated[str, typer.Option("--preset", "-p", help="Preset name (smoke, paper) or a YAML file.")]
Overrides = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override, e.g. train.steps=20 (repeatable).")
]


def resolve_config(preset: str, overrides: list[str] | None):
    from modomodo.config import ConfigError, load_config

    try:
        return load_config(preset, overrides or [])
    except ConfigError as e:
        console.print(f"[red]config error:[/red] {escape(str(e))}")  # the message quotes user text
        raise typer.Exit(2) from None
