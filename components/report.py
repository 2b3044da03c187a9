"""Component: the experiment report (HTML for people, JSON for tools)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Model, Output

from modomodo.components import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def report(
    config: dict,
    store_uri: str,
    pushgateway: str,
    pipeline_run: str,
    base_scores: dict,
    final_run: dict,
    final_scores: dict,
    final_label: str,
    html: Output[HTML],
    summary: Output[Artifact],
    records: Input[Dataset] = None,
    surrogate: Input[Model] = None,
    proposals: Input[Dataset] = None,
    profile: Input[Dataset] = None,
) -> NamedTuple("Report", [("headline", dict)]):
    """Build the report (``stages.report_stage``): ``html`` is one self-contained page (plots
    inlined, so the KFP UI renders it), ``summary`` its JSON. Both are also published to the
    artifact store under ``reports/<pipeline_run>``. Returns the headline: the final mixture and its
    score against uniform and base."""
    import json
    import shutil
    import tempfile
    from collections import namedtuple
    from pathlib import Path

    from modomodo import stages
    from modomodo.components import runtime

    cfg = runtime.experiment_config(config, pushgateway)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        stages.report_stage(
            cfg,
            folder,
            run_id=pipeline_run,
            base_scores=base_scores,
            final_run=runtime.integral_floats_to_int(final_run),
            final_scores=final_scores,
            final_label=final_label,
            records_csv=Path(records.path) / "records.csv" if records is not None else None,
            surrogate_dir=Path(surrogate.path) if surrogate is not None else None,
            search_dir=Path(proposals.path) if proposals is not None else None,
            profile_dir=Path(profile.path) if profile is not None else None,
        )
        url = runtime.publish(
            runtime.open_store(store_uri, cfg), folder, f"reports/{pipeline_run}", {"experiment": cfg.name}
        )
        shutil.copy(folder / "report.html", html.path)
        shutil.copy(folder / "report.json", summary.path)
        headline = json.loads((folder / "report.json").read_text())["summary"]
    runtime.annotate(html, cfg, store_url=url, pipeline_run=pipeline_run)
    runtime.annotate(summary, cfg, store_url=url, pipeline_run=pipeline_run)
    return namedtuple("Report", ["headline"])(headline)
