"""Component: the base policy every RL update starts from."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from modomodo.components import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def base_policy(
    config: dict, pushgateway: str, gpus: int, data: Input[Dataset], model: Output[Model]
) -> NamedTuple("BasePolicy", [("run", dict)]):
    """Build the tiny model and warm-start it, or save the configured pretrained model
    (``stages.base_policy_stage``). Returns the run that made it (``run_id``, ``kind`` base, no
    mixture), which labels the base policy's evaluation."""
    import shutil
    import tempfile
    from collections import namedtuple
    from pathlib import Path

    from modomodo import stages
    from modomodo.components import runtime
    from modomodo.stages.common import stage_metrics

    cfg = runtime.experiment_config(config, pushgateway)
    runtime.check_gpus(gpus)
    run = {
        "run_id": f"{cfg.name}-base-{runtime.fingerprint(config, data.uri)}",
        "kind": "base",
        "mixture": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        metrics = stage_metrics(cfg, run["run_id"], "warmstart")
        with metrics.stage_timer():
            built = stages.base_policy_stage(cfg, Path(data.path), Path(scratch))
        shutil.move(str(built), model.path)  # the model only; the tiny model's init stays behind
    runtime.annotate(
        model, cfg, **run, source=cfg.policy.model, sft_steps=cfg.sft.steps if cfg.sft.enabled else 0
    )
    return namedtuple("BasePolicy", ["run"])(run)
