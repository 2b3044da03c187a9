"""The retrain gate: a finished ``train`` run is accepted only if its Out-Score does not fall
below the last accepted run's by more than a tolerance.

The last accepted run of an experiment is one small JSON object in the artifact store, at
``accepted/<experiment>.json`` (mixture, In/Out-Score, the pipeline run whose report it came
from); every promotion also keeps a copy under ``accepted/<experiment>/<time>-<run>.json`` so no
accepted record is ever lost. The retrain job reads the accepted mixture before it submits
(``accepted_mixture``), and after the run judges the run's ``reports/<run>/report.json`` against
the accepted record (``gate``), promoting it when it passes.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modomodo.store import ArtifactNotFoundError, ArtifactStore, validate_key

ACCEPTED_PREFIX = "accepted"
REPORTS_PREFIX = "reports"
"""Where the ``report`` step publishes a pipeline run's report (``reports/<pipeline run>``)."""
METRIC = "out_score"
"""The score the gate compares: the Out-Score, accuracy on held-out benchmarks."""


class GateError(ValueError):
    """A report or accepted record the gate cannot judge (no Out-Score, malformed JSON, ...)."""


@dataclass(frozen=True)
class RunResult:
    """What the gate knows of one trained run: its mixture and scores."""

    experiment: str
    """The config name (``ExperimentConfig.name``); accepted records are kept per experiment."""
    run: str
    """The pipeline run whose report this is (its report lives at ``reports/<run>``)."""
    mixture: dict[str, float]
    """The mixture the final model trained on."""
    out_score: float
    """Out-Score of the trained model."""
    in_score: float | None = None
    """In-Score of the trained model, shown for context (the gate does not judge it)."""
    accepted_at: str = ""
    """UTC ISO-8601 time of promotion; empty for a candidate."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else worth keeping with the record (the store URL of the report)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, source: str) -> RunResult:
        try:
            return cls(
                experiment=str(doc["experiment"]),
                run=str(doc["run"]),
                mixture={str(k): float(v) for k, v in doc["mixture"].items()},
                out_score=_score(doc["out_score"], source),
                in_score=None if doc.get("in_score") is None else float(doc["in_score"]),
                accepted_at=str(doc.get("accepted_at", "")),
                extra=dict(doc.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GateError(f"{source}: not an accepted-run record ({type(exc).__name__}: {exc})") from exc


def _score(value: Any, source: str) -> float:
    if value is None or not math.isfinite(float(value)):
        raise GateError(f"{source}: {METRIC} is {value!r}, not a number")
    return float(value)


def result_from_report(document: dict[str, Any], run: str) -> RunResult:
    """The trained run of a ``report.json`` (its ``summary.chosen``)."""
    source = f"report of {run}"
    try:
        chosen = document["summary"]["chosen"]
        scores = chosen["scores"]
        experiment = document["experiment"]
    except (KeyError, TypeError) as exc:
        raise GateError(f"{source}: not a modomodo report.json (missing {exc})") from exc
    if METRIC not in scores:
        raise GateError(f"{source}: the trained model has no {METRIC}; scores: {sorted(scores)}")
    return RunResult(
        experiment=str(experiment),
        run=run,
        mixture={str(k): float(v) for k, v in (chosen.get("mixture") or {}).items()},
        out_score=_score(scores[METRIC], source),
        in_score=scores.get("in_score"),
    )


@dataclass(frozen=True)
class Verdict:
    """The gate's decision on a candidate."""

    candidate: RunResult
    accepted: RunResult | None
    """The last accepted run; None when the experiment has none yet."""
    tolerance: float
    """How far (absolute Out-Score) the candidate may fall below the accepted run and still pass."""

    @property
    def delta(self) -> float | None:
        """Candidate minus accepted Out-Score."""
        return None if self.accepted is None else self.candidate.out_score - self.accepted.out_score

    @property
    def passed(self) -> bool:
        # The slack keeps a drop of exactly the tolerance a pass: 0.48 - 0.50 is -0.0200...02.
        return self.accepted is None or self.delta >= -self.tolerance - 1e-12

    @property
    def message(self) -> str:
        c = self.candidate
        if self.accepted is None:
            return f"{c.experiment}: no accepted run yet; {c.run} (Out-Score {c.out_score:.4f}) is the first"
        a = self.accepted
        compared = (
            f"{c.run} Out-Score {c.out_score:.4f} against accepted {a.run} {a.out_score:.4f} "
            f"({self.delta:+.4f}, tolerance {self.tolerance:g})"
        )
        return f"{'passed' if self.passed else 'REGRESSION'}: {compared}"


