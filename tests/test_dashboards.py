"""The Grafana dashboards: the committed JSON is the generator's output, every query is valid
PromQL (promtool parses it) and reads only metrics the code exports, and the layout is sound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from promql import exported_names, grafana_to_promql, metric_names, run_promtool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the `monitoring` package lives at the repository root

from monitoring import dashboards  # noqa: E402
from monitoring.grafana import Dashboard, Panel, Query, render  # noqa: E402

COMMITTED = ROOT / "charts" / "modomodo" / "files" / "dashboards"


def committed() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(COMMITTED.glob("*.json"))}


def all_queries() -> list[tuple[str, str, dict]]:
    """(dashboard uid, panel title, target) of every query of every committed dashboard."""
    return [
        (board["uid"], panel["title"], target)
        for board in committed().values()
        for panel in board["panels"]
        for target in panel["targets"]
    ]


def test_the_committed_json_is_what_the_generator_writes():
    generated = dashboards.generate()
    assert sorted(generated) == sorted(committed()), "run: python monitoring/dashboards.py"
    for name, text in generated.items():
        assert (COMMITTED / name).read_text() == text, (
            f"{name} is out of date: run python monitoring/dashboards.py"
        )


def test_the_script_check_mode_catches_a_stale_or_extra_file(tmp_path):
    script = [sys.executable, str(ROOT / "monitoring" / "dashboards.py"), "--out", str(tmp_path)]
    written = subprocess.run(script, capture_output=True, text=True, timeout=60)
    assert written.returncode == 0, written.stderr
    assert subprocess.run([*script, "--check"], capture_output=True, timeout=60).returncode == 0
    (tmp_path / "modomodo-training.json").write_text("{}")
    (tmp_path / "old.json").write_text("{}")
    stale = subprocess.run([*script, "--check"], capture_output=True, text=True, timeout=60)
    assert stale.returncode == 1
    assert "modomodo-training.json" in stale.stdout and "old.json" in stale.stdout
    assert (
        subprocess.run(script, capture_output=True, timeout=60).returncode == 0
    )  # rewrite: removes old.json
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(dashboards.generate())


def test_every_query_reads_only_exported_metrics():
    known = exported_names()  # from the metric registry of modomodo.metrics
    for uid, title, target in all_queries():
        names = metric_names(target["expr"])
        assert names, f"{uid} / {title}: no metric in {target['expr']}"
        assert names <= known, f"{uid} / {title} reads metrics nobody exports: {sorted(names - known)}"


def test_every_query_is_valid_promql(tmp_path):
    """promtool parses every expression (as a recording rule) once Grafana's variables are set."""
    rules = [
        {"record": f"check:{uid.replace('-', '_')}:{index}", "expr": grafana_to_promql(target["expr"])}
        for index, (uid, _title, target) in enumerate(all_queries())
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboards_cover_what_operators_asked_for():
    titles = {board["uid"]: {panel["title"] for panel in board["panels"]} for board in committed().values()}
    assert titles["modomodo-training"] >= {
        "Reward per domain",
        "Accuracy per domain",
        "KL to the reference policy",
        "Step time",
        "Tokens per second",
        "Realised mixture share",
        "Peak memory",
    }
    assert titles["modomodo-mixture-search"] >= {
        "Pilot RL updates done",
        "Pilot RL updates failed",
        "Surrogate cross-validated R²",
        "Chosen mixture: predicted against realised",
    }
    assert "In / Out score per run" in titles["modomodo-evaluation"]
    assert titles["modomodo-stages"] >= {"Time since last success", "Failures per stage"}


def test_panels_use_the_datasource_variable_and_do_not_overlap():
    for board in committed().values():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]
        cells = set()
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (board["uid"], panel["title"])
            area = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not area & cells, f"{board['uid']}: {panel['title']} overlaps another panel"
            cells |= area
        uses_run = any('"$run"' in t["expr"] for p in board["panels"] for t in p["targets"])
        assert uses_run == ("run" in variables), board["uid"]


def test_render_rejects_a_panel_without_query_or_too_wide():
    query = Query("modomodo_train_kl")
    with pytest.raises(ValueError, match="no query"):
        render(Dashboard("u", "t", "d", (Panel("empty", "d", ()),)))
    with pytest.raises(ValueError, match="width 25"):
        render(Dashboard("u", "t", "d", (Panel("wide", "d", (query,), width=25),)))
