"""What the reliability tests tried and what happened, as JSON lines for docs/reliability.md.

With ``MODOMODO_RELIABILITY_RESULTS=DIR`` set, each call appends one line to ``DIR/results.jsonl``;
``scripts/reliability_report.py DIR`` renders them as the table of docs/reliability.md. Unset, it
does nothing, so the suite runs the same either way.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

RESULTS_ENV = "MODOMODO_RELIABILITY_RESULTS"


def record_result(what: str, *, cases: int, outcome: str, **details: object) -> None:
    """Append ``what`` (the thing tried), ``cases`` (how many) and ``outcome`` (what happened)."""
    folder = os.environ.get(RESULTS_ENV)
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    line = {"what": what, "cases": cases, "outcome": outcome, "time": time.time(), **details}
    with open(Path(folder) / "results.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(line, sort_keys=True) + "\n")
