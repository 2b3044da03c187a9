"""modomodo monitoring as code: Grafana dashboards (the alert rules are plain YAML in charts/)."""
