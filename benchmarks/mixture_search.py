"""Simple regret of mixture-search methods on synthetic ground-truth response surfaces.

Each surface is a score over mixtures of 5 domains, normalised so that its minimum over the
simplex is 0 and its maximum 1; pilots observe it with Gaussian noise. A method spends N pilot
runs and names one mixture to train; its simple regret is ``1 - score(that mixture)``, the
fraction of the score range it leaves on the table. Families: ``quadratic`` (random linear and
interaction terms, optimum often on a face), ``concave-quadratic`` (interior optimum),
``bumps`` (a sum of Gaussian bumps, multimodal) and ``saturating`` (log returns per domain plus
sqrt synergies), the last two not quadratic. Held-out families, harder and never used to choose
a default: ``noisy`` (a concave quadratic observed with noise sd 0.5 of the score range, what the
smoke preset's seed noise is against its spread of mixture means: 0.025 against 0.05),
``flat-top`` (a concave quadratic capped so that a wide region is optimal) and ``one-hurts``
(one domain's weight costs score linearly, the others mix with positive synergies: uniform pays
for its fifth of the bad domain).

Methods, each given N pilots:
- uniform: train the uniform mixture (no pilots needed);
- random: N uniform-random pilots, train the best observed one;
- paper: the paper's pilots (single-domain, exclude-one and uniform seeds, then its five
  heuristics, then random pilots), its quadratic recipe (OLS on [1, w, w(x)w], best of 5
  80/20 splits) and its candidate generation (one Gaussian around the pilots, top 1);
- linear: our pilot design (the seed mixtures, uniform first, then space-filling pilots),
  linear surrogate, Optuna search;
- quadratic: our pilot design, Scheffé quadratic with leave-one-out ridge, Optuna search;
- gp: our pilot design, Gaussian process, Optuna search;
- active: our design for all but the last ``--adaptive`` pilots, which the ask/tell loop picks
  in batches by upper confidence bound (GP posterior), then the GP + Optuna recommendation.

Run: python benchmarks/mixture_search.py [--surfaces 20] [--budgets 8,12,16,24] [--noise 0.05]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pilot_loop import PilotLoop  # benchmarks/: the script's own folder
from scipy.optimize import minimize

from modomodo.mixture.heuristics import compute_heuristics
from modomodo.mixture.records import RunRecords, make_run_record
from modomodo.mixture.search import propose
from modomodo.mixture.seeds import random_pilots, seed_mixtures, spread_pilots
from modomodo.mixture.simplex import Mixture
from modomodo.mixture.study import StudySettings

DOMAINS = ("d1", "d2", "d3", "d4", "d5")
FAMILIES = ("quadratic", "concave-quadratic", "bumps", "saturating")
HELD_OUT = ("noisy", "flat-top", "one-hurts")
FAMILY_NOISE = {"noisy": 0.5}
"""Observation noise sd of a family, where it is not ``--noise``."""
METHODS = ("uniform", "random", "paper", "linear", "quadratic", "gp", "active")
OURS = ("quadratic", "gp", "active")


def _quadratic_form(weights: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return np.einsum("ni,ij,nj->n", weights, matrix, weights)


def raw_surface(family: str, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """An unnormalised score over ``(n, 5)`` mixtures."""
    m = len(DOMAINS)
    if family == "quadratic":
        # Scheffé form with mostly positive synergies: mixing tends to help, optima on faces or inside.
        linear, cross = rng.normal(size=m), np.triu(rng.normal(loc=2.0, scale=2.0, size=(m, m)), 1)
        return lambda w: w @ linear + _quadratic_form(w, cross)
    if family == "concave-quadratic":
        centre, root = rng.dirichlet(np.ones(m)), rng.normal(size=(m, m))
        curvature = root @ root.T + 0.5 * np.eye(m)
        return lambda w: -_quadratic_form(w - centre, curvature)
    if family == "bumps":
        centres, widths, heights = (
            rng.dirichlet(np.ones(m), size=3),
            rng.uniform(0.1, 0.3, 3),
            rng.uniform(0.5, 1.0, 3),
        )
        return lambda w: (heights * np.exp(-((w[:, None, :] - centres) ** 2).sum(-1) / (2 * widths**2))).sum(
            1
        )
    if family == "saturating":
        # Diminishing returns per domain (unequal gains) plus sqrt synergies between pairs.
        gain, synergy = rng.uniform(0.0, 1.0, m) ** 2, np.triu(rng.normal(scale=0.5, size=(m, m)), 1)
        return lambda w: np.log(0.05 + w) @ gain + _quadratic_form(np.sqrt(w), synergy)
    if family == "noisy":
        return raw_surface("concave-quadratic", rng)
    if family == "flat-top":
        concave = raw_surface("concave-quadratic", rng)
        probes = concave(rng.dirichlet(np.ones(m), 5_000))
        cap = np.quantile(probes, 0.8)  # the best fifth of the simplex is one flat optimum
        return lambda w: np.minimum(concave(w), cap)
    if family == "one-hurts":
        bad, synergy = rng.integers(m), np.triu(rng.uniform(0.5, 2.0, size=(m, m)), 1)
        cost = np.zeros(m)
        cost[bad] = 3.0
        return lambda w: _quadratic_form(w, synergy) - w @ cost
    raise ValueError(f"unknown family {family!r}")


@dataclass(frozen=True)
class Surface:
    """A ground truth: ``out`` is maximised, ``inside`` is the in-domain score the heuristics use."""

    family: str
    out: Callable[[np.ndarray], np.ndarray]
    inside: Callable[[np.ndarray], np.ndarray]

    def regret(self, mixture: np.ndarray) -> float:
        return float(max(0.0, 1.0 - self.out(mixture[None, :])[0]))


def _normalised(
    raw: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator
) -> Callable[[np.ndarray], np.ndarray]:
    """Rescale to [0, 1] over the simplex: dense probes (interior, near faces, vertices, edge
    midpoints), the best probes polished with SLSQP."""
    m = len(DOMAINS)
    pairs = np.array([np.eye(m)[i] + np.eye(m)[j] for i in range(m) for j in range(i + 1, m)]) / 2
    probes = np.vstack(
        [rng.dirichlet(np.ones(m), 20_000), rng.dirichlet(np.full(m, 0.2), 20_000), np.eye(m), pairs]
    )
    values = raw(probes)
    high = values.max()
    for start in probes[np.argsort(-values)[:8]]:
        result = minimize(
            lambda w: -raw(np.clip(w, 0, None)[None, :] / np.clip(w, 0, None).sum())[0],
            start,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * m,
            constraints={"type": "eq", "fun": lambda w: w.sum() - 1.0},
        )
        point = np.clip(result.x, 0, None)
        high = max(high, raw(point[None, :] / point.sum())[0])
    low = values.min()
    return lambda w: (raw(w) - low) / (high - low)


def make_surface(family: str, seed: int) -> Surface:
    rng = np.random.default_rng(seed)
    out = _normalised(raw_surface(family, rng), rng)
    other = _normalised(raw_surface(family, rng), rng)
    return Surface(family, out, lambda w: 0.5 * out(w) + 0.5 * other(w))


@dataclass(frozen=True)
class Settings:
    noise: float
    trials: int
    bootstrap: int
    kappa: float
    batch: int
    adaptive: int
    active_model: str
    min_distance: float


class Pilots:
    """Noisy pilot runs on one surface, kept as run records."""

    def __init__(self, surface: Surface, noise: float, rng: np.random.Generator) -> None:
        self.surface, self.noise, self.rng = surface, noise, rng

    def scores(self, mixture: np.ndarray) -> dict[str, float]:
        point = mixture[None, :]
        return {
            "in_score": float(self.surface.inside(point)[0] + self.rng.normal(0, self.noise)),
            "out_score": float(self.surface.out(point)[0] + self.rng.normal(0, self.noise)),
        }

    def run(self, mixtures: Sequence[np.ndarray], start: int = 0) -> list[dict[str, object]]:
        return [
            make_run_record(f"run-{start + i:03d}", Mixture.from_vector(DOMAINS, w), self.scores(w))
            for i, w in enumerate(mixtures)
        ]


def our_design(n: int, seed: int) -> list[np.ndarray]:
    """The paper's seed mixtures (uniform first, then single-domain, then exclude-one) as far as
    the budget goes, then space-filling pilots away from them."""
    seeds = [p.mixture.vector(DOMAINS) for p in seed_mixtures(DOMAINS)]
    chosen = (seeds[-1:] + seeds[:-1])[:n]
    return chosen + [
        p.mixture.vector(DOMAINS)
        for p in spread_pilots(DOMAINS, n - len(chosen), seed=seed, existing=np.array(chosen))
    ]


def paper_pilots(pilots: Pilots, n: int, seed: int) -> RunRecords:
    """The paper's seeds, then its heuristics computed from them, then random pilots."""
    seeds = [p.mixture.vector(DOMAINS) for p in seed_mixtures(DOMAINS)][:n]
    records = RunRecords.from_rows(pilots.run(seeds), DOMAINS)
    if len(records) < n:
        heuristics, _ = compute_heuristics(records)
        extra = [h.mixture.vector(DOMAINS) for h in heuristics][: n - len(records)]
        records = records.append(*pilots.run(extra, start=len(records)))
    if len(records) < n:
        fill = [p.mixture.vector(DOMAINS) for p in random_pilots(DOMAINS, n - len(records), seed=seed)]
        records = records.append(*pilots.run(fill, start=len(records)))
    return records