def judge(candidate: RunResult, accepted: RunResult | None, tolerance: float) -> Verdict:
    """Compare ``candidate`` with the accepted run of the same experiment."""
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise GateError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    if accepted is not None and accepted.experiment != candidate.experiment:
        raise GateError(
            f"cannot compare {candidate.run} of experiment {candidate.experiment!r} with the accepted "
            f"run {accepted.run} of {accepted.experiment!r}"
        )
    return Verdict(candidate, accepted, tolerance)


def accepted_key(experiment: str) -> str:
    return validate_key(f"{ACCEPTED_PREFIX}/{experiment}.json")


def read_accepted(store: ArtifactStore, experiment: str) -> RunResult | None:
    """The last accepted run of ``experiment``; None when there is none."""
    key = accepted_key(experiment)
    try:
        data = store.get_bytes(key)
    except ArtifactNotFoundError:
        return None
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise GateError(f"{store.url_for(key)}: not JSON ({exc})") from exc
    return RunResult.from_dict(doc, source=store.url_for(key))


def accepted_mixture(store: ArtifactStore, experiment: str) -> dict[str, float]:
    """The mixture the next retrain trains on: the accepted run's, or {} (the config's own
    ``train.mixture``, uniform when empty) before any run was accepted."""
    accepted = read_accepted(store, experiment)
    return dict(accepted.mixture) if accepted else {}


def promote(store: ArtifactStore, result: RunResult, now: datetime | None = None) -> RunResult:
    """Make ``result`` the accepted run of its experiment. The history copy is written first, so
    the pointer never names a record that was not kept."""
    now = now or datetime.now(UTC)
    record = replace(result, accepted_at=now.isoformat(timespec="seconds"))
    data = json.dumps(record.to_dict(), indent=2, sort_keys=True, allow_nan=False).encode()
    history = f"{ACCEPTED_PREFIX}/{result.experiment}/{now:%Y%m%dT%H%M%SZ}-{result.run}.json"
    store.put_bytes(history, data)
    store.put_bytes(accepted_key(result.experiment), data)
    return record


def read_report(store: ArtifactStore, run: str) -> dict[str, Any]:
    """``report.json`` of pipeline run ``run``, downloaded with the store's checksum checks."""
    key = validate_key(f"{REPORTS_PREFIX}/{run}")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            store.get_dir(key, Path(scratch))
        except ArtifactNotFoundError as exc:
            raise ArtifactNotFoundError(
                f"no report of run {run!r} at {store.url_for(key)}: did the run finish its report step, "
                "and is this the store the run used?"
            ) from exc
        path = Path(scratch) / "report.json"
        if not path.is_file():
            raise GateError(f"{store.url_for(key)} has no report.json")
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise GateError(f"{store.url_for(key)}/report.json: not JSON ({exc})") from exc


def gate(store: ArtifactStore, run: str, tolerance: float, *, promote_passed: bool = True) -> Verdict:
    """Judge run ``run`` against its experiment's accepted run; promote it when it passes (and
    ``promote_passed``)."""
    candidate = result_from_report(read_report(store, run), run)
    candidate = replace(candidate, extra={"report": store.url_for(f"{REPORTS_PREFIX}/{run}")})
    verdict = judge(candidate, read_accepted(store, candidate.experiment), tolerance)
    if verdict.passed and promote_passed:
        promote(store, candidate)
    return verdict
