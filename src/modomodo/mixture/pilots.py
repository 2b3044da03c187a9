"""Pilot planning and run records: which mixtures the pipeline trains (seed families, the paper's
heuristics, replicates), the run record of each trained pilot, and the failed ones.

Failed pilots are recorded with their reason and left out of the fit, so one pilot that crashes
or diverges does not take the search down (docs/reliability.md).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.versions import versions

logger = logging.getLogger(__name__)


def pilot_item(run: str, mixture, kind: str, replicate: int = 0) -> dict:
    """One pilot to train, as the pipelines iterate over it (the key is ``run``, never ``name``:
    a ParallelFor item key called ``name`` resolves wrongly in kfp). Replicate ``k`` of a mixture
    trains with seed ``train.seed + k`` (see :func:`heuristic_pilots`)."""
    return {
        "run": run,
        "mixture": {d: float(w) for d, w in mixture.items()},
        "kind": kind,
        "replicate": replicate,
    }


def seed_pilots(cfg: ExperimentConfig) -> list[dict]:
    """The seed mixtures of the families in ``search.seeds``, recognised by their weights."""
    from modomodo.mixture.seeds import family_seeds

    return [
        pilot_item(p.name, p.mixture, "seed") for p in family_seeds(list(cfg.data.domains), cfg.search.seeds)
    ]


def heuristic_pilots(cfg: ExperimentConfig, records) -> list[dict]:
    """The paper's heuristic mixtures of ``search.heuristics``, computed from the seed runs in
    ``records``. A heuristic the seed runs cannot support is an error naming what it lacks (the
    heuristic wave of a pipeline has one pilot per configured heuristic). One that equals a mixture
    already run, or an earlier heuristic's, is trained again with the next seed: a replicate, which
    shows the surrogate the run-to-run noise (with the same seed it would repeat the run exactly)."""
    from modomodo.mixture.evidence import SAME_MIXTURE
    from modomodo.mixture.heuristics import HeuristicError, compute_heuristics

    found, failures = compute_heuristics(records, cfg.search.heuristics)
    if failures:
        problems = "; ".join(f"{name}: {why}" for name, why in failures.items())
        raise HeuristicError(f"search.heuristics: {problems} (search.seeds decides which seed runs exist)")
    trained = records.mixtures()
    pilots = []
    for h in found:
        replicate = sum(h.mixture.distance(m) < SAME_MIXTURE for m in trained)
        pilots.append(pilot_item(f"heuristic-{h.name.lower()}", h.mixture, "heuristic", replicate))
        trained.append(h.mixture)
    return pilots


def score_columns(result) -> dict[str, float]:
    """An evaluation as run-record score columns: ``<benchmark>_score``, ``in_score``, ``out_score``."""
    scores = {f"{s.benchmark}_score": s.score for s in result.scores}
    for column, value in (("in_score", result.in_score), ("out_score", result.out_score)):
        if value is not None:
            scores[column] = value
    return scores


def run_record(run: dict, scores: dict[str, float]) -> dict:
    """The run record of a trained run: ``run`` is what the RL update reports (``run_id``,
    ``mixture``, ``kind``, ``seed``, ``steps``), ``scores`` its evaluation's score columns."""
    from modomodo.mixture.records import make_run_record

    if run.get("failed"):  # kept as a failed row: load_records leaves it out of the table
        return {key: run[key] for key in ("run_id", "kind", "failed")}
    metadata = {key: run[key] for key in ("kind", "seed", "steps")}
    return make_run_record(
        run["run_id"], run["mixture"], scores, {**metadata, "modomodo": versions()["modomodo"]}
    )


def load_records(cfg: ExperimentConfig, rows: list[dict], previous: Path | None = None):
    """The run-records table: ``previous`` (a records CSV) plus ``rows``, over the config's
    domains; failed runs (:func:`failed_pilots`) are left out."""
    from modomodo.mixture.records import RunRecords, load_run_records

    domains = list(cfg.data.domains)
    rows = [row for row in rows if not row.get("failed")]
    if previous is None:
        return RunRecords.from_rows(rows, domains)
    records = load_run_records(previous, domains)
    return records.append(*rows) if rows else records


FAILED_RUN_FILE = "failed.json"
"""Written in place of a model by an RL update that failed; evaluation skips such a folder."""


class PilotFailure(RuntimeError):
    """An RL update that ended without a usable model (non-finite weights)."""


def pilot_may_fail(kind: str) -> bool:
    """Whether a failed RL update of this kind is recorded and skipped (pilots) rather than
    fatal (``model``: the final run on the chosen mixture)."""
    return kind != "model"


def give_up_on_lost_pilot(cfg: ExperimentConfig, store, run_id: str, kind: str) -> None:
    """Raise :class:`PilotFailure` when the pilot ``run_id`` lost its pod ``search.pilot_lost_attempts``
    times (``rl.attempts``): a node that keeps dying under it, or a pod evicted or OOM-killed again
    and again, then costs a recorded failure rather than the pipeline (KFP fails a ``ParallelFor``
    whose iteration exhausts its retries). The final run (``kind`` ``model``) never gives up."""
    from modomodo.rl.attempts import AttemptLog

    lost = AttemptLog(store, run_id).lost()
    if pilot_may_fail(kind) and lost >= cfg.search.pilot_lost_attempts:
        raise PilotFailure(
            f"lost its pod {lost} times (search.pilot_lost_attempts={cfg.search.pilot_lost_attempts}): "
            "the node died, or the pod was evicted or killed before it could report"
        )


def failed_run(run_id: str, cfg: ExperimentConfig, kind: str, error: BaseException, model_dir: Path) -> dict:
    """The run of a failed RL update, with its reason; writes :data:`FAILED_RUN_FILE` to ``model_dir``."""
    reason = f"{type(error).__name__}: {error}"[:2000]
    run = {
        "run_id": run_id,
        "mixture": cfg.resolved_mixture(),
        "kind": kind,
        "seed": cfg.train.seed,
        "failed": reason,
    }
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / FAILED_RUN_FILE).write_text(json.dumps(run, indent=2, sort_keys=True) + "\n")
    logger.error("pilot %s failed and is left out of the search: %s", run_id, reason)
    return run


def failed_pilots(rows: list[dict]) -> dict[str, str]:
    """``{run_id: reason}`` of the failed runs among run-record ``rows``."""
    return {row["run_id"]: row["failed"] for row in rows if row.get("failed")}
