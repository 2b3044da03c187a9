"""Mixtures: weights over domains on the probability simplex.

Training and pipelines import this module, so it depends on numpy only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

WEIGHT_PREFIX = "w_"
"""Run-record column prefix of a domain weight: domain ``sat`` lives in column ``w_sat``."""
SUM_TOLERANCE = 1e-6
"""How far the weights of a mixture may sum from 1."""


class MixtureError(ValueError):
    """A mixture that is not a point of the simplex, or does not fit the expected domains."""


def weight_column(domain: str) -> str:
    """The run-record column holding ``domain``'s weight."""
    return WEIGHT_PREFIX + domain


def column_domain(column: str) -> str | None:
    """The domain of a weight column (``w_sat`` -> ``sat``), None for any other column."""
    if column.startswith(WEIGHT_PREFIX) and len(column) > len(WEIGHT_PREFIX):
        return column[len(WEIGHT_PREFIX) :]
    return None


class Mixture(Mapping[str, float]):
    """An immutable mapping domain -> weight, with weights >= 0 that sum to 1.

    A domain absent from the mapping has weight 0 (``vector`` fills it in).
    """

    __slots__ = ("_weights",)

    def __init__(self, weights: Mapping[str, float], *, normalize: bool = False) -> None:
        if not weights:
            raise MixtureError("a mixture needs at least one domain")
        clean: dict[str, float] = {}
        for domain, value in weights.items():
            if not isinstance(domain, str) or not domain:
                raise MixtureError(f"domain names must be non-empty strings, got {domain!r}")
            weight = float(value)
            if not np.isfinite(weight) or weight < 0:
                raise MixtureError(f"weight of {domain!r} is {weight}; weights must be finite and >= 0")
            clean[domain] = weight
        total = sum(clean.values())
        if normalize:
            if total <= 0:
                raise MixtureError("cannot normalise a mixture whose weights are all 0")
            clean = {domain: weight / total for domain, weight in clean.items()}
        elif abs(total - 1.0) > SUM_TOLERANCE:
            raise MixtureError(f"weights sum to {total:.9g}, not 1 (tolerance {SUM_TOLERANCE:g})")
        self._weights = clean

    @classmethod
    def uniform(cls, domains: Sequence[str]) -> Mixture:
        """Equal weight on every domain."""
        return cls({domain: 1.0 / len(domains) for domain in domains})

    @classmethod
    def from_vector(cls, domains: Sequence[str], vector: Sequence[float] | np.ndarray) -> Mixture:
        """The mixture with weight ``vector[i]`` on ``domains[i]``.

        Round-off of numerical maps (tiny negatives, sums off by 1e-12) is cleaned up; anything
        larger is an error.
        """
        values = np.asarray(vector, dtype=float)
        if values.shape != (len(domains),):
            raise MixtureError(
                f"expected {len(domains)} weights for {list(domains)}, got shape {values.shape}"
            )
        if (values < -SUM_TOLERANCE).any():
            raise MixtureError(f"negative weights {values.tolist()} for {list(domains)}")
        values = np.clip(values, 0.0, None)
        if abs(values.sum() - 1.0) > SUM_TOLERANCE:
            raise MixtureError(f"weights {values.tolist()} sum to {values.sum():.9g}, not 1")
        return cls(dict(zip(domains, values / values.sum(), strict=True)))

    @classmethod
    def from_columns(cls, row: Mapping[str, object]) -> Mixture:
        """The mixture held in the ``w_<domain>`` entries of a run-record row."""
        weights = {domain: float(value) for column, value in row.items() if (domain := column_domain(column))}
        if not weights:
            raise MixtureError(f"no {WEIGHT_PREFIX}<domain> columns among {list(row)}")
        return cls(weights)

    @classmethod
    def parse(cls, text: str) -> Mixture:
        """Parse a label such as ``ref=0.25,sat=0.75`` (weights are normalised)."""
        weights: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            domain, sep, value = item.partition("=")
            if not sep:
                raise MixtureError(f"expected domain=weight in {text!r}, got {item!r}")
            try:
                weights[domain.strip()] = float(value)
            except ValueError as err:
                raise MixtureError(f"weight of {domain.strip()!r} is not a number: {value!r}") from err
        return cls(weights, normalize=True)

    def __getitem__(self, domain: str) -> float:
        return self._weights[domain]

    def __iter__(self) -> Iterator[str]:
        return iter(self._weights)

    def __len__(self) -> int:
        return len(self._weights)

    def __hash__(self) -> int:
        return hash(frozenset(self._weights.items()))

    def __repr__(self) -> str:
        return f"Mixture({self._weights!r})"

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self._weights)

    @property
    def support(self) -> tuple[str, ...]:
        """The domains with a positive weight."""
        return tuple(domain for domain, weight in self._weights.items() if weight > 0)

    def vector(self, domains: Sequence[str] | None = None) -> np.ndarray:
        """The weights in the order of ``domains`` (default: this mixture's own order)."""
        if domains is None:
            return np.array(list(self._weights.values()))
        outside = [d for d in self.support if d not in domains]
        if outside:
            raise MixtureError(f"mixture puts weight on {outside}, which are not among {list(domains)}")
        return np.array([self._weights.get(domain, 0.0) for domain in domains])

    def to_dict(self) -> dict[str, float]:
        return dict(self._weights)

    def to_columns(self) -> dict[str, float]:
        """The ``w_<domain>`` entries of a run-record row."""
        return {weight_column(domain): weight for domain, weight in self._weights.items()}

    def label(self, digits: int = 3) -> str:
        """A short stable label, domains sorted, zero weights left out: ``ref=0.25,sat=0.75``."""
        return ",".join(
            f"{domain}={round(weight, digits):g}"
            for domain, weight in sorted(self._weights.items())
            if weight > 0
        )

    def distance(self, other: Mapping[str, float]) -> float:
        """Total-variation distance: the fraction of the sampling mass that differs (0 to 1)."""
        domains = sorted(set(self) | set(other))
        return 0.5 * sum(abs(self.get(d, 0.0) - other.get(d, 0.0)) for d in domains)


