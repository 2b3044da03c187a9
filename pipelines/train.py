"""The ``train`` pipeline: one mixture, curate -> base policy and its evaluation (one step) -> RL
update and evaluation of the trained model (one step) -> report.

What scheduled or CI-triggered retraining submits: the mixture is ``train.mixture`` of the
``config`` parameter (uniform when empty), e.g. the one a ``mixture-search`` run chose.
"""

# No `from __future__ import annotations`: kfp reads the pipeline signature's annotations as types.

from kfp import dsl

from modomodo.components.base_policy import base_policy_and_evaluate
from modomodo.components.curate import curate_data
from modomodo.config import ExperimentConfig
from modomodo.pipelines.final_run import Outputs, final_run_and_report
from modomodo.pipelines.settings import ClusterSettings, Placement

NAME = "train"


def build(cfg: ExperimentConfig, cluster: ClusterSettings | None = None):
    """The pipeline; ``cfg`` decides only whether curation may be cached (synthetic sources)."""
    cluster = cluster or ClusterSettings()
    cache_data = all(domain.source == "synthetic" for domain in cfg.data.domains.values())

    @dsl.pipeline(name=NAME, description=__doc__.splitlines()[0])
    def train(
        config: dict,
        store_uri: str,
        pushgateway: str = "",
        s3_secret: str = "modomodo-s3",
        nodes: int = 1,
        trainer_runtime: str = "torch-distributed",
    ) -> Outputs:
        place = Placement(s3_secret=s3_secret, cluster=cluster, cache_data=cache_data)
        data = place(curate_data(config=config, store_uri=store_uri, pushgateway=pushgateway)).outputs["data"]
        common = {"config": config, "pushgateway": pushgateway, "gpus": cluster.gpus, "data": data}
        base = place(base_policy_and_evaluate(**common))
        return final_run_and_report(
            place,
            common,
            store_uri=store_uri,
            base=base,
            mixture={},
            run_name="train",
            label="trained",
            nodes=nodes,
            trainer_runtime=trainer_runtime,
        )

    return train
