"""Seed mixtures (the paper's single-domain, exclude-one and uniform runs) and random pilots.

Which seed a run is gets read off its weights, never its name: the heuristics rely on that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from modomodo.mixture.simplex import Mixture, MixtureError, total_variation

SHAPE_TOLERANCE = 1e-6
"""Weights closer than this count as equal (or as 0 / 1) when recognising a seed mixture."""


@dataclass(frozen=True)
class PlannedMixture:
    """A mixture to train, with a readable name and its run-record ``kind``."""

    name: str
    """``single-<d>``, ``exclude-<d>``, ``uniform`` or ``pilot-<i>``; a good run-id stem."""
    kind: str
    """``seed`` or ``pilot``."""
    mixture: Mixture


def _check_domains(domains: Sequence[str]) -> None:
    if len(domains) < 2:
        raise MixtureError(f"a mixture search needs at least two domains, got {list(domains)}")
    if len(set(domains)) != len(domains):
        raise MixtureError(f"duplicate domains in {list(domains)}")


def seed_mixtures(domains: Sequence[str]) -> list[PlannedMixture]:
    """The paper's seeds: every single domain, every exclude-one, then uniform.

    With two domains an exclude-one mixture is a single-domain one, and is listed once.
    """
    _check_domains(domains)
    m = len(domains)
    planned = [
        PlannedMixture(f"single-{d}", "seed", Mixture.from_vector(domains, np.eye(m)[i]))
        for i, d in enumerate(domains)
    ]
    if m > 2:
        for i, d in enumerate(domains):
            rest = np.full(m, 1.0 / (m - 1))
            rest[i] = 0.0
            planned.append(PlannedMixture(f"exclude-{d}", "seed", Mixture.from_vector(domains, rest)))
    planned.append(PlannedMixture("uniform", "seed", Mixture.uniform(domains)))
    return planned


def random_pilots(
    domains: Sequence[str],
    n: int,
    *,
    seed: int,
    prior: Mapping[str, float] | None = None,
    concentration: float | None = None,
    min_weight: float = 0.0,
) -> list[PlannedMixture]:
    """``n`` pilot mixtures drawn from Dirichlet(concentration * prior), as RegMix does.

    ``prior`` defaults to uniform and ``concentration`` to the number of domains, which together
    give the flat Dirichlet (uniform on the simplex); a larger concentration keeps pilots closer to
    the prior. Like RegMix, weights below ``min_weight`` are set to 0 and the rest renormalised, so a
    pilot never trains on a domain with a negligible share. Same seed, same pilots.
    """
    _check_domains(domains)
    m = len(domains)
    if n < 0:
        raise MixtureError(f"number of pilots must be >= 0, got {n}")
    base = np.full(m, 1.0 / m) if prior is None else Mixture(prior, normalize=True).vector(domains)
    if (base <= 0).any():
        raise MixtureError(
            f"the prior must give every domain a positive weight, got {dict(zip(domains, base, strict=True))}"
        )
    strength = float(m if concentration is None else concentration)
    if strength <= 0:
        raise MixtureError(f"concentration must be > 0, got {strength}")
    if not 0.0 <= min_weight <= 1.0 / m:
        # The largest weight of any mixture is >= 1/m, so this bound keeps at least one domain.
        raise MixtureError(f"min_weight must lie in [0, 1/{m}], got {min_weight}")
    draws = np.random.default_rng(seed).dirichlet(strength * base, size=n)
    draws[draws < min_weight] = 0.0
    draws /= draws.sum(axis=1, keepdims=True)
    return [
        PlannedMixture(f"pilot-{i:03d}", "pilot", Mixture.from_vector(domains, row))
        for i, row in enumerate(draws)
    ]


def spread_pilots(
    domains: Sequence[str], n: int, *, seed: int, existing: np.ndarray | None = None, candidates: int = 2000
) -> list[PlannedMixture]:
    """``n`` pilots that fill the simplex around the runs you have (greedy maximin design).

    Each pilot in turn is, among ``candidates`` seeded uniform draws, the one farthest (total
    variation) from the existing runs and the pilots chosen before it. Random pilots leave gaps
    and clumps at small budgets; these do not.
    """
    _check_domains(domains)
    pool = np.random.default_rng(seed).dirichlet(np.ones(len(domains)), size=candidates)
    taken = (
        np.empty((0, len(domains)))
        if existing is None
        else np.asarray(existing, dtype=float).reshape(-1, len(domains))
    )
    nearest = (
        total_variation(pool[:, None, :], taken[None, :, :]).min(axis=1)
        if len(taken)
        else np.full(candidates, np.inf)
    )
    chosen = []
    for _ in range(n):
        pick = int(np.argmax(nearest))
        chosen.append(pool[pick])
        nearest = np.minimum(nearest, total_variation(pool, pool[pick]))
    return [
        PlannedMixture(f"spread-{i:03d}", "pilot", Mixture.from_vector(domains, w))
        for i, w in enumerate(chosen)
    ]


def single_domain(weights: np.ndarray) -> int | None:
    """Index of the domain a single-domain mixture trains on, else None."""
    top = int(np.argmax(weights))
    return top if weights[top] >= 1.0 - SHAPE_TOLERANCE else None


def excluded_domain(weights: np.ndarray) -> int | None:
    """Index of the left-out domain of an exclude-one mixture (one zero, the others equal), else None."""
    zero = np.flatnonzero(weights <= SHAPE_TOLERANCE)
    if len(weights) < 2 or zero.size != 1:
        return None
    rest = np.delete(weights, zero[0])
    return int(zero[0]) if np.ptp(rest) <= SHAPE_TOLERANCE else None


def is_uniform(weights: np.ndarray) -> bool:
    return bool(np.ptp(weights) <= SHAPE_TOLERANCE)


def is_seed(weights: np.ndarray) -> bool:
    """True for a single-domain, exclude-one or uniform mixture."""
    return single_domain(weights) is not None or excluded_domain(weights) is not None or is_uniform(weights)


SEED_FAMILIES: dict[str, Callable[[np.ndarray], bool]] = {
    "single": lambda w: single_domain(w) is not None,
    "exclude_one": lambda w: excluded_domain(w) is not None,
    "uniform": is_uniform,
}
"""The seed families ``search.seeds`` names, each recognising its mixtures by their weights."""


def family_seeds(domains: Sequence[str], families: Sequence[str]) -> list[PlannedMixture]:
    """The seed mixtures of ``domains`` that belong to one of ``families`` (``search.seeds``): the
    seed wave of the mixture-search pipeline, in :func:`seed_mixtures` order."""
    return [
        p
        for p in seed_mixtures(domains)
        if any(SEED_FAMILIES[f](p.mixture.vector(domains)) for f in families)
    ]