def total_variation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Total-variation distance between weight vectors (broadcast over leading axes)."""
    return 0.5 * np.abs(np.asarray(a) - np.asarray(b)).sum(axis=-1)


def _beta_shapes(n_domains: int) -> np.ndarray:
    # Stick k (0-based) takes a Beta(1, m-1-k) fraction of what is left: the stick-breaking
    # construction of the flat Dirichlet(1, ..., 1), i.e. the uniform distribution on the simplex.
    return np.arange(n_domains - 1, 0, -1, dtype=float)


def stick_breaking(u: np.ndarray) -> np.ndarray:
    """Map the unit cube ``[0, 1]^(m-1)`` onto the simplex with ``m`` vertices (last axis).

    Coordinate ``u_k`` becomes the fraction ``v_k = 1 - (1 - u_k)^(1/(m-1-k))`` of the stick left
    after domains ``0..k-1``; the last domain takes the rest. ``v_k`` is the Beta(1, m-1-k)
    quantile of ``u_k``, so a uniform ``u`` gives a uniform mixture, and the map is a bijection
    from the open cube to the open simplex (``inverse_stick_breaking`` undoes it).
    """
    u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
    n_domains = u.shape[-1] + 1
    fractions = 1.0 - (1.0 - u) ** (1.0 / _beta_shapes(n_domains))
    left = np.cumprod(1.0 - fractions, axis=-1)
    left_before = np.concatenate([np.ones_like(left[..., :1]), left[..., :-1]], axis=-1)
    return np.concatenate([fractions * left_before, left[..., -1:]], axis=-1)


def inverse_stick_breaking(weights: np.ndarray) -> np.ndarray:
    """The cube point that ``stick_breaking`` maps to ``weights`` (last axis: the domains).

    Where an earlier domain took the whole stick the later fractions are arbitrary; 0 is returned.
    """
    weights = np.clip(np.asarray(weights, dtype=float), 0.0, None)
    weights = weights / weights.sum(axis=-1, keepdims=True)
    left_before = 1.0 - np.concatenate(
        [np.zeros_like(weights[..., :1]), np.cumsum(weights[..., :-2], axis=-1)], axis=-1
    )
    head = weights[..., :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        fractions = np.where(left_before > 1e-12, head / np.where(left_before > 1e-12, left_before, 1.0), 0.0)
    fractions = np.clip(fractions, 0.0, 1.0)
    return np.clip(1.0 - (1.0 - fractions) ** _beta_shapes(weights.shape[-1]), 0.0, 1.0)
