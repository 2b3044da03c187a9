"""Search the simplex with Optuna: the best mixtures to train, or the next pilots to run.

Parameterisation: a study has one float in [0, 1] per domain but the last (``u_<domain>``), and
``simplex.stick_breaking`` maps them to a mixture: each coordinate is the Beta quantile of the
fraction of the remaining weight its domain takes. The map is a bijection, so observed mixtures
are enqueued exactly (``inverse_stick_breaking``), and a uniform draw in the cube is a uniform
draw on the simplex, so TPE's random start-up trials cover the simplex evenly.

Modes:
- ``best`` (mode a): maximise the surrogate's prediction; return the top k mixtures that are at
  least ``min_distance`` apart (total variation), with predicted score and bootstrap interval.
- ``explore`` (mode b): maximise the upper confidence bound ``mean + kappa * std`` (bootstrap
  std); return k mixtures at least ``min_distance`` from each other and from every run already
  done or pending, so a batch of pilots spreads over the regions where the surrogate is both
  promising and unsure.
- ``paper``: the paper's candidate generation, for comparison: one Gaussian fitted to the
  observed mixtures, samples with a negative weight dropped, the rest renormalised, top k.

Studies live in an RDB storage (SQLite file, PostgreSQL URL, or in memory) under a name derived
from the inputs; a rerun loads the study and only runs the trials still missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from modomodo.mixture.records import RunRecords
from modomodo.mixture.simplex import Mixture, inverse_stick_breaking, stick_breaking, total_variation
from modomodo.mixture.surrogates import Surrogate, make_surrogate
from modomodo.redact import redact_url

if TYPE_CHECKING:
    import optuna

DEFAULT_STORAGE_FILE = "modomodo-mixture.db"
SEARCH_MODES = ("best", "explore", "paper")


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


@dataclass(frozen=True)
class Proposal:
    """One proposed mixture with what the surrogate says about it."""

    mixture: Mixture
    mean: float
    """Predicted score."""
    std: float
    """Bootstrap standard deviation of the prediction (NaN without bootstrap)."""
    lower: float
    upper: float
    """Bootstrap prediction interval (NaN without bootstrap)."""
    acquisition: float
    """The value the search ranked it by (the prediction, or the upper confidence bound)."""
    source: str
    """``observed`` (an enqueued run), ``search`` (an Optuna trial) or ``gaussian`` (paper)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.mixture.label(),
            "mixture": self.mixture.to_dict(),
            "mean": self.mean,
            "std": self.std,
            "lower": self.lower,
            "upper": self.upper,
            "acquisition": self.acquisition,
            "source": self.source,
        }


@dataclass(frozen=True)
class ProposalSet:
    """The answer of ``propose``: proposals plus where they came from."""

    mode: str
    target: str
    model: str
    proposals: list[Proposal]
    surrogate: Surrogate = field(repr=False)
    study_name: str | None = None
    storage: str | None = None
    decision: dict[str, object] | None = None
    """How the final pick was made: ``path`` (``surrogate`` or ``best-pilot``), ``reason`` in
    words, and the ranking test (set by the search stage; None elsewhere)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "decision": self.decision,
            "mode": self.mode,
            "target": self.target,
            "model": self.model,
            "study_name": self.study_name,
            "storage": redact_url(self.storage),  # the URL holds the database password
            "proposals": [p.to_dict() for p in self.proposals],
        }


def resolve_storage(storage: str | Path | None) -> str:
    """An RDB URL: a URL stays as is, a file path becomes SQLite, None is ``./modomodo-mixture.db``.

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
    path = Path(storage) if storage is not None else Path.cwd() / DEFAULT_STORAGE_FILE
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


def select_diverse(
    weights: np.ndarray, values: np.ndarray, k: int, min_distance: float, avoid: np.ndarray | None = None
) -> list[int]:
    """Greedy top-k: the best points, each at least ``min_distance`` (total variation) from the
    points already chosen and from every row of ``avoid``. May return fewer than k."""
    chosen: list[int] = []
    for index in np.argsort(-values, kind="stable"):
        if avoid is not None and len(avoid) and total_variation(weights[index], avoid).min() < min_distance:
            continue
        if chosen and total_variation(weights[index], weights[chosen]).min() < min_distance:
            continue
        chosen.append(int(index))
        if len(chosen) == k:
            break
    return chosen


