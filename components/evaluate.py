"""Component: greedy evaluation of a policy on every benchmark."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from modomodo.components import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def evaluate(
    config: dict,
    run: dict,
    pushgateway: str,
    gpus: int,
    data: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
    samples: Output[Dataset],
) -> NamedTuple("Evaluation", [("scores", dict)]):
    """Per-benchmark scores, In-Score and Out-Score of ``model`` (``stages.evaluate_stage``): in
    the ``metrics`` artifact, and returned as ``scores``, the score columns of a run record;
    per-sample outputs go to ``samples``. ``run`` is what trained the model (its ``run_id`` and ``mixture`` label the
    pushed metrics)."""
    import tempfile
    from collections import namedtuple
    from pathlib import Path

    from modomodo.components import runtime
    from modomodo.components.model_steps import evaluate_run

    cfg = runtime.experiment_config(config, pushgateway)
    runtime.check_gpus(gpus)
    with tempfile.TemporaryDirectory() as scratch:  # a trained model comes from the store
        columns = evaluate_run(cfg, run, data, runtime.local_copy(model, Path(scratch)), metrics, samples)
    return namedtuple("Evaluation", ["scores"])(columns)
