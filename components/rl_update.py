"""Component: the RL update, GRPO on one mixture."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from modomodo.components import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def rl_update(
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
    replicate: int = 0,
    nodes: int = 1,
    trainer_runtime: str = "torch-distributed",
    s3_secret: str = "",
    node_settings: dict = None,
) -> NamedTuple("RLUpdate", [("run", dict)]):
    """GRPO from ``base_model`` on ``mixture`` (``stages.rl_stage``) with seed ``train.seed +
    replicate``; returns the run (``run_id``, ``mixture``, ``kind``, ``seed``, ``steps``) for its
    run record.

    The run id is ``<experiment>-<run_name>-<hash of the inputs>``: checkpoints go to the artifact
    store under it, and the stage always resumes, so a retried pod continues from the newest
    checkpoint of the same inputs while a first attempt finds none. The final model is stored
    once, in the store under ``runs/<run id>/model``; the ``model`` artifact refers to it
    (``runtime.local_copy`` fetches it). ``gpus`` is the count the pod requests: one training
    process per GPU (torchrun when more than one), one on the CPU when 0.

    ``nodes`` > 1 runs the stage on that many nodes of ``gpus`` GPUs each, as a Kubeflow Trainer
    ``TrainJob`` on the ClusterTrainingRuntime ``trainer_runtime`` (``components/trainjob.py``); its
    nodes read the store with the Secret ``s3_secret`` and take image and placement from
    ``node_settings`` (``NodeSettings.to_dict()``, compiled in).
    """
    from collections import namedtuple

    from modomodo.components.rl_run import rl_update_run

    run = rl_update_run(
        config, mixture, run_name, kind, store_uri, pushgateway, gpus, data, base_model, model,
        replicate=replicate, nodes=nodes, trainer_runtime=trainer_runtime, s3_secret=s3_secret,
        node_settings=node_settings,
    )  # fmt: skip
    return namedtuple("RLUpdate", ["run"])(run)
