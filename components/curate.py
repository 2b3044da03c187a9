"""Component: curate the training domains and benchmarks into a ``Dataset`` of shards."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from modomodo.components import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def curate_data(config: dict, store_uri: str, pushgateway: str, data: Output[Dataset]):
    """Load, validate, quarantine, split and shard every source (``stages.curate_stage``), then
    publish the shards to the artifact store under ``data/<content hash>``."""
    import hashlib
    from pathlib import Path

    from modomodo import stages
    from modomodo.components import runtime

    cfg = runtime.experiment_config(config, pushgateway)
    folder = Path(data.path)
    store = runtime.open_store(store_uri, cfg)  # also where sources named by a store key are fetched from
    report = stages.curate_stage(cfg, folder, run_id=f"{cfg.name}-data", store=store)
    # curation.json lists every shard's sha256, so its hash names the content.
    content = hashlib.sha256((folder / "curation.json").read_bytes()).hexdigest()[:16]
    url = runtime.publish(store, folder, f"data/{content}", {"seed": cfg.data.seed})
    runtime.annotate(
        data,
        cfg,
        content_hash=content,
        store_url=url,
        rows=report.rows,
        quarantined={d: sum(r.values()) for d, r in report.quarantined.items()},
    )
