"""The mixture sampler: the one place where the mixture weights decide what the policy trains on.

For each draw, pick a domain with probability ``w_i``, then the next example of that domain. The
whole schedule is a pure function of (domain sizes, mixture, seed, number of draws), so a resumed
run continues the same sequence and runs of different mixtures get the same number of updates.

Two policies when a domain runs out of unseen examples:
- ``cycle`` (default): reshuffle that domain and start its next epoch, for a fixed step budget;
- ``exhaust``: the paper's rule, stop the schedule as soon as any domain is exhausted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

Sampling = Literal["cycle", "exhaust"]
"""What the schedule does when a domain runs out of unseen examples (see the module docstring)."""
SAMPLING_MODES: tuple[str, ...] = get_args(Sampling)


@dataclass(frozen=True)
class Draw:
    """One scheduled prompt: the domain and the index of the example within it."""

    domain: str
    index: int
    epoch: int


def mixture_schedule(
    sizes: Mapping[str, int],
    mixture: Mapping[str, float],
    n_draws: int,
    seed: int,
    sampling: Sampling = "cycle",
) -> list[Draw]:
    """Draw ``n_draws`` prompts from domains of ``sizes`` according to ``mixture``.

    Domains with weight 0 are never drawn. With ``sampling="exhaust"`` the schedule may be shorter
    than ``n_draws``: it ends at the first draw that would need an already-seen example.
    """
    domains = sorted(d for d, w in mixture.items() if w > 0)
    if not domains:
        raise ValueError("mixture has no domain with positive weight")
    missing = [d for d in domains if sizes.get(d, 0) <= 0]
    if missing:
        raise ValueError(f"mixture puts weight on domains without examples: {missing}")
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"sampling must be one of {list(SAMPLING_MODES)}, got {sampling!r}")
    weights = np.array([mixture[d] for d in domains], dtype=np.float64)
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    choice = rng.choice(len(domains), size=n_draws, p=weights)
    # Each domain shuffles with its own stream, keyed by its place among all the domains of ``sizes``
    # (not among those with weight): its example order is the same in every mixture, so pilots that
    # differ in weights see each domain's examples in one order.
    place = {d: i for i, d in enumerate(sorted(sizes))}
    streams = {d: np.random.default_rng([seed, place[d]]) for d in domains}
    orders = {d: streams[d].permutation(sizes[d]) for d in domains}
    cursor = dict.fromkeys(domains, 0)
    epoch = dict.fromkeys(domains, 0)
    schedule: list[Draw] = []
    for k in choice:
        d = domains[k]
        if cursor[d] == sizes[d]:
            if sampling == "exhaust":
                break
            orders[d] = streams[d].permutation(sizes[d])
            cursor[d] = 0
            epoch[d] += 1
        schedule.append(Draw(d, int(orders[d][cursor[d]]), epoch[d]))
        cursor[d] += 1
    return schedule


def realised_counts(schedule: list[Draw]) -> dict[str, int]:
    """Prompts drawn per domain (logged with every run, next to the requested mixture)."""
    return dict(sorted(Counter(d.domain for d in schedule).items()))
