"""Score a JSONL file of completions offline (``modomodo rewards score --input FILE.jsonl``).

Each line is a JSON object::

    {"completion": "<think> ... </think> <answer> B </answer>", "solution": "B",
     "answer_kind": "mc", "options": ["red", "blue"], "domain": "sat"}

``answer_kind`` is optional (inferred as curation does, by
:func:`modomodo.data.sources.infer_answer_kind`: a letter is an option letter only next to
``options``), ``options`` too. Exactly one of
``domain`` (its configured :class:`RewardSet` applies) or ``rewards`` (a list of registered names,
each weight 1, or ``{"name": ..., "weight": ...}`` objects; gated on format iff ``format`` is listed)
says how to score. A bad line yields an error entry naming the line and the problem, and the audit
goes on; blank lines are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from modomodo.data.sources import Record, infer_answer_kind
from modomodo.rewards.context import RewardContext
from modomodo.rewards.errors import RewardConfigError
from modomodo.rewards.parsing import MAX_SCAN_CHARS, extract_answer
from modomodo.rewards.reward_set import FORMAT_REWARD, RewardSet, RewardSpec

_ANSWER_WIDTH = 40


def score_records(
    lines: Iterable[bytes | str | Mapping[str, Any]], domain_rewards: Mapping[str, RewardSet]
) -> list[dict[str, Any]]:
    """Score each line (UTF-8 bytes, a JSON string or an already decoded object), numbering lines
    from 1. Bytes are decoded line by line, so one line of broken UTF-8 spoils only itself.

    A result is ``{"line", "domain", "answer_kind", "answer", "parts", "total"}`` (``domain`` is
    ``None`` for a ``rewards`` list, ``answer`` is ``None`` when there is no answer block), or
    ``{"line", "error"}`` for a bad line.
    """
    results: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if isinstance(line, bytes | str) and not line.strip():
            continue
        try:
            results.append({"line": number, **_score_line(line, domain_rewards)})
        except ValueError as exc:  # invalid JSON and RewardConfigError; other errors are bugs
            results.append({"line": number, "error": f"line {number}: {exc}"})
    return results


def _score_line(
    line: bytes | str | Mapping[str, Any], domain_rewards: Mapping[str, RewardSet]
) -> dict[str, Any]:
    try:
        record = json.loads(line) if isinstance(line, bytes | str) else line
    except UnicodeDecodeError as exc:
        raise RewardConfigError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise RewardConfigError(f"invalid JSON ({exc})") from None
    except RecursionError:
        raise RewardConfigError("JSON nested too deeply") from None
    if not isinstance(record, Mapping):
        raise RewardConfigError(f"expected a JSON object, got {type(record).__name__}")
    completion, solution = _string_field(record, "completion"), _string_field(record, "solution")
    if len(solution) > MAX_SCAN_CHARS:  # rewards parse the whole solution: cap it as completions are
        raise RewardConfigError(f"'solution' has {len(solution)} characters, more than {MAX_SCAN_CHARS}")
    options = record.get("options", [])
    if not isinstance(options, list) or not all(isinstance(option, str) for option in options):
        raise RewardConfigError(f"'options' must be a list of strings, got {options!r}")
    if ("domain" in record) == ("rewards" in record):
        raise RewardConfigError("give exactly one of 'domain' or 'rewards'")
    domain = record.get("domain")
    if "domain" in record:
        if not isinstance(domain, str) or domain not in domain_rewards:
            raise RewardConfigError(f"unknown domain {domain!r}; known domains: {sorted(domain_rewards)}")
        reward_set = domain_rewards[domain]
    else:
        reward_set = _listed_reward_set(record["rewards"])
    answer_kind = record.get("answer_kind") or infer_answer_kind({"solution": solution, "options": options})
    breakdown = reward_set.score(completion, RewardContext(solution, answer_kind, tuple(options)))
    return {
        "domain": domain,
        "answer_kind": answer_kind,
        "answer": extract_answer(completion),
        "parts": breakdown.parts,
        "total": breakdown.total,
    }


SCORING_KEYS = ("completion", "domain", "rewards")
"""What a row in a published layout carries besides the layout's own columns."""


