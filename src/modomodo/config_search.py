"""The ``search`` section of the experiment config: pilots, surrogate, Optuna (the mixture-search
pipeline). Its allowed seed families, heuristics and surrogates are the owning registries' names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from modomodo.config_io import ConfigError, all_known, in_range, positive


@dataclass
class SearchConfig:
    """The mixture search: pilots, surrogate, Optuna."""

    seeds: list[str] = field(default_factory=lambda: ["single", "exclude_one", "uniform"])
    """Seed mixture families run as pilots: ``single``, ``exclude_one``, ``uniform``
    (``mixture.seeds.SEED_FAMILIES``)."""
    heuristics: list[str] = field(default_factory=list)
    """Paper heuristics run as a second pilot wave: ``ain``, ``aout``, ``abal``, ``coli``, ``norm``
    (``mixture.heuristics.HEURISTICS``)."""
    target: str = "out_score"
    """Run-record column the search maximises."""
    surrogate: str = "gp"
    """Surrogate model name from the registry (``gp``, ``quadratic``, ``quadratic-paper``, ``linear``,
    ...). The Gaussian process is the default because ``benchmarks/mixture_search.py`` finds it (and
    the active loop on it) best at 16-24 pilots, also on held-out surface families
    (docs/mixture.md); the paper's model is ``quadratic-paper``."""
    paper_underdetermined: bool = False
    """``quadratic-paper`` only: fit even when a training split has fewer runs than the quadratic's
    identifiable coefficients, as the paper's code silently does. The paper fitted 31 runs; its 11
    seed runs and our five heuristics are 16, and five domains need 19 otherwise."""
    top_k: int = 3
    """Mixtures proposed by the final search (the best is trained)."""
    candidates: Literal["optuna", "paper"] = "optuna"
    """How the final search finds its candidates on the surrogate: ``optuna`` (TPE over the
    simplex, ours) or ``paper`` (the paper's Algorithm 4: one Gaussian fitted to the observed
    mixtures, samples with a negative weight dropped, the rest renormalised, the top k kept)."""
    rounds: int = 0
    """Extra active rounds (propose -> pilots) before the final search."""
    pilots_per_round: int = 2
    """Pilot mixtures proposed per active round."""
    parallelism: int = 2
    """Pilot runs at once (``dsl.ParallelFor`` parallelism)."""
    min_pilots: int = 2
    """Fewest successful pilot runs the surrogate is fitted to; failed pilots (crash, NaN) are
    recorded and skipped, and the search stops with a clear error below this count."""
    pilot_lost_attempts: int = 2
    """A pilot whose RL-update pods were lost this many times (node died, pod evicted or
    OOM-killed before it could report) is recorded as failed on its next attempt instead of
    training again. Needs fewer than the ``rl-update`` step's retries (3 on a cluster,
    ``pipelines/settings.py``), or the last retry fails the pipeline as before."""
    trials: int = 400
    """Optuna trials per search."""
    seed: int = 0
    """Seed of the search (Optuna sampler, bootstrap)."""
    trust_alpha: float = 0.1
    """The final search trusts the surrogate only when its leave-one-out ranking of the pilots is
    better than chance at this level (one-sided permutation test of the held-out Spearman);
    otherwise the best pilot is trained instead. 1.0 always trusts it."""
    seed_noise: float | None = None
    """Standard deviation of one run's target score across training seeds, where the pilots have
    no replicates to measure it (``benchmarks/mixture_sensitivity.py`` measures it); the report
    judges the chosen mixture's lead against it. None: unknown unless replicates exist."""

    def validate(self, domains: Iterable[str], benchmarks: Iterable[str]) -> None:
        """Check the search against the training ``domains`` and the evaluation ``benchmarks``:
        what the search stages would otherwise reject only after every pilot has trained."""
        from modomodo.mixture.heuristics import HEURISTICS
        from modomodo.mixture.seeds import SEED_FAMILIES
        from modomodo.mixture.surrogates import SURROGATES

        domains = list(domains)
        all_known("search.seeds", self.seeds, SEED_FAMILIES, "families")
        all_known("search.heuristics", self.heuristics, HEURISTICS)
        for key in (
            "top_k",
            "pilots_per_round",
            "parallelism",
            "min_pilots",
            "pilot_lost_attempts",
            "trials",
        ):
            positive(f"search.{key}", getattr(self, key))
        if self.surrogate not in SURROGATES:
            raise ConfigError(f"search.surrogate: unknown {self.surrogate!r}; known: {sorted(SURROGATES)}")
        if self.paper_underdetermined and self.surrogate != "quadratic-paper":
            raise ConfigError("search.paper_underdetermined: applies to surrogate quadratic-paper only")
        if not 0 < self.trust_alpha <= 1:
            raise ConfigError(f"search.trust_alpha: must be in (0, 1], got {self.trust_alpha}")
        if self.seed_noise is not None:
            in_range("search.seed_noise", self.seed_noise, low=0.0)
        targets = ["in_score", "out_score", *sorted(f"{b}_score" for b in set(benchmarks) | set(domains))]
        if self.target not in targets:
            raise ConfigError(f"search.target: {self.target!r} is not a score column; choose from {targets}")
        self._validate_seed_runs(domains)

    def _validate_seed_runs(self, domains: list[str]) -> None:
        """Which seed runs each heuristic needs (mixture.heuristics): every heuristic reads seed runs,
        Coli needs domain sets that separate the domains, Norm an exclude-one run per domain."""
        seeds, heuristics = set(self.seeds), set(self.heuristics)
        if heuristics and not seeds:
            raise ConfigError(
                "search.heuristics: the heuristics are computed from seed runs; search.seeds is empty"
            )
        if "norm" in heuristics and "exclude_one" not in seeds:
            raise ConfigError("search.heuristics: norm needs the exclude_one seed runs in search.seeds")
        if "coli" in heuristics and len(domains) > 1 and not seeds & {"single", "exclude_one"}:
            raise ConfigError("search.heuristics: coli needs single or exclude_one seed runs in search.seeds")

    def wave_runs(self, domains: list[str]) -> list[int]:
        """Runs in the records table at each fit of the mixture-search pipeline, all pilots
        succeeding: after the seed wave, after the heuristic wave (one pilot per heuristic; a
        mixture already run is trained again as a replicate, never dropped), after each active
        round (``pilots_per_round`` more). The pipeline (``pipelines/mixture_search.py``,
        ``search_waves``) fits the configured surrogate after every wave."""
        from modomodo.mixture.seeds import family_seeds

        runs = [len(family_seeds(domains, self.seeds))]
        if self.heuristics:
            runs.append(runs[-1] + len(self.heuristics))
        runs += [runs[-1] + self.pilots_per_round * r for r in range(1, self.rounds + 1)]
        return runs

    def check_pilot_count(self, domains: list[str]) -> None:
        """Raise :class:`ConfigError` unless the first fit of the mixture-search pipeline (the seed
        runs alone) has ``min_pilots`` runs and the runs the surrogate stage needs (the surrogate's
        ``min_runs`` plus one: it is also cross-validated leave-one-out); otherwise the search
        fails at that fit, after the seed pilots trained. Checked when that pipeline is built, not
        at load: a config that only trains (two domains, say) never fits a surrogate. Enough runs
        can still be a rank-deficient design for a least-squares model (the stage says so)."""
        from modomodo.stages.surrogate import section_surrogate

        if len(domains) < 2:
            return  # no mixture to search; the pipeline refuses it (mixture.seeds)
        runs = self.wave_runs(domains)
        first = runs[0]
        plan = (
            f"the seed wave of search.seeds {self.seeds} plans {first} runs for {len(domains)} domains "
            f"({runs[-1]} pilots in all, with {len(self.heuristics)} heuristic and "
            f"{self.rounds * self.pilots_per_round} in active rounds), and the surrogate is fitted "
            "to the seed runs alone first, before later waves add theirs"
        )
        if first < self.min_pilots:
            raise ConfigError(
                f"search.min_pilots: {self.min_pilots}, but {plan}; add seed families or lower search.min_pilots"
            )
        surrogate = section_surrogate(self)
        needed = stage_runs(surrogate, len(domains))
        if first >= needed:
            return
        fixes = ", or ".join(self._pilot_count_fixes(domains, first, needed))
        raise ConfigError(
            f"search.surrogate: {self.surrogate} needs at least {needed} runs for {len(domains)} domains "
            f"(a fit needs {surrogate.min_runs(len(domains))}, and the surrogate stage also fits it "
            f"leave-one-out, to all runs but one), but {plan}; {fixes or 'nothing configurable fits'}"
        )

    def _pilot_count_fixes(self, domains: list[str], first: int, needed: int) -> list[str]:
        """What would give the first fit its runs: the seed families that plan enough, the
        surrogates that fit ``first`` runs, the paper's underdetermined fit."""
        from modomodo.mixture.seeds import SEED_FAMILIES, family_seeds
        from modomodo.mixture.surrogates import SURROGATES, make_surrogate
        from modomodo.stages.surrogate import section_surrogate

        def fits(surrogate) -> bool:
            return stage_runs(surrogate, len(domains)) <= first

        fixes = []
        every = len(family_seeds(domains, list(SEED_FAMILIES)))
        if every >= needed:
            fixes.append(
                f"add seed families to search.seeds (all of {sorted(SEED_FAMILIES)} plan {every} runs)"
            )
        fitting = sorted(n for n in SURROGATES if n != self.surrogate and fits(section_surrogate(self, n)))
        if fitting:
            fixes.append(f"choose a surrogate that fits {first} runs ({', '.join(fitting)})")
        if self.surrogate == "quadratic-paper" and fits(
            make_surrogate(self.surrogate, allow_underdetermined=True)
        ):
            fixes.append("set search.paper_underdetermined: true (the paper's minimum-norm fit)")
        return fixes


def stage_runs(surrogate, n_domains: int) -> int:
    """The fewest runs the surrogate stage fits ``surrogate`` to for ``n_domains`` domains: its
    ``min_runs`` plus one, as the stage also cross-validates it leave-one-out (on all runs but one)."""
    return surrogate.min_runs(n_domains) + 1
