"""Components that plan pilot runs (``train_and_evaluate`` turns a finished pilot into its run record)."""

from kfp import dsl
from kfp.dsl import Dataset, Input

from modomodo.components import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def plan_seed_pilots(config: dict) -> list:
    """The seed mixtures of ``search.seeds`` as pilot items ``{run, mixture, kind}``."""
    from modomodo.components import runtime
    from modomodo.mixture import pilots

    return pilots.seed_pilots(runtime.experiment_config(config))


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def plan_heuristic_pilots(config: dict, records: Input[Dataset]) -> list:
    """The paper's heuristic mixtures of ``search.heuristics``, computed from the seed runs."""
    from pathlib import Path

    from modomodo.components import runtime
    from modomodo.mixture import pilots

    cfg = runtime.experiment_config(config)
    return pilots.heuristic_pilots(cfg, pilots.load_records(cfg, [], Path(records.path) / "records.csv"))
