"""Components that plan pilot runs and turn a finished pilot into a run record."""

from typing import NamedTuple

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


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def run_record(run: dict, scores: dict) -> NamedTuple("RunRecord", [("record", dict)]):
    """One row of the run-records table: the RL update's run and its evaluation's scores."""
    from collections import namedtuple

    from modomodo.components import runtime
    from modomodo.mixture import pilots

    record = pilots.run_record(runtime.integral_floats_to_int(run), scores)
    return namedtuple("RunRecord", ["record"])(record)
