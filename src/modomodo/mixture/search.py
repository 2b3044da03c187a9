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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from modomodo.mixture.records import RunRecords
from modomodo.mixture.simplex import Mixture, total_variation
from modomodo.mixture.study import SearchError, StudySettings, run_study, study_name_for
from modomodo.mixture.surrogates import Surrogate, make_surrogate
from modomodo.redact import redact_url

if TYPE_CHECKING:
    pass

SEARCH_BOOTSTRAP = 32
"""Bootstrap refits of the surrogate behind a search's intervals and UCB."""
UCB_KAPPA = 2.0
"""Exploration weight of ``explore``: mean + kappa * std."""
SEARCH_MODES = ("best", "explore", "paper")


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
    weights, values, sources = run_study(surrogate.predict, domains, observed, config)
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

    weights, values, _ = run_study(upper_bound, domains, observed, config)
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
    n_bootstrap: int = SEARCH_BOOTSTRAP,
    kappa: float = UCB_KAPPA,
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
