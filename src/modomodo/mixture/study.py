"""The Optuna study behind a simplex search: its settings, where it is stored, and one study run at a time per storage."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from modomodo.mixture.records import RunRecords
from modomodo.mixture.simplex import inverse_stick_breaking, stick_breaking
from modomodo.redact import redact_url

STUDY_FILE = "study.db"
"""The SQLite file a search keeps its study in when no storage is given: the search stage's in its
output folder, ``modomodo mixture propose``'s in the current one."""


class SearchError(ValueError):
    """A search that cannot run as asked (bad options, a study that belongs to other inputs)."""


@dataclass(kw_only=True)
class StudySettings:
    """How a simplex search runs and where its Optuna study is kept."""

    n_trials: int = 300
    """Optuna trials beyond the enqueued observed mixtures (a resumed study runs only the missing ones)."""
    seed: int = 0
    """Seeds the TPE sampler (and the paper's Gaussian sampling)."""
    storage: str | None = None
    """RDB URL (``sqlite:///file.db``, ``postgresql://...``); None keeps the study in memory."""
    study_name: str | None = None
    """None: derived from the run records, target, model and options, so reruns resume."""
    min_distance: float = 0.05
    """Least total-variation distance between returned mixtures (and, when exploring, from runs
    already done or pending)."""
    paper_samples: int = 10_000
    """Gaussian samples drawn by the paper's candidate generation (the paper does not say)."""

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise SearchError(f"n_trials must be >= 1, got {self.n_trials}")
        if not 0 <= self.min_distance < 1:
            raise SearchError(
                f"min_distance is a total-variation distance in [0, 1), got {self.min_distance}"
            )


def resolve_storage(storage: str | Path | None) -> str:
    """An RDB URL: a URL stays as is, a file path becomes SQLite, None is ``./study.db``.

    A plain ``postgresql://`` URL (libpq's form, as a Secret usually holds it) gets the psycopg 3
    driver that modomodo installs; SQLAlchemy would otherwise look for psycopg2. A URL SQLAlchemy
    cannot parse is a :class:`SearchError` that shows it without its password.
    """
    if storage is not None and "://" in str(storage):
        from sqlalchemy.engine import make_url

        url = str(storage)
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        try:
            make_url(url)
        except Exception as exc:  # its message repeats the URL, password included
            raise SearchError(
                f"study storage {redact_url(url)!r} is not a database URL ({type(exc).__name__}); "
                "expected e.g. postgresql://user:password@host:5432/db or sqlite:///path.db"
            ) from None
        return url
    path = Path(storage) if storage is not None else Path.cwd() / STUDY_FILE
    return f"sqlite:///{path.resolve()}"


def study_name_for(
    records: RunRecords, target: str, model: str, mode: str, options: Mapping[str, object]
) -> str:
    """A readable, input-derived study name: same table, target, model and options, same study."""
    content = json.dumps(
        {"table": records.fingerprint(), "target": target, "model": model, "mode": mode, "options": options},
        sort_keys=True,
        default=str,
    )
    return f"modomodo-mixture-{mode}-{model}-{target}-{hashlib.sha256(content.encode()).hexdigest()[:12]}"


def _optuna() -> ModuleType:
    """Optuna, imported on first use to keep ``modomodo.mixture`` light, with info logs off."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def run_study(
    objective: Callable[[np.ndarray], np.ndarray],
    domains: Sequence[str],
    observed: np.ndarray,
    config: StudySettings,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Maximise ``objective`` (vectorised over mixtures) over the simplex; returns every completed
    trial's mixture, value and source."""
    with _storage_lock(config.storage):
        return _run_study_locked(objective, domains, observed, config)


@contextmanager
def _storage_lock(storage: str | None) -> Iterator[None]:
    """Serialise searches on one storage. Two search pods starting at once on a fresh database
    both create Optuna's tables (the loser fails), and on a fresh study both enqueue the observed
    runs (each twice) and both run every missing trial. Under the lock the second finds the study
    complete. A PostgreSQL advisory lock (released if its holder dies), a ``flock`` beside a SQLite
    file; other storages are not locked."""
    if storage is None or storage == "sqlite://":
        yield
    elif storage.startswith("sqlite:///"):
        import fcntl

        with Path(storage.removeprefix("sqlite:///") + ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
    elif storage.startswith("postgresql"):
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        engine = create_engine(storage, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
        finally:
            engine.dispose()
    else:
        yield


_LOCK_KEY = int.from_bytes(hashlib.sha256(b"modomodo-mixture-search").digest()[:8], "big", signed=True)


def _run_study_locked(
    objective: Callable[[np.ndarray], np.ndarray],
    domains: Sequence[str],
    observed: np.ndarray,
    config: StudySettings,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    optuna = _optuna()
    names = [f"u_{domain}" for domain in domains[:-1]]
    study = optuna.create_study(
        storage=config.storage,
        study_name=config.study_name,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.seed),
        load_if_exists=True,
    )
    stored = study.user_attrs.get("domains")
    if stored is None:
        starts = (
            np.unique(inverse_stick_breaking(observed), axis=0)
            if len(observed)
            else np.empty((0, len(names)))
        )
        study.set_user_attr("domains", list(domains))
        study.set_user_attr("enqueued", len(starts))
        for point in starts:
            study.enqueue_trial(
                dict(zip(names, point.tolist(), strict=True)), user_attrs={"source": "observed"}
            )
    elif stored != list(domains):
        raise SearchError(
            f"study {config.study_name!r} was created for domains {stored}, not {list(domains)}"
        )
    complete = (optuna.trial.TrialState.COMPLETE,)
    missing = (
        study.user_attrs["enqueued"]
        + config.n_trials
        - len(study.get_trials(deepcopy=False, states=complete))
    )

    def evaluate(trial: optuna.trial.Trial) -> float:
        point = np.array([trial.suggest_float(name, 0.0, 1.0) for name in names])
        return float(objective(stick_breaking(point)[None, :])[0])

    if missing > 0:
        study.optimize(evaluate, n_trials=missing)
    trials = study.get_trials(deepcopy=False, states=complete)
    weights = stick_breaking(np.array([[t.params[name] for name in names] for t in trials]))
    return (
        weights,
        np.array([t.value for t in trials]),
        [t.user_attrs.get("source", "search") for t in trials],
    )
