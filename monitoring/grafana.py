"""A small typed model of the Grafana dashboards modomodo ships, rendered to Grafana's JSON.

Only what the dashboards use: Prometheus queries, four panel types, a datasource variable and a
``run`` variable. Every panel reads one datasource variable, so the dashboards work with any
Prometheus datasource the Grafana sidecar finds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

PanelType = Literal["timeseries", "stat", "table", "bargauge"]

SCHEMA_VERSION = 39
"""Grafana's dashboard schema version of the JSON written here (Grafana 10.x / 11.x)."""
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
"""Every panel's datasource: the ``datasource`` variable."""
GRID_WIDTH = 24
"""Grafana's grid is 24 units wide."""


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel."""

    expr: str
    """The PromQL expression; may use ``$run``, ``$__range`` and ``$__rate_interval``."""
    legend: str = ""
    """Legend template, e.g. ``{{run}} {{domain}}``."""
    instant: bool = False
    """Evaluate once at the end of the time range (tables, stats) instead of over it."""


@dataclass(frozen=True)
class Panel:
    """One panel: a title, its queries and how to show them."""

    title: str
    """Panel title."""
    description: str
    """What the panel shows and how to read it (Grafana's panel info tooltip)."""
    queries: tuple[Query, ...]
    """The panel's queries (refIds A, B, ... in order)."""
    type: PanelType = "timeseries"
    """Grafana panel type."""
    unit: str = "short"
    """Grafana unit of the values (``s``, ``bytes``, ``percentunit``...)."""
    width: int = 12
    """Width in grid units (24 is the full row)."""
    height: int = 8
    """Height in grid units."""


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: panels laid out left to right, top to bottom."""

    uid: str
    """Stable Grafana uid (links and the sidecar's file name rely on it)."""
    title: str
    """Dashboard title."""
    description: str
    """One line on what the dashboard is for."""
    panels: tuple[Panel, ...]
    """Panels in reading order."""
    tags: tuple[str, ...] = ("modomodo",)
    """Grafana tags."""
    time_from: str = "now-7d"
    """Default start of the time range."""
    variables: tuple[dict[str, Any], ...] = field(default=())
    """Template variables besides ``datasource``."""


def run_variable(metric: str) -> dict[str, Any]:
    """A multi-value ``run`` variable over the runs that exported ``metric`` (All = every run)."""
    return {
        "name": "run",
        "label": "Run",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": f"label_values({metric}, run)", "refId": "run"},
        "definition": f"label_values({metric}, run)",
        "regex": "/^(?!latest$).+/",
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "refresh": 1,
        "current": {},
    }


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + index),
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend,
            "instant": query.instant,
            "range": not query.instant,
            "format": "table" if panel.type == "table" else "time_series",
        }
        for index, query in enumerate(panel.queries)
    ]
    options: dict[str, Any] = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True}}
    if panel.type == "table":
        options = {"showHeader": True, "cellHeight": "sm"}
    elif panel.type in ("stat", "bargauge"):
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    transformations = []
    if panel.type == "table":
        # One row per series: its labels and last value; Prometheus' own columns hidden.
        transformations = [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True, "job": True}}},
        ]
    return {
        "id": panel_id,
        "type": panel.type,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": options,
        "transformations": transformations,
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    """Grafana's JSON model of ``dashboard`` (what the sidecar loads from a ConfigMap)."""
    for panel in dashboard.panels:
        if not 0 < panel.width <= GRID_WIDTH:
            raise ValueError(f"{dashboard.uid}: panel {panel.title!r} has width {panel.width}, not 1-24")
        if not panel.queries:
            raise ValueError(f"{dashboard.uid}: panel {panel.title!r} has no query")
    panels, x, y, row_height = [], 0, 0, 0
    for panel_id, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel_json(panel, panel_id, x, y))
        x, row_height = x + panel.width, max(row_height, panel.height)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(dashboard.tags),
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "timezone": "browser",
        "time": {"from": dashboard.time_from, "to": "now"},
        "templating": {"list": [_datasource_variable(), *dashboard.variables]},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }
