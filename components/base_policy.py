"""Component: the base policy every RL update starts from."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from modomodo.components import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def base_policy(
    config: dict, pushgateway: str, gpus: int, data: Input[Dataset], model: Output[Model]
) -> NamedTuple("BasePolicy", [("run", dict)]):
    """Build the tiny model and warm-start it, or save the configured pretrained model
    (``stages.base_policy_stage``). Returns the run that made it (``run_id``, ``kind`` base, no
    mixture), which labels the base policy's evaluation."""
    from collections import namedtuple

    from modomodo.components.model_steps import base_policy_run

    return namedtuple("BasePolicy", ["run"])(base_policy_run(config, pushgateway, gpus, data, model))


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def base_policy_and_evaluate(
    config: dict,
    pushgateway: str,
    gpus: int,
    data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    samples: Output[Dataset],
) -> NamedTuple("BasePolicyAndEvaluate", [("run", dict), ("scores", dict)]):
    """``base_policy``, then ``evaluate`` of the model it built, in the same process (the ML stack
    and the model loaded once, one pod): the base's scores in ``metrics``, returned as ``scores``,
    its per-sample outputs in ``samples``."""
    from collections import namedtuple
    from pathlib import Path

    from modomodo.components import model_steps, runtime

    run = model_steps.base_policy_run(config, pushgateway, gpus, data, model)
    cfg = runtime.experiment_config(config, pushgateway)
    scores = model_steps.evaluate_run(cfg, run, data, Path(model.path), metrics, samples)
    return namedtuple("BasePolicyAndEvaluate", ["run", "scores"])(run, scores)
