"""scripts/reliability_report.py renders the recorded results as docs/reliability.md's table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reliability import RESULTS_ENV, record_result

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "reliability_report.py"


def test_records_are_grouped_into_one_row_per_thing_tried(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path))
    record_result("kill and resume", cases=1, outcome="identical", kill_after_step=2)
    record_result("kill and resume", cases=1, outcome="identical", kill_after_step=5)
    record_result("fuzz a | b", cases=40, outcome="ok: 30; rejected: 10")
    (tmp_path / "store_load.txt").write_text("put_dir vs upload_file  10 MiB/s  11 MiB/s  0.91\n")
    done = subprocess.run([sys.executable, SCRIPT, str(tmp_path), "--out", str(tmp_path / "r.md")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "r.md").read_text()
    assert "| kill and resume | 2 | identical | kill_after_step: 2, 5 |" in text
    assert "| fuzz a \\| b | 40 | ok: 30; rejected: 10 |  |" in text
    assert "42 cases in all." in text and "0.91" in text


def test_nothing_recorded_without_the_env_var_and_bad_lines_are_named(tmp_path, monkeypatch):
    monkeypatch.delenv(RESULTS_ENV, raising=False)
    record_result("x", cases=1, outcome="y")
    done = subprocess.run([sys.executable, SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode != 0 and "no results" in done.stderr
    (tmp_path / "bad.jsonl").write_text(json.dumps({"what": "x"}) + "\n")
    done = subprocess.run([sys.executable, SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode != 0 and "bad.jsonl:1: needs 'what', 'cases' and 'outcome'" in done.stderr


def test_a_line_that_is_not_json_is_named(tmp_path):
    (tmp_path / "r.jsonl").write_text("{not json\n")
    done = subprocess.run([sys.executable, SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode != 0 and "r.jsonl:1: not JSON" in done.stderr
