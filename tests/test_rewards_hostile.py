"""Hostile input to ``modomodo rewards score`` and to reward configs (issue 13, finding 7): a bad
line is reported and skipped, never the end of the audit; a reward listed twice is a config error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from modomodo.config import ConfigError, load_config

GOOD = {"completion": "<think> red </think> <answer> B </answer>", "solution": "B", "domain": "sci",
        "options": ["blue", "red", "green"]}  # fmt: skip
MANY_BOXES = "[" + ", ".join(["[1, 1, 30, 30]"] * 200_000) + "]"


def _score(tmp_path, lines: list[bytes], *flags: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "completions.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    argv = [sys.executable, "-m", "modomodo.cli", "rewards", "score", "--input", str(path), *flags]
    env = {**os.environ, "COLUMNS": "400"}  # wide enough that no table cell is cut
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


HOSTILE = [
    json.dumps(GOOD).encode(),
    b'{"completion": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    b'{"completion": "\xff\xfe", "solution": "B", "domain": "sci"}',
    json.dumps({**GOOD, "completion": "<think> x </think> <answer> B \ud800 </answer>"}).encode(),
    json.dumps(
        {
            "completion": "<answer>[1, 1, 30, 30]</answer>",
            "solution": MANY_BOXES,
            "rewards": ["iou_continuous"],
        }
    ).encode(),  # fmt: skip
    json.dumps(GOOD).encode(),
]


def test_bad_lines_are_reported_and_the_rest_scored(tmp_path):
    start = time.perf_counter()
    done = _score(tmp_path, HOSTILE, "--json")
    assert done.returncode == 1, done.stderr[-3000:]  # some line was bad
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["total"] == rows[5]["total"] == 3.0
    assert "nested too deeply" in rows[1]["error"]
    assert "not UTF-8" in rows[2]["error"]
    assert rows[3]["parts"]["format"] == 1.0  # a lone surrogate in the answer is still scored
    assert "more than 65536" in rows[4]["error"]
    assert time.perf_counter() - start < 30  # 200k boxes took 4.4 s of parsing before the cap


def test_the_table_shows_a_lone_surrogate_escaped(tmp_path):
    done = _score(tmp_path, HOSTILE)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "\\ud800" in done.stdout and "nested too deeply" in done.stdout


def test_a_reward_listed_twice_is_a_config_error():
    twice = "data.domains.sci.rewards=[{name: format}, {name: accuracy}, {name: accuracy, weight: 2}]"
    with pytest.raises(ConfigError, match=r"data.domains.sci.rewards: \['accuracy'\] listed more than once"):
        load_config("smoke", [twice])
