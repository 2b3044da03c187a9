"""The ``modomodo`` command line: ``app`` (stage commands) with the ``mixture``, pipeline and
retraining command groups; ``python -m modomodo.cli`` runs it as the console script does."""

from __future__ import annotations

from modomodo.cli.app import app, main

__all__ = ["app", "main"]