def score_layout_records(
    records: Iterable[Record],
    layout: str,
    domain_rewards: Mapping[str, RewardSet],
    *,
    frame: str | None = None,
) -> list[dict[str, Any]]:
    """Score rows in a published layout (``modomodo rewards score --layout``): each row holds the
    layout's columns (read by :func:`~modomodo.data.sources.read_raw_records`, so a JSONL image is
    base64 ``image`` or a file ``image_path``) plus ``completion`` and ``domain`` or ``rewards``.

    The row goes through its layout and curation's checks first, so the reference is what training
    would store: ``<answer>[{'Position': ...}]</answer>`` on the 0-1000 grid and ``(x1,y1),(x2,y2)``
    become pixel boxes of the image, a MathVista choice text its letter. A row that cannot be read,
    adapted or validated is an error entry naming its line (or row) and the problem.
    """
    from modomodo.data.layouts import adapt_row, get_layout
    from modomodo.data.record_checks import CurationLimits, validate_record

    chosen = get_layout(layout)
    results: list[dict[str, Any]] = []
    for number, record in enumerate(records, start=1):
        tail = record.origin.rsplit(":", 1)[-1]
        line = int(tail) if tail.isdigit() else number  # a JSONL origin ends in its line number
        row = {k: v for k, v in record.fields.items() if k not in SCORING_KEYS}
        adapted = record if record.error else adapt_row(chosen, row, record.origin, frame=frame)  # type: ignore[arg-type]
        try:
            if adapted.error:
                raise RewardConfigError(adapted.error)
            fields = {"id": f"line-{line}", **adapted.fields}
            example = validate_record(
                fields, domain="score", known_domains={"score"}, limits=CurationLimits()
            )
            scoring = {k: record.fields[k] for k in SCORING_KEYS if k in record.fields}
            entry = {**scoring, "solution": example.solution, "answer_kind": example.answer_kind,
                     "options": list(example.options)}  # fmt: skip
            results.append({"line": line, **_score_line(entry, domain_rewards)})
        except ValueError as exc:  # the adapter's error, curation's Rejected, RewardConfigError
            results.append({"line": line, "error": f"line {line}: {exc}"})
    return results


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _string_field(record: Mapping[str, Any], key: str) -> str:
    if not isinstance(record.get(key), str):
        raise RewardConfigError(f"field {key!r} is missing or not a string")
    return record[key]


def _listed_reward_set(items: Any) -> RewardSet:
    if not isinstance(items, list) or not items:
        raise RewardConfigError(f"'rewards' must be a non-empty list, got {items!r}")
    specs = []
    for item in items:
        if isinstance(item, str):
            specs.append(RewardSpec(item))
        elif isinstance(item, Mapping) and set(item) in ({"name"}, {"name", "weight"}):
            specs.append(RewardSpec(item["name"], item.get("weight", 1.0)))
        else:
            raise RewardConfigError(
                f"a reward must be a name or {{'name': ..., 'weight': ...}}, got {item!r}"
            )
    names = [spec.name for spec in specs]
    return RewardSet(tuple(specs), gate_on_format=FORMAT_REWARD in names)


def render_table(results: Iterable[Mapping[str, Any]]) -> Table:
    """A rich table of :func:`score_records` results: one row per line, one column per reward."""
    results = list(results)
    part_names = list(dict.fromkeys(name for result in results for name in result.get("parts", {})))
    table = Table(title="Reward audit")
    table.add_column("line", justify="right")
    table.add_column("domain")
    table.add_column("answer", overflow="ellipsis", max_width=_ANSWER_WIDTH)
    for name in part_names:
        table.add_column(name, justify="right")
    table.add_column("total", justify="right")
    table.add_column("error")
    for result in results:
        parts = result.get("parts", {})
        error = result.get("error")
        # Text cells: answers and errors are untrusted and must not be read as rich markup, and a
        # lone surrogate (a JSON "\\udxxx" escape) cannot be printed: show it escaped.
        table.add_row(
            str(result["line"]),
            Text(_printable(result.get("domain") or ("" if error else "(rewards)"))),
            Text(_printable("" if result.get("answer") is None else result["answer"])),
            *(f"{parts[name]:.3f}" if name in parts else "" for name in part_names),
            "" if error else f"{result['total']:.3f}",
            Text(_printable(error or ""), style="red"),
        )
    return table
