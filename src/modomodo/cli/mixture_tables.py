"""The tables ``modomodo mixture`` prints: mixtures with their weights, a surrogate's fit and
cross-validated quality, and the proposals of a search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from rich.table import Table

from modomodo.mixture.simplex import Mixture


def weights_table(
    title: str,
    domains: Sequence[str],
    rows: Sequence[tuple[Sequence[str], Mixture, Sequence[str]]],
    head: Sequence[str],
    tail: Sequence[str],
) -> Table:
    table = Table(title=title)
    for name in head:
        table.add_column(name)
    for domain in domains:
        table.add_column(f"w_{domain}", justify="right")
    for name in tail:
        table.add_column(name, justify="right")
    for first, mixture, last in rows:
        table.add_row(*first, *(f"{mixture.get(d, 0.0):.3f}" for d in domains), *last)
    return table


def fit_tables(
    model: str, target: str, summary: Mapping, validations: Sequence, unavailable: Mapping
) -> list[Table]:
    """The fit's settings, its cross-validated quality (a row of dashes where a scheme was not
    possible) and, for a polynomial, its coefficients."""
    overview = Table(title=f"{model} surrogate of {target}")
    overview.add_column("setting")
    overview.add_column("value", justify="right")
    for key, value in summary.items():
        if key != "coefficients":
            overview.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    quality = Table(title="cross-validated quality (out-of-fold predictions)")
    for name in ("scheme", "R²", "RMSE", "Spearman"):
        quality.add_column(name, justify="right")
    for v in validations:
        quality.add_row(v.scheme, f"{v.r2:.3f}", f"{v.rmse:.4f}", f"{v.spearman:.3f}")
    for scheme in unavailable:
        quality.add_row(scheme, "-", "-", "-")
    tables = [overview, quality]
    if "coefficients" in summary:
        coefficients = Table(title="coefficients")
        coefficients.add_column("term")
        coefficients.add_column("value", justify="right")
        for term, value in summary["coefficients"].items():
            coefficients.add_row(term, f"{value:+.4f}")
        tables.append(coefficients)
    return tables


def proposals_table(result, domains: Sequence[str], mode: str) -> Table:
    """A search's proposals, ranked: weights, prediction, interval, std (UCB when exploring), source."""
    title = {
        "best": "best mixtures to train",
        "explore": "next pilots to run",
        "paper": "paper's candidates",
    }[mode]
    explore = mode == "explore"
    tail = ("predicted", "interval", "UCB" if explore else "std", "source")
    rows = [
        (
            (str(rank),),
            p.mixture,
            (
                f"{p.mean:.4f}",
                "-" if np.isnan(p.lower) else f"[{p.lower:.4f}, {p.upper:.4f}]",
                f"{p.acquisition:.4f}" if explore else ("-" if np.isnan(p.std) else f"{p.std:.4f}"),
                p.source,
            ),
        )
        for rank, p in enumerate(result.proposals, start=1)
    ]
    return weights_table(
        f"{title} ({result.model} surrogate of {result.target})", domains, rows, ("#",), tail
    )