def recommend(
    records: RunRecords, model: str, settings: Settings, seed: int, mode: str = "best", **options: object
) -> np.ndarray:
    config = StudySettings(n_trials=settings.trials, seed=seed, min_distance=settings.min_distance)
    result = propose(
        records, "out_score", k=1, mode=mode, model=model, model_options=options, n_bootstrap=0, config=config
    )
    return result.proposals[0].mixture.vector(DOMAINS)


def run_method(method: str, surface: Surface, budget: int, settings: Settings, seed: int) -> np.ndarray:
    """The mixture ``method`` would train after ``budget`` pilots."""
    pilots = Pilots(surface, FAMILY_NOISE.get(surface.family, settings.noise), np.random.default_rng(seed))
    if method == "uniform":
        return Mixture.uniform(DOMAINS).vector(DOMAINS)
    if method == "random":
        records = RunRecords.from_rows(
            pilots.run([p.mixture.vector(DOMAINS) for p in random_pilots(DOMAINS, budget, seed=seed)])
        )
        return records.weights()[np.argmax(records.scores("out_score"))]
    if method == "paper":
        records = paper_pilots(pilots, budget, seed)
        return recommend(records, "quadratic-paper", settings, seed, mode="paper", allow_underdetermined=True)
    if method in ("linear", "quadratic", "gp"):
        records = RunRecords.from_rows(pilots.run(our_design(budget, seed)), DOMAINS)
        return recommend(records, method, settings, seed)
    if method == "active":
        n_adaptive = min(settings.adaptive, budget // 2)
        loop = PilotLoop(
            RunRecords.from_rows(pilots.run(our_design(budget - n_adaptive, seed)), DOMAINS),
            "out_score",
            model=settings.active_model,
            n_bootstrap=settings.bootstrap,
            kappa=settings.kappa,
            search=StudySettings(n_trials=settings.trials, seed=seed, min_distance=settings.min_distance),
        )
        while len(loop.records) < budget:
            asked = loop.ask(min(settings.batch, budget - len(loop.records)))
            if not asked:
                raise RuntimeError(
                    "the active loop found no pilot far enough from the runs; lower --min-distance"
                )
            for proposal in asked:
                loop.tell(proposal.mixture, pilots.scores(proposal.mixture.vector(DOMAINS)))
        return loop.recommend(1)[0].mixture.vector(DOMAINS)
    raise ValueError(f"unknown method {method!r}")


def run_surface(task: tuple[int, str, Sequence[int], Sequence[str], Settings]) -> dict[str, dict[int, float]]:
    index, family, budgets, methods, settings = task
    surface = make_surface(family, seed=1000 + index)
    return {
        method: {
            budget: surface.regret(run_method(method, surface, budget, settings, seed=index * 100 + budget))
            for budget in budgets
        }
        for method in methods
    }


def summarise(values: Sequence[float]) -> str:
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    return f"{median:.3f} [{q1:.3f}, {q3:.3f}]"


def print_table(regret: dict[str, dict[int, list[float]]], budgets: Sequence[int]) -> None:
    width = max(map(len, regret)) + 2
    print("method".ljust(width) + "".join(f"N={b}".ljust(24) for b in budgets))
    for method, by_budget in regret.items():
        print(method.ljust(width) + "".join(summarise(by_budget[b]).ljust(24) for b in budgets))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--surfaces", type=int, default=20, help="ground-truth surfaces (cycling through the families)"
    )
    parser.add_argument("--budgets", default="8,12,16,24", help="pilot budgets, comma-separated")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    parser.add_argument(
        "--families",
        default=",".join(FAMILIES),
        help=f"surface families, cycled through (held out: {','.join(HELD_OUT)})",
    )
    parser.add_argument(
        "--noise", type=float, default=0.05, help="observation noise sd (fraction of the score range)"
    )
    parser.add_argument("--trials", type=int, default=200, help="Optuna trials per search")
    parser.add_argument(
        "--bootstrap", type=int, default=32, help="bootstrap refits (active loop with a parametric model)"
    )
    parser.add_argument("--kappa", type=float, default=2.0, help="UCB exploration weight of the active loop")
    parser.add_argument("--batch", type=int, default=2, help="pilots asked per round of the active loop")
    parser.add_argument(
        "--adaptive", type=int, default=4, help="pilots the active loop asks for (at most half the budget)"
    )
    parser.add_argument("--active-model", default="gp", help="surrogate of the active loop")
    parser.add_argument(
        "--min-distance", type=float, default=0.05, help="least total-variation distance between proposals"
    )
    parser.add_argument("--workers", type=int, default=2, help="processes (one surface each at a time)")
    parser.add_argument(
        "--by-family", action="store_true", help="also print the table of each surface family"
    )
    parser.add_argument("--plot", type=Path, help="write the regret-vs-pilots PNG here")
    parser.add_argument("--json", type=Path, help="write all regrets as JSON here")
    args = parser.parse_args(argv)
    unknown = sorted({f for f in args.families.split(",") if f} - set(FAMILIES + HELD_OUT))
    if unknown:
        parser.error(f"--families: unknown {unknown}; known: {', '.join(FAMILIES + HELD_OUT)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    settings = Settings(
        args.noise,
        args.trials,
        args.bootstrap,
        args.kappa,
        args.batch,
        args.adaptive,
        args.active_model,
        args.min_distance,
    )
    families = [f for f in args.families.split(",") if f]
    tasks = [(i, families[i % len(families)], budgets, methods, settings) for i in range(args.surfaces)]
    started = time.perf_counter()
    if args.workers == 1:
        results = [run_surface(task) for task in tasks]
    else:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            results = list(pool.map(run_surface, tasks))
    elapsed = time.perf_counter() - started
    regret = {method: {b: [r[method][b] for r in results] for b in budgets} for method in methods}

    print_results(args, regret, budgets, methods, families, [task[1] for task in tasks], elapsed)
    return 0


