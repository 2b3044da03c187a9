"""The tail both pipelines end with: RL update of the final model and its evaluation (one
``train_and_evaluate`` step) -> report."""

# No `from __future__ import annotations`: kfp reads the pipelines' return annotation (Outputs) as a type.
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact

from modomodo.components.report import report
from modomodo.components.train_and_evaluate import train_and_evaluate
from modomodo.components.trainjob import NodeSettings

NODE_IMAGE = train_and_evaluate.component_spec.implementation.container.image
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
    mixture,
    run_name: str,
    label: str,
    nodes=1,
    trainer_runtime="torch-distributed",
    **report_inputs,
) -> Outputs:
    """Inside a pipeline function: GRPO from ``base`` (a ``base_policy_and_evaluate`` task) on
    ``mixture`` (the final model) and its evaluation in one step, and the report comparing it with
    the base's scores; ``report_inputs`` are the report's optional search artifacts. ``common``
    holds config, pushgateway, gpus and data. ``nodes`` > 1 trains the final model through a
    Kubeflow Trainer TrainJob on ``trainer_runtime`` (the step's pod then evaluates it)."""
    trained = place(
        train_and_evaluate(
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
    summary = place(
        report(
            config=common["config"],
            store_uri=store_uri,
            pushgateway=common["pushgateway"],
            pipeline_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            base_scores=base.outputs["scores"],
            final_run=trained.outputs["run"],
            final_scores=trained.outputs["scores"],
            final_label=label,
            **report_inputs,
        )
    )
    return Outputs(report=summary.outputs["html"], summary=summary.outputs["summary"])
