"""Component: a pilot (or the final run) in one step, GRPO on one mixture and the evaluation of
the trained model, the ``rl_update`` and ``evaluate`` components' work in one pod."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from modomodo.components import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def train_and_evaluate(
    config: dict,
    mixture: dict,
    run_name: str,
    kind: str,
    store_uri: str,
    pushgateway: str,
    gpus: int,
    data: Input[Dataset],
    base_model: Input[Model],
    model: Output[Model],
    metrics: Output[Metrics],
    samples: Output[Dataset],
    replicate: int = 0,
    nodes: int = 1,
    trainer_runtime: str = "torch-distributed",
    s3_secret: str = "",
    node_settings: dict = None,
) -> NamedTuple("TrainAndEvaluate", [("run", dict), ("scores", dict), ("record", dict)]):
    """The RL update of ``rl_update`` (same run id, checkpoints, retries and failed-pilot
    handling; see that component for the arguments), then the evaluation of ``evaluate`` in the
    process that trained the model: per-benchmark scores, In-Score and Out-Score in ``metrics``
    and returned as ``scores``, per-sample outputs in ``samples``; and the pilot's run record as
    ``record``. One pod and one load of the ML stack a pilot instead of three steps (RL update,
    evaluation that fetches the model back from the store, run record). A failed pilot returns
    its failed run, no scores, and a record that says why."""
    from collections import namedtuple

    from modomodo.components.rl_run import train_and_evaluate_run

    run, scores, record = train_and_evaluate_run(
        config, pushgateway, model, metrics, samples, mixture=mixture, run_name=run_name, kind=kind,
        store_uri=store_uri, gpus=gpus, data=data, base_model=base_model, replicate=replicate,
        nodes=nodes, trainer_runtime=trainer_runtime, s3_secret=s3_secret, node_settings=node_settings,
    )  # fmt: skip
    return namedtuple("TrainAndEvaluate", ["run", "scores", "record"])(run, scores, record)
