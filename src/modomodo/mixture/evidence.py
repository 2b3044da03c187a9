"""How much the pilots say: is the surrogate's ranking better than chance, and how large is the
run-to-run (seed) noise a lead must exceed?

Two questions the search and the report must answer honestly before they claim a mixture is
better. A surrogate fitted to a handful of pilots can rank held-out runs no better than a coin
(leave-one-out Spearman -0.94 on six smoke pilots was seen), and a lead of 0.01 means nothing when
one run's score moves by 0.025 with its seed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import permutation_test

from modomodo.mixture.records import RunRecords
from modomodo.mixture.regression import spearman
from modomodo.mixture.simplex import Mixture

SAME_MIXTURE = 1e-6
"""Mixtures closer than this (total variation) are the same mixture."""

PERMUTATIONS = 20_000
"""Resamples of the permutation test; every permutation is enumerated when there are fewer
(n <= 8 runs), which makes the test exact for the pilot counts a pipeline has."""


@dataclass(frozen=True)
class RankingTrust:
    """Whether the surrogate's held-out ranking of the pilots is better than chance."""

    spearman: float
    """Spearman correlation of held-out predictions with the actual scores (NaN: a side is constant)."""
    p_value: float
    """One-sided permutation p-value of that correlation under 'the ranking is unrelated'."""
    alpha: float
    """The level the p-value must be below for the ranking to count."""
    runs: int
    trusted: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def ranking_trust(actual: np.ndarray, predicted: np.ndarray, alpha: float) -> RankingTrust:
    """Test the held-out ranking (``CrossValidation.actual`` / ``.predicted``) against chance.

    'No better than chance' is the null hypothesis that predictions and scores are independent;
    the ranking is trusted when a one-sided permutation test rejects it at ``alpha``. An exact test
    on ranks needs no assumption about the score distribution, and with six pilots it asks for a
    Spearman of about 0.7 at alpha 0.1: a bar a surrogate that has learnt the surface clears and
    noise rarely does (one chance in ten).
    """
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    rho = spearman(actual, predicted) if len(actual) >= 3 else float("nan")
    runs = len(actual)
    if math.isnan(rho):
        why = "fewer than 3 runs" if runs < 3 else "the scores or the predictions are all equal"
        return RankingTrust(rho, 1.0, alpha, runs, False, f"no ranking to test: {why}")
    test = permutation_test(
        (predicted,),
        lambda p: spearman(actual, p),
        permutation_type="pairings",
        alternative="greater",
        n_resamples=PERMUTATIONS,
        random_state=0,
    )
    p_value = float(test.pvalue)
    trusted = alpha >= 1 or p_value < alpha  # alpha 1: trust always, even a p-value of 1
    verdict = "better than chance" if trusted else "no better than chance"
    reason = (
        f"held-out Spearman {rho:+.2f} over {runs} runs, permutation p = {p_value:.3f} "
        f"({'<' if trusted else '>='} {alpha:g}): {verdict}"
    )
    return RankingTrust(rho, p_value, alpha, runs, trusted, reason)


@dataclass(frozen=True)
class ObservedMixture:
    """One distinct pilot mixture with its runs' mean score."""

    mixture: Mixture
    mean: float
    runs: int


def replicate_groups(records: RunRecords) -> list[tuple[Mixture, list[int]]]:
    """The distinct mixtures of ``records`` with the rows that trained each (replicates share one)."""
    groups: list[tuple[Mixture, list[int]]] = []
    for i, mixture in enumerate(records.mixtures()):
        for seen, rows in groups:
            if seen.distance(mixture) < SAME_MIXTURE:
                rows.append(i)
                break
        else:
            groups.append((mixture, [i]))
    return groups


def observed_mixtures(records: RunRecords, target: str) -> list[ObservedMixture]:
    """The distinct mixtures of ``records`` (replicates pooled), best mean ``target`` first."""
    scores = records.scores(target)
    observed = [
        ObservedMixture(m, float(scores[rows].mean()), len(rows)) for m, rows in replicate_groups(records)
    ]
    return sorted(observed, key=lambda o: -o.mean)


@dataclass(frozen=True)
class SeedNoise:
    """The standard deviation of one run's score across training seeds."""

    std: float | None
    """None: unknown (no replicates and no stated estimate)."""
    source: str
    """Where it comes from, in words."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def seed_noise(records: RunRecords | None, target: str, stated: float | None) -> SeedNoise:
    """Pooled within-mixture standard deviation of ``target`` over the replicate pilots (mixtures
    trained more than once with different seeds); without replicates the ``stated`` estimate
    (``search.seed_noise``, measured by ``benchmarks/mixture_sensitivity.py``)."""
    if records is not None and len(records):
        scores = records.scores(target)
        replicated = [scores[rows] for _, rows in replicate_groups(records) if len(rows) > 1]
        dof = sum(len(s) - 1 for s in replicated)
        if dof:
            pooled = math.sqrt(sum(float(((s - s.mean()) ** 2).sum()) for s in replicated) / dof)
            return SeedNoise(pooled, f"pooled over {len(replicated)} replicated pilot mixtures ({dof} dof)")
    if stated is not None:
        return SeedNoise(stated, "stated estimate (search.seed_noise)")
    return SeedNoise(None, "unknown: no replicate pilots and no search.seed_noise")


def lead_verdict(lead: float, noise: SeedNoise, label: str = "uniform") -> str:
    """In words: is a lead of one run over another (``label``) beyond the seed noise? Two runs'
    difference has standard deviation sqrt(2) x the noise of one; beyond means more than twice that."""
    if noise.std is None:
        return f"the lead over {label} is {lead:+.3f}; the seed noise is unknown, so it cannot be judged"
    if noise.std == 0:
        return f"the lead over {label} is {lead:+.3f}; the seed noise measured zero"
    diff_std = math.sqrt(2) * noise.std
    sigmas = lead / diff_std
    beyond = "beyond" if sigmas > 2 else "within"
    return (
        f"the lead over {label} is {lead:+.3f}, {sigmas:+.1f} standard deviations of a two-run difference "
        f"({diff_std:.3f}; seed noise {noise.std:.3f}, {noise.source}): {beyond} the noise"
    )
