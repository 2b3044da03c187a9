"""Component: the run-records table and the surrogate fitted to it."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from modomodo.components import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def fit_surrogate(
    config: dict,
    pushgateway: str,
    rows: list,
    records: Output[Dataset],
    surrogate: Output[Model],
    quality: Output[Metrics],
    previous: Input[Dataset] = None,
):
    """Append the collected run records ``rows`` to ``previous`` (the table of an earlier wave),
    write the table, and fit and cross-validate the surrogates (``stages.fit_surrogate_stage``).
    ``quality`` holds each model's leave-one-out R², RMSE and Spearman (NaN ones left out),
    ``surrogate`` the fit (``surrogate.json``) and the held-out prediction plot (``cv.png``)."""
    from pathlib import Path

    from modomodo import stages
    from modomodo.components import runtime
    from modomodo.mixture import pilots

    cfg = runtime.experiment_config(config, pushgateway)
    rows = [runtime.integral_floats_to_int(r) for r in rows]
    table = pilots.load_records(
        cfg, rows, Path(previous.path) / "records.csv" if previous is not None else None
    )
    table.write(Path(records.path) / "records.csv")
    run_id = f"{cfg.name}-surrogate-{table.fingerprint()[:10]}"
    summary = stages.fit_surrogate_stage(
        cfg, table, Path(surrogate.path), run_id=run_id, failed=pilots.failed_pilots(rows)
    )
    runtime.log_metrics(
        quality,
        {
            f"{model}_{name}": cv[name]
            for model, cv in summary["cv"].items()
            for name in ("r2", "rmse", "spearman")
        },
    )
    runtime.annotate(records, cfg, run_id=run_id, runs=len(table), fingerprint=table.fingerprint())
    runtime.annotate(surrogate, cfg, run_id=run_id, model=summary["model"], target=summary["target"])
