"""What every node of a multi-node RL update runs: ``python -m modomodo.components.rl_node``.

Not a KFP component: the ``rl_update`` step launches a Kubeflow Trainer ``TrainJob``
(``modomodo.components.trainjob``) whose pods run this module under ``torchrun``. Each process reads
the run's spec from the artifact store, downloads the curated data and the base model, and runs
``stages.rl_stage`` with the step's run id, so checkpoints and resumption are those of the
single-node step. The global rank 0 stores the final model under the spec's ``model`` key, where
the step picks it up. Imports neither kfp nor kubernetes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

SUMMARY_FILES = ("train_summary.json", "versions.json")
"""Files of the run folder that travel with the final model (the step's ``model`` artifact has them)."""


def run(store_uri: str, spec_key: str) -> None:
    """Train the run described by the JSON object at ``spec_key`` of the store ``store_uri``."""
    from modomodo import stages
    from modomodo.components import runtime
    from modomodo.config import config_from_dict
    from modomodo.store import ArtifactStore

    store = ArtifactStore.from_uri(store_uri)
    spec = json.loads(store.get_bytes(spec_key))
    cfg = config_from_dict(spec["config"])
    rank = int(os.environ.get("RANK", "0"))
    print(f"rl_node: run {spec['run_id']}, rank {rank} of {os.environ.get('WORLD_SIZE', '1')}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        store.get_dir(spec["data"], work / "data")
        store.get_dir(spec["base_model"], work / "base")
        result = stages.rl_stage(
            cfg,
            work / "data",
            work / "base",
            work / "run",
            run_id=spec["run_id"],
            resume=True,
            store=store,
            # One process per node serves /metrics: the others would collide on its port.
            metrics_port=runtime.metrics_port() if int(os.environ.get("LOCAL_RANK", "0")) == 0 else 0,
        )
        if rank == 0:
            model_dir = Path(result.model_dir)
            for name in SUMMARY_FILES:
                shutil.copy(work / "run" / name, model_dir / name)
            store.put_dir(model_dir, spec["model"], metadata={"run_id": spec["run_id"]})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="modomodo.components.rl_node", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store", required=True, help="Artifact store URI (s3://bucket/prefix or file:///dir)."
    )
    parser.add_argument("--spec", required=True, help="Store key of the run's spec (JSON).")
    args = parser.parse_args(argv)
    run(args.store, args.spec)


if __name__ == "__main__":
    main()