def print_results(args, regret: dict, budgets: list[int], methods: list[str], families: list[str],
                  surface_families: list[str], elapsed: float) -> None:  # fmt: skip
    """The regret tables (all surfaces, and per family with --by-family), the paper goal's
    verdicts, and the plot and JSON files asked for."""
    print(
        f"simple regret, median [q1, q3] over {args.surfaces} surfaces ({', '.join(families)}), 5 domains, "
        f"noise sd {args.noise} ({', '.join(f'{f} {n}' for f, n in FAMILY_NOISE.items() if f in families) or 'every family'})"
    )
    print_table(regret, budgets)
    if "paper" in methods:
        print("\ngoal: ours with N/2 pilots below the paper's recipe with N pilots (median regret)")
        for budget in budgets:
            if budget % 2 or budget // 2 not in budgets:
                continue
            paper = float(np.median(regret["paper"][budget]))
            for method in (m for m in OURS if m in methods):
                ours = float(np.median(regret[method][budget // 2]))
                verdict = "met" if ours < paper else "NOT met"
                print(f"  {method}@{budget // 2} {ours:.3f} vs paper@{budget} {paper:.3f}: {verdict}")
    if args.by_family:
        for family in families:
            mine = [i for i, f in enumerate(surface_families) if f == family]
            print(f"\n{family} ({len(mine)} surfaces)")
            print_table({m: {b: [regret[m][b][i] for i in mine] for b in budgets} for m in methods}, budgets)
    print(
        f"\n{len(surface_families)} surfaces x {len(methods)} methods x {len(budgets)} budgets in {elapsed:.0f} s with {args.workers} workers"
    )
    if args.plot:
        from modomodo.mixture.plots import plot_regret

        plot_regret(regret, args.plot, title=f"{args.surfaces} surfaces, 5 domains, noise sd {args.noise}")
        print(f"plot: {args.plot}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": vars(args) | {"plot": str(args.plot), "json": str(args.json)},
                    "families": surface_families,
                    "regret": regret,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    raise SystemExit(main())
