"""Component: Optuna search over the simplex on the fitted surrogate."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from modomodo.components import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def search_mixture(
    config: dict,
    pushgateway: str,
    mode: str,
    wave: str,
    records: Input[Dataset],
    proposals: Output[Dataset],
) -> NamedTuple("Search", [("best", dict), ("Output", list)]):
    """Propose mixtures from the run records (``stages.search_stage``): ``best`` mode gives the
    ``search.top_k`` best (the first is trained), ``explore`` the next ``search.pilots_per_round``
    pilots, returned as pilot items named ``<wave>-<i>`` in ``Output`` (the name kfp's local runner
    needs to iterate a ``ParallelFor`` over a task's output: it resolves no other). The Optuna study lives in
    ``$MODOMODO_STUDY_STORAGE`` (an RDB URL, e.g. PostgreSQL from a Secret on a cluster), else in a
    SQLite file inside ``proposals``; its name derives from the inputs, so a retry resumes it."""
    import os
    from collections import namedtuple
    from pathlib import Path

    from modomodo import stages
    from modomodo.components import runtime
    from modomodo.mixture import pilots

    cfg = runtime.experiment_config(config, pushgateway)
    table = pilots.load_records(cfg, [], Path(records.path) / "records.csv")
    k = cfg.search.top_k if mode == "best" else cfg.search.pilots_per_round
    run_id = f"{cfg.name}-{wave}-{table.fingerprint()[:10]}"
    found = stages.search_stage(
        cfg,
        table,
        Path(proposals.path),
        mode=mode,
        k=k,
        storage=os.environ.get("MODOMODO_STUDY_STORAGE"),
        run_id=run_id,
    )
    items = [pilots.pilot_item(f"{wave}-{i}", p.mixture, "pilot") for i, p in enumerate(found.proposals)]
    best = found.proposals[0]
    runtime.annotate(
        proposals, cfg, run_id=run_id, mode=mode, best=best.mixture.to_dict(), predicted=best.mean
    )
    return namedtuple("Search", ["best", "Output"])(best.mixture.to_dict(), items)
