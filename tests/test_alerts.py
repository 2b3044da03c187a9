"""The Prometheus alert rules (charts/modomodo/files/alerts.yaml): promtool accepts them, each
group's unit tests pass (every alert fires, and does not fire), the tests really depend on the
rules, and every metric the rules read is one the code exports (or kube-state-metrics')."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from promql import EXTERNAL_METRICS, exported_names, metric_names, run_promtool

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "charts" / "modomodo" / "files" / "alerts.yaml"
UNIT_TESTS = Path(__file__).resolve().parent / "promtool"


def groups() -> list[dict]:
    return yaml.safe_load(RULES.read_text())["groups"]


def unit_test_file(group: str) -> Path:
    """The unit tests of a rule group: ``tests/promtool/<group without modomodo->.test.yaml``."""
    return UNIT_TESTS / f"{group.removeprefix('modomodo-')}.test.yaml"


def test_promtool_checks_the_rules():
    result = run_promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = sum(len(g["rules"]) for g in groups())
    assert f"SUCCESS: {rules} rules found" in result.stdout


@pytest.mark.parametrize("group", [g["name"] for g in groups()])
def test_the_unit_tests_of_each_group_pass(group):
    path = unit_test_file(group)
    assert path.is_file(), f"rule group {group} has no unit tests at {path}"
    result = run_promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing():
    for group in groups():
        cases: dict[str, list[list]] = {}
        for test in yaml.safe_load(unit_test_file(group["name"]).read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], []).append(case["exp_alerts"])
        for rule in group["rules"]:
            expected = cases.get(rule["alert"], [])
            assert any(expected), f"{rule['alert']}: no unit test where it fires"
            assert any(not alerts for alerts in expected), (
                f"{rule['alert']}: no unit test where it stays silent"
            )


@pytest.mark.parametrize("mutation", ["vector(0) > 1", "vector(1)"], ids=["never-fires", "always-fires"])
def test_the_unit_tests_fail_when_a_rule_is_broken(tmp_path, mutation):
    """Each alert's tests depend on its expression: replacing it by one that never (or always)
    fires makes its group's unit tests fail."""
    for group in groups():
        for index, rule in enumerate(group["rules"]):
            mutated = groups()
            target = next(g for g in mutated if g["name"] == group["name"])
            target["rules"][index]["expr"] = mutation
            folder = tmp_path / f"{rule['alert']}-{mutation.replace(' ', '')}"
            (folder / "tests" / "promtool").mkdir(parents=True)
            rules = folder / "charts" / "modomodo" / "files" / "alerts.yaml"
            rules.parent.mkdir(parents=True)
            rules.write_text(yaml.safe_dump({"groups": mutated}))
            test_file = folder / "tests" / "promtool" / unit_test_file(group["name"]).name
            shutil.copy(unit_test_file(group["name"]), test_file)
            result = run_promtool("test", "rules", str(test_file))
            assert result.returncode != 0, f"{rule['alert']} replaced by {mutation!r}: its tests still pass"
            assert rule["alert"] in result.stdout + result.stderr


def test_every_metric_the_rules_read_is_exported():
    known = exported_names() | EXTERNAL_METRICS
    used = set()
    for group in groups():
        for rule in group["rules"]:
            names = metric_names(rule["expr"])
            assert names, f"{rule['alert']}: no metric found in its expression"
            assert names <= known, f"{rule['alert']} reads metrics nobody exports: {sorted(names - known)}"
            used |= names
    assert EXTERNAL_METRICS <= used  # the allowlist holds nothing the rules do not need


def test_metric_names_are_found_in_promql():
    expr = (
        'max by (run) (last_over_time(modomodo_eval_out_score{run=~"$run"}[$__range]))'
        ' / on(run) group_left() sum(rate(foo_total{a="modomodo_x"}[5m])) > 0.5 * histogram_quantile(0.9, bar)'
    )
    assert metric_names(expr) == {"modomodo_eval_out_score", "foo_total", "bar"}


def test_every_alert_has_a_severity_a_summary_and_a_description():
    for group in groups():
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
