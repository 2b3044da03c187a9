"""PromQL helpers for the dashboard and alert tests: the metric names an expression uses, its
modomodo selectors, Grafana's variables replaced by values a plain Prometheus accepts, and promtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from servers import PROMETHEUS_HINT, MissingBinaryError, find_binary

from modomodo.metrics import METRICS

FUNCTIONS = frozenset(
    "abs absent avg bottomk changes clamp_max clamp_min count count_over_time delta deriv group"
    " histogram_quantile increase irate label_join label_replace last_over_time max max_over_time min"
    " min_over_time quantile rate resets round scalar sort sort_desc stddev sum sum_over_time time"
    " timestamp topk vector avg_over_time".split()
)
"""PromQL functions and aggregations the dashboards and alerts may use (an unknown one fails)."""
KEYWORDS = frozenset("by without on ignoring group_left group_right and or unless bool offset".split())

EXTERNAL_METRICS = frozenset(
    {
        "kube_pod_container_status_terminated_reason",
        "kube_pod_container_status_last_terminated_reason",
        "kube_pod_labels",
    }
)
"""kube-state-metrics series the OOM alert reads: the only names not exported by modomodo."""


def exported_names() -> set[str]:
    """Every series name the code exports, from the registry in ``modomodo.metrics``."""
    names = set()
    for spec in METRICS:
        if spec.kind == "histogram":
            names |= {f"{spec.name}_{suffix}" for suffix in ("bucket", "sum", "count", "created")}
        elif spec.kind == "counter":
            names |= {spec.name, spec.name.removesuffix("_total") + "_created"}
        else:
            names.add(spec.name)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` reads: identifiers left once strings, label matchers, ranges,
    grouping clauses, variables, functions and keywords are removed."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\w+", " ", text)
    identifiers = set(re.findall(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text))
    return identifiers - FUNCTIONS - KEYWORDS


def selectors(expr: str) -> list[str]:
    """Every vector selector of a modomodo metric in ``expr`` (name plus matchers), in order."""
    return [match.group(0) for match in re.finditer(r"(?<![\w.])modomodo_[a-z0-9_]+(\{[^}]*\})?", expr)]


def grafana_to_promql(expr: str, range_: str = "1h") -> str:
    """``expr`` as Grafana sends it: ``$run`` (all runs), ``$__range`` and ``$__rate_interval``
    replaced."""
    return expr.replace("$__rate_interval", "1m").replace("$__range", range_).replace('=~"$run"', '=~".*"')


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """``promtool ARGS``; a missing promtool fails the test with what to install."""
    try:
        binary = find_binary("promtool", PROMETHEUS_HINT, Path("/usr/bin/promtool"))
    except MissingBinaryError as exc:
        pytest.fail(str(exc), pytrace=False)
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)
