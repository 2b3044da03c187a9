"""The ``mixture-search`` pipeline: pilots -> surrogate -> search -> final training -> report.

curate -> base policy and its evaluation (one step) -> its pass rates profiled -> seed pilots in
a ``ParallelFor`` (each one ``train_and_evaluate`` step: RL update, evaluation and run record in
one pod) -> ``dsl.Collected`` records -> fit surrogate [-> heuristic pilots -> fit] [-> rounds of:
propose -> pilots -> fit] -> search -> RL update on the best mixture and its evaluation (one step)
-> report comparing base, uniform, best pilot and the chosen mixture.

KFP has no loops over a data-dependent number of waves, so the waves are fixed when the pipeline
is built: a heuristic wave when ``search.heuristics`` is set, and ``search.rounds`` active rounds.
The pilot count inside a wave is data (the planners' lists).
"""

# No `from __future__ import annotations`: kfp reads the pipeline signature's annotations as types.

import functools

from kfp import dsl

from modomodo.components.base_policy import base_policy_and_evaluate
from modomodo.components.curate import curate_data
from modomodo.components.pilots import plan_heuristic_pilots, plan_seed_pilots
from modomodo.components.rollout import rollout_reward
from modomodo.components.search import search_mixture
from modomodo.components.surrogate import fit_surrogate
from modomodo.components.train_and_evaluate import train_and_evaluate
from modomodo.config import ExperimentConfig
from modomodo.pipelines.final_run import Outputs, final_run_and_report
from modomodo.pipelines.settings import ClusterSettings, Placement

NAME = "mixture-search"


def pilot_wave(place, common: dict, search, store_uri, base, pilots, previous) -> dsl.PipelineTask:
    """Train and evaluate every pilot of the list ``pilots`` (one step each), at most
    ``search.parallelism`` at once; then fit the wave's records appended to the table ``previous``
    (None for the first wave)."""
    with dsl.ParallelFor(pilots, parallelism=search.parallelism) as pilot:
        record = place(
            train_and_evaluate(
                mixture=pilot.mixture,
                run_name=pilot.run,
                kind=pilot.kind,
                replicate=pilot.replicate,
                store_uri=store_uri,
                base_model=base.outputs["model"],
                **common,
            ),
            in_loop=True,
        )
    earlier = {"previous": previous} if previous is not None else {}
    rows = dsl.Collected(record.outputs["record"])
    config, pushgateway = common["config"], common["pushgateway"]
    return place(fit_surrogate(config=config, pushgateway=pushgateway, rows=rows, **earlier))


def search_waves(place, common: dict, search, store_uri, base) -> dsl.PipelineTask:
    """The seed wave, the heuristic wave (when ``search.heuristics`` is set) and ``search.rounds``
    active rounds; returns the last fit."""
    config, pushgateway = common["config"], common["pushgateway"]
    wave = functools.partial(pilot_wave, place, common, search, store_uri, base)
    fit = wave(place(plan_seed_pilots(config=config)).output, None)
    if search.heuristics:
        heuristics = place(plan_heuristic_pilots(config=config, records=fit.outputs["records"]))
        fit = wave(heuristics.output, fit.outputs["records"])
    for round_index in range(1, search.rounds + 1):
        ask = place(
            search_mixture(
                config=config,
                pushgateway=pushgateway,
                mode="explore",
                wave=f"round{round_index}",
                records=fit.outputs["records"],
            )
        )
        fit = wave(ask.outputs["Output"], fit.outputs["records"])
    return fit


def build(cfg: ExperimentConfig, cluster: ClusterSettings | None = None):
    """The pipeline for ``cfg``'s search shape (waves, parallelism, data caching); every value
    the components use comes from the ``config`` parameter at run time."""
    cfg.search.check_pilot_count(list(cfg.data.domains))  # before anything is compiled, submitted or run
    cluster = cluster or ClusterSettings()
    search = cfg.search
    cache_data = all(domain.source == "synthetic" for domain in cfg.data.domains.values())

    @dsl.pipeline(name=NAME, description=__doc__.splitlines()[0])
    def mixture_search(
        config: dict,
        store_uri: str,
        pushgateway: str = "",
        s3_secret: str = "modomodo-s3",
        profile_prompts: int = 32,
        nodes: int = 1,
        trainer_runtime: str = "torch-distributed",
    ) -> Outputs:
        place = Placement(s3_secret=s3_secret, cluster=cluster, cache_data=cache_data)
        data = place(curate_data(config=config, store_uri=store_uri, pushgateway=pushgateway)).outputs["data"]
        common = {"config": config, "pushgateway": pushgateway, "gpus": cluster.gpus, "data": data}
        base = place(base_policy_and_evaluate(**common))
        profile = place(
            rollout_reward(prompts_per_domain=profile_prompts, model=base.outputs["model"], **common)
        )
        fit = search_waves(place, common, search, store_uri, base)
        best = place(
            search_mixture(
                config=config,
                pushgateway=pushgateway,
                mode="best",
                wave="search",
                records=fit.outputs["records"],
            )
        )

        return final_run_and_report(
            place,
            common,
            store_uri=store_uri,
            base=base,
            mixture=best.outputs["best"],
            run_name="chosen",
            label="chosen",
            nodes=nodes,
            trainer_runtime=trainer_runtime,
            records=fit.outputs["records"],
            surrogate=fit.outputs["surrogate"],
            proposals=best.outputs["proposals"],
            profile=profile.outputs["profile"],
        )

    return mixture_search
