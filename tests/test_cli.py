"""The `modomodo` command: config errors before work, rewards audit, data commands."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from modomodo.cli import app

runner = CliRunner()


def test_config_show_prints_the_resolved_preset():
    result = runner.invoke(app, ["config", "show", "--preset", "paper", "--set", "train.steps=5"])
    assert result.exit_code == 0, result.output
    assert "Qwen/Qwen2-VL-2B-Instruct" in result.output
    assert "steps: 5" in result.output


def test_a_bad_config_is_rejected_before_any_work(tmp_path):
    out = tmp_path / "data"
    result = runner.invoke(app, ["data", "curate", "--out", str(out), "--set", "train.mixture={nope: 1.0}"])
    assert result.exit_code == 2
    assert "unknown domains ['nope']" in result.output
    assert not out.exists(), "nothing was written"


def test_rewards_score_by_domain_and_by_reward_names(tmp_path):
    lines = [
        {"completion": "<think> red </think> <answer> B </answer>", "solution": "B", "domain": "sci",
         "options": ["blue", "red", "green"]},
        {"completion": "<think> top left </think> <answer>[{'Position': [0, 0, 28, 28], 'Confidence': 1}]</answer>",
         "solution": "[{'Position': [0, 0, 28, 28], 'Confidence': 1}]", "rewards": ["format", "iou_continuous"]},
        {"completion": "no tags", "solution": "B", "domain": "unknown-domain"},
    ]  # fmt: skip
    path = tmp_path / "completions.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = runner.invoke(app, ["rewards", "score", "--input", str(path), "--json"])
    assert result.exit_code == 1, "a bad line makes the exit code non-zero"
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["total"] == 3.0 and rows[0]["parts"] == {"format": 1.0, "accuracy": 1.0}
    assert rows[1]["parts"] == {"format": 1.0, "iou_continuous": 1.0}
    assert "unknown-domain" in rows[2]["error"]


def test_data_curate_writes_shards_report_and_quarantine(tmp_path):
    out = tmp_path / "data"
    result = runner.invoke(app, ["data", "curate", "--out", str(out), "--set", "data.benchmark_scale=0.05",
                                 "--set", "data.domains.det.n_train=8"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "curation.json").read_text())
    assert report["rows"]["det"]["train"] == 8
    assert (out / "quarantine.jsonl").exists()
