"""The experiment report: one self-contained HTML page a person reads, and the same facts as JSON.

``report_page.build_report`` writes ``report.html`` and ``report.json`` into a folder. Plots are inlined as
base64 ``data:`` URIs rather than linked: the page is then one file, which is what Kubeflow's UI
renders for an ``HTML`` artifact (it shows only that file, so relative links to PNGs would break),
and it survives being downloaded, mailed or attached to a ticket. No external assets: the CSS is
inline and the page works offline.

After loading, a small script records on ``<body>`` whether every plot decoded
(``data-plots-loaded``), whether anything is wider than the window (``data-overflow``), how many
tables need sideways scrolling (``data-clipped-tables``) and the page height (``data-height``), so
a headless browser can check the page the way a reader sees it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from modomodo.mixture.evidence import SeedNoise, lead_verdict
from modomodo.mixture.records import RUN_ID, RunRecords
from modomodo.mixture.seeds import is_uniform
from modomodo.mixture.simplex import Mixture

SCORE_LABELS = {"in_score": "In-Score", "out_score": "Out-Score"}


class ReportError(ValueError):
    """Report inputs that do not fit together (a contender without the target score, ...)."""


@dataclass(frozen=True)
class Contender:
    """One column of the comparison table."""

    label: str
    """``base``, ``uniform``, ``best pilot`` or ``chosen``."""
    run_id: str
    mixture: dict[str, float] | None
    """None for the base policy (no RL mixture)."""
    scores: dict[str, float]
    """Run-record score columns: ``<benchmark>_score``, ``in_score``, ``out_score``."""


@dataclass(frozen=True)
class Plot:
    title: str
    caption: str
    path: Path
    """A PNG file; inlined into the page."""


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows; the optional parts are absent for a single training run."""

    experiment: str
    target: str
    """The score column the search maximised (``out_score``)."""
    domains: tuple[str, ...]
    splits: dict[str, str]
    """Benchmark -> ``in`` or ``out``."""
    contenders: tuple[Contender, ...]
    pilots: RunRecords | None = None
    surrogate: dict | None = None
    """``surrogate.json`` of the last fit: cross-validation per model, skipped baselines, the fit."""
    proposals: list[dict] = field(default_factory=list)
    """``Proposal.to_dict()`` of the final search, best first."""
    decision: dict | None = None
    """How the final search picked (``ProposalSet.decision``): the surrogate's optimum, or the best
    pilot when the surrogate ranked held-out pilots no better than chance."""
    seed_noise: SeedNoise = SeedNoise(None, "unknown")
    """One run's seed noise on the target: shown next to each score, and what a lead must exceed."""
    pass_rates: dict | None = None
    """``pass_rates.json`` of the base policy's rollout profile."""
    plots: tuple[Plot, ...] = ()
    settings: dict[str, object] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def json_safe(value):
    """``value`` with every non-finite float replaced by None, so the JSON is strict (``NaN`` is
    not JSON, and browsers refuse it)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(value), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def compare(
    target: str,
    base_scores: Mapping[str, float],
    chosen: Contender,
    pilots: RunRecords | None = None,
) -> tuple[Contender, ...]:
    """The comparison columns: base, the uniform pilot and the best pilot (when there are pilots),
    and the chosen mixture's run."""
    columns = [Contender("base", "base", None, dict(base_scores))]
    if pilots is not None and len(pilots):
        frame, weights = pilots.frame, pilots.weights()
        uniform = [i for i, w in enumerate(weights) if is_uniform(w)]
        if uniform:
            columns.append(_pilot_contender("uniform", pilots, uniform[0]))
        best = int(pilots.scores(target).argmax())
        columns.append(_pilot_contender(f"best pilot ({frame[RUN_ID].iloc[best]})", pilots, best))
    columns.append(chosen)
    missing = [c.label for c in columns if target not in c.scores]
    if missing:
        raise ReportError(f"{missing} have no {target!r} score")
    return tuple(columns)


def _pilot_contender(label: str, pilots: RunRecords, row: int) -> Contender:
    record = pilots.frame.iloc[row]
    scores = {c: float(record[c]) for c in pilots.score_columns if pd.notna(record[c])}
    mixture = Mixture.from_vector(pilots.domains, pilots.weights()[row]).to_dict()
    return Contender(label, str(record[RUN_ID]), mixture, scores)


def summary(data: ReportData) -> dict[str, object]:
    """The headline: the chosen mixture and its target score against uniform (if run) and base."""
    by_label = {c.label: c for c in data.contenders}
    chosen = data.contenders[-1]
    result: dict[str, object] = {
        "target": data.target,
        "chosen": {
            "label": chosen.label,
            "run_id": chosen.run_id,
            "mixture": chosen.mixture,
            "scores": chosen.scores,
        },
    }
    result["seed_noise"] = data.seed_noise.to_dict()
    if data.decision:
        result["decision"] = {"path": data.decision["path"], "reason": data.decision["reason"]}
    for label in ("uniform", "base"):
        if label in by_label:
            other = by_label[label]
            delta = chosen.scores[data.target] - other.scores[data.target]
            result[label] = {
                "run_id": other.run_id,
                "mixture": other.mixture,
                "scores": other.scores,
                "delta": delta,
                "verdict": lead_verdict(delta, data.seed_noise, label),
            }
    return result


# JSON ------------------------------------------------------------------------------------------


# HTML ------------------------------------------------------------------------------------------
