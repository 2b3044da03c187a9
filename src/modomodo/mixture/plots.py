"""PNG plots of surrogate quality, the fitted surface, and search regret (matplotlib, Agg canvas).

Figures are built on ``FigureCanvasAgg`` directly, without pyplot, so plotting never touches a
global backend or needs a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from modomodo.mixture.quality import CrossValidation
from modomodo.mixture.simplex import Mixture
from modomodo.mixture.surrogates import Surrogate


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110)
    return path


def plot_cross_validation(validation: CrossValidation, path: str | Path, *, title: str = "") -> Path:
    """Held-out prediction against actual score, one colour per fold, with the y = x line."""
    figure = Figure(figsize=(4.8, 4.4), layout="constrained")
    axes = figure.add_subplot()
    few_folds = len(np.unique(validation.fold)) <= 10  # colours only help tell a few folds apart
    points = axes.scatter(
        validation.actual,
        validation.predicted,
        c=validation.fold if few_folds else None,
        cmap="tab10" if few_folds else None,
        s=28,
        edgecolors="k",
        linewidths=0.3,
    )
    low = min(validation.actual.min(), validation.predicted.min())
    high = max(validation.actual.max(), validation.predicted.max())
    axes.plot([low, high], [low, high], color="grey", linewidth=1, linestyle="--")
    axes.set_xlabel("actual score")
    axes.set_ylabel("predicted score (held out)")
    axes.set_title(
        f"{title + ' ' if title else ''}{validation.scheme}\n"
        f"R² {validation.r2:.3f}   RMSE {validation.rmse:.4f}   Spearman {validation.spearman:.3f}",
        fontsize=9,
    )
    if few_folds:
        figure.colorbar(points, ax=axes, label="fold")
    return _save(figure, path)


def plot_simplex_slices(
    surrogate: Surrogate,
    domains: Sequence[str],
    path: str | Path,
    *,
    anchor: Mixture,
    observed: np.ndarray | None = None,
    resolution: int = 60,
) -> Path:
    """Predicted score over each pair of domain weights (2-D slices of the simplex).

    In the slice of domains (i, j) the other domains share the weight ``1 - w_i - w_j`` in the
    proportions they have in ``anchor`` (evenly if the anchor gives them none); the anchor is
    marked. With two domains the simplex is a segment and the plot a curve.
    """
    base = anchor.vector(domains)
    if len(domains) == 2:
        figure = Figure(figsize=(5, 3.5), layout="constrained")
        axes = figure.add_subplot()
        share = np.linspace(0.0, 1.0, resolution)
        axes.plot(share, surrogate.predict(np.column_stack([share, 1.0 - share])))
        axes.axvline(base[0], color="k", linestyle=":")
        axes.set_xlabel(f"w_{domains[0]}  (w_{domains[1]} = 1 - w_{domains[0]})")
        axes.set_ylabel("predicted score")
        return _save(figure, path)
    pairs = list(combinations(range(len(domains)), 2))
    columns = min(5, len(pairs))
    rows = -(-len(pairs) // columns)
    figure = Figure(figsize=(3.4 * columns, 2.9 * rows), layout="constrained")
    grid = np.linspace(0.0, 1.0, resolution)
    first, second = np.meshgrid(grid, grid)
    inside = first + second <= 1.0 + 1e-12
    for slot, (i, j) in enumerate(pairs):
        rest = np.delete(np.arange(len(domains)), [i, j])
        proportions = (
            base[rest] / base[rest].sum() if base[rest].sum() > 0 else np.full(len(rest), 1.0 / len(rest))
        )
        points = np.zeros((inside.sum(), len(domains)))
        points[:, i], points[:, j] = first[inside], second[inside]
        points[:, rest] = np.clip(1.0 - first[inside] - second[inside], 0.0, None)[:, None] * proportions
        surface = np.full(first.shape, np.nan)
        surface[inside] = surrogate.predict(points / points.sum(axis=1, keepdims=True))
        axes = figure.add_subplot(rows, columns, slot + 1)
        filled = axes.contourf(first, second, surface, levels=20, cmap="viridis")
        figure.colorbar(filled, ax=axes, fraction=0.046).ax.tick_params(labelsize=6)
        axes.plot(base[i], base[j], marker="*", color="red", markersize=10)
        if observed is not None and len(observed):
            axes.scatter(observed[:, i], observed[:, j], s=6, color="white", edgecolors="k", linewidths=0.3)
        axes.set_xlabel(f"w_{domains[i]}", fontsize=8)
        axes.set_ylabel(f"w_{domains[j]}", fontsize=8)
        axes.tick_params(labelsize=7)
    figure.suptitle(
        f"predicted score; other domains in the anchor's proportions (anchor: {anchor.label(2)})", fontsize=9
    )
    return _save(figure, path)


def plot_regret(
    regret: Mapping[str, Mapping[int, Sequence[float]]], path: str | Path, *, title: str = ""
) -> Path:
    """Median simple regret (line) and interquartile range (band) against the number of pilots."""
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    for method, by_budget in regret.items():
        budgets = sorted(by_budget)
        q1, median, q3 = np.array([np.quantile(by_budget[b], [0.25, 0.5, 0.75]) for b in budgets]).T
        (line,) = axes.plot(budgets, median, marker="o", label=method)
        axes.fill_between(budgets, q1, q3, color=line.get_color(), alpha=0.07)
    axes.set_xlabel("pilot runs")
    axes.set_ylabel("simple regret (fraction of the score range)")
    axes.set_yscale("symlog", linthresh=0.01)
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3)
    return _save(figure, path)
