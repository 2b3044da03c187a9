"""The tail both pipelines end with: RL update of the final model -> evaluate -> report."""

# No `from __future__ import annotations`: kfp reads the pipelines' return annotation (Outputs) as a type.
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact

from modomodo.components.evaluate import evaluate
from modomodo.components.report import report
from modomodo.components.rl_update import rl_update
from modomodo.components.trainjob import NodeSettings

NODE_IMAGE = rl_update.component_spec.implementation.container.image
"""The image of a multi-node RL update's TrainJob nodes: the step's own."""


class Outputs(NamedTuple):
    """What a pipeline returns: the report page and its JSON summary."""

    report: HTML
    summary: Artifact


def final_run_and_report(
    place,
    common: dict,
    *,
    store_uri,
    base,
    base_eval,
    mixture,
    run_name: str,
    label: str,
    nodes=1,
    trainer_runtime="torch-distributed",
    **report_inputs,
) -> Outputs:
    """Inside a pipeline function: GRPO from ``base`` on ``mixture`` (the final model), its
    evaluation, and the report comparing it with ``base_eval``; ``report_inputs`` are the report's
    optional search artifacts. ``common`` holds config, pushgateway, gpus and data. ``nodes`` > 1
    trains the final model through a Kubeflow Trainer TrainJob on ``trainer_runtime``."""
    trained = place(
        rl_update(
            mixture=mixture,
            run_name=run_name,
            kind="model",
            store_uri=store_uri,
            base_model=base.outputs["model"],
            nodes=nodes,
            trainer_runtime=trainer_runtime,
            s3_secret=place.s3_secret,
            node_settings=NodeSettings.from_cluster(place.cluster, NODE_IMAGE).to_dict(),
            **common,
        )
    )
    trained_eval = place(evaluate(run=trained.outputs["run"], model=trained.outputs["model"], **common))
    summary = place(
        report(
            config=common["config"],
            store_uri=store_uri,
            pushgateway=common["pushgateway"],
            pipeline_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            base_scores=base_eval.outputs["scores"],
            final_run=trained.outputs["run"],
            final_scores=trained_eval.outputs["scores"],
            final_label=label,
            **report_inputs,
        )
    )
    return Outputs(report=summary.outputs["html"], summary=summary.outputs["summary"])