def _optuna() -> ModuleType:
    """Optuna, imported on first use to keep ``modomodo.mixture`` light, with info logs off."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _run_study(
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


def _proposals(
    surrogate: Surrogate,
    domains: Sequence[str],
    weights: np.ndarray,
    acquisition: np.ndarray,
    sources: Sequence[str],
) -> list[Proposal]:
    if not len(weights):
        return []
    if surrogate.has_uncertainty:
        prediction = surrogate.predict_with_uncertainty(weights)
        mean, std, lower, upper = prediction.mean, prediction.std, prediction.lower, prediction.upper
    else:
        mean = surrogate.predict(weights)
        std = lower = upper = np.full(len(weights), np.nan)
    return [
        Proposal(Mixture.from_vector(domains, w), float(mu), float(s), float(lo), float(hi), float(a), source)
        for w, mu, s, lo, hi, a, source in zip(
            weights, mean, std, lower, upper, acquisition, sources, strict=True
        )
    ]


def best_mixtures(
    surrogate: Surrogate,
    domains: Sequence[str],
    observed: np.ndarray,
    *,
    k: int,
    config: StudySettings,
) -> list[Proposal]:
    """Mode (a): the k best mixtures by predicted score, spread at least ``min_distance`` apart."""
    weights, values, sources = _run_study(surrogate.predict, domains, observed, config)
    chosen = select_diverse(weights, values, k, config.min_distance)
    return _proposals(surrogate, domains, weights[chosen], values[chosen], [sources[i] for i in chosen])


def next_pilots(
    surrogate: Surrogate,
    domains: Sequence[str],
    observed: np.ndarray,
    *,
    k: int,
    kappa: float,
    config: StudySettings,
    pending: np.ndarray | None = None,
) -> list[Proposal]:
    """Mode (b): k pilots by upper confidence bound, away from runs done or pending."""
    if not surrogate.has_uncertainty:
        raise SearchError(
            "exploring needs a surrogate fitted with n_bootstrap >= 2 (its uncertainty drives the choice)"
        )

    def upper_bound(weights: np.ndarray) -> np.ndarray:
        prediction = surrogate.predict_with_uncertainty(weights)
        return prediction.mean + kappa * prediction.std

    weights, values, _ = _run_study(upper_bound, domains, observed, config)
    avoid = observed if pending is None or not len(pending) else np.vstack([observed, pending])
    chosen = select_diverse(weights, values, k, config.min_distance, avoid=avoid)
    return _proposals(surrogate, domains, weights[chosen], values[chosen], ["search"] * len(chosen))


def paper_candidates(
    surrogate: Surrogate, domains: Sequence[str], observed: np.ndarray, *, k: int, config: StudySettings
) -> list[Proposal]:
    """The paper's candidate generation (Algorithm 4): fit one Gaussian to the observed mixtures,
    sample, keep samples without negative weights, renormalise, return the top k predicted."""
    from sklearn.mixture import GaussianMixture

    if len(observed) < 2:
        raise SearchError(
            "the paper's candidate generation fits a Gaussian to the observed mixtures: it needs at least 2"
        )
    gaussian = GaussianMixture(n_components=1, random_state=config.seed).fit(observed)
    samples = gaussian.sample(config.paper_samples)[0]
    samples = samples[(samples >= 0).all(axis=1) & (samples.sum(axis=1) > 0)]
    if not len(samples):
        raise SearchError(f"none of the {config.paper_samples} Gaussian samples has all weights >= 0")
    samples /= samples.sum(axis=1, keepdims=True)
    predicted = surrogate.predict(samples)
    top = np.argsort(-predicted, kind="stable")[:k]
    return _proposals(surrogate, domains, samples[top], predicted[top], ["gaussian"] * len(top))


def propose(
    records: RunRecords,
    target: str,
    *,
    k: int = 10,
    mode: str = "best",
    model: str = "gp",
    model_options: Mapping[str, object] | None = None,
    n_bootstrap: int = 32,
    kappa: float = 2.0,
    config: StudySettings | None = None,
    pending: Sequence[Mixture] = (),
) -> ProposalSet:
    """Fit ``model`` to ``records[target]`` and propose k mixtures (see the module doc for modes)."""
    if mode not in SEARCH_MODES:
        raise SearchError(f"unknown mode {mode!r}; choose from {list(SEARCH_MODES)}")
    if k < 1:
        raise SearchError(f"k must be >= 1, got {k}")
    config = config or StudySettings()
    options = dict(model_options or {})
    surrogate = make_surrogate(model, n_bootstrap=n_bootstrap, seed=config.seed, **options)
    surrogate.fit(records.weights(), records.scores(target))
    observed = records.weights()
    if mode == "paper":
        proposals = paper_candidates(surrogate, records.domains, observed, k=k, config=config)
        return ProposalSet(mode, target, model, proposals, surrogate)
    pending_weights = np.array([p.vector(records.domains) for p in pending]).reshape(-1, len(records.domains))
    config = replace(
        config,
        study_name=config.study_name
        or study_name_for(
            records,
            target,
            model,
            mode,
            {
                "model_options": options,
                "n_bootstrap": n_bootstrap,
                "seed": config.seed,
                **(
                    {"kappa": kappa, "pending": pending_weights.round(12).tolist()}
                    if mode == "explore"
                    else {}
                ),
            },
        ),
    )
    if mode == "best":
        proposals = best_mixtures(surrogate, records.domains, observed, k=k, config=config)
    else:
        proposals = next_pilots(
            surrogate, records.domains, observed, k=k, kappa=kappa, config=config, pending=pending_weights
        )
    return ProposalSet(mode, target, model, proposals, surrogate, config.study_name, config.storage)
